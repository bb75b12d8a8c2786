"""The ``xor_blobs`` dataset: a binary task that needs both modalities.

Each sample draws two independent fair bits, one per modality. A modality's features
are a Gaussian blob around +u or -u (u: a random unit direction of that modality) as
its bit is 1 or 0, plus isotropic Gaussian noise. The label is the XOR of the two bits,
so each modality alone carries no information about it and a fusion must model the
interaction. Every 4 consecutive samples share a group id (think: visits of one
patient), which the harness keeps within one split. Deterministic from ``seed``.
"""

from __future__ import annotations

import numpy as np

from mmbench.data import DatasetTable
from mmbench.params import Param
from mmbench.plugin import Dataset

#: Samples per group ("patient").
GROUP_SIZE = 4


class XorBlobs(Dataset):
    """Image + tabular blobs whose label is the XOR of one bit per modality."""

    name = "xor_blobs"
    # Part of the dataset fingerprint and every run id: bump it when the data change.
    version = "0.1.0"
    modalities = ("image", "tabular")
    task_kinds = ("binary",)
    parameters = (
        Param("n_samples", int, 1000, "number of samples", min=8),
        Param("dim", int, 8, "feature dimension of each modality", min=1, max=4096),
        Param("noise", float, 0.5, "standard deviation of the Gaussian noise on every feature",
              min=0.0),
        Param("seed", int, 0, "seed of the generated data (not the run seed)", min=0),
    )

    def load(self) -> DatasetTable:
        p = self.params
        n, dim = p["n_samples"], p["dim"]
        rng = np.random.default_rng(p["seed"])
        bits = rng.integers(0, 2, size=(n, len(self.modalities)))
        features = {}
        for j, modality in enumerate(self.modalities):
            direction = rng.standard_normal(dim)
            direction /= np.linalg.norm(direction)
            sign = (2 * bits[:, j] - 1)[:, None]
            features[modality] = sign * direction + p["noise"] * rng.standard_normal((n, dim))
        return DatasetTable(
            ids=np.array([f"xb{i:06d}" for i in range(n)]),
            labels=(bits[:, 0] ^ bits[:, 1]).astype(np.int64),
            task="binary",
            classes=("same", "different"),
            modalities=features,
            groups=np.array([f"patient{i // GROUP_SIZE:05d}" for i in range(n)]),
        )
