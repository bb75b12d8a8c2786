"""Restrepo et al.'s step 1 of its embedding alignment (section 2.4.6): Gaussian noise injection.

    E'_Text = E_Text + theta_t,   E'_Image = E_Image + theta_i,   theta ~ N(0, sigma^2 I)

The paper writes theta ~ N(0, 1); the harness makes sigma a parameter whose default is the
paper's 1.0. Mind the scale: per coordinate, N(0, 1) noise on a unit-norm d-dimensional
embedding has norm about sqrt(d) (22.6 for CLIP's 512 dimensions), far from the "small
sphere" around each point the paper describes; sigma around 0.1 / sqrt(d) gives a ball
of radius about 0.1. Sweep it (``sigma = [...]``).

The noise is drawn once, when the alignment transforms a split (the alignment contract
is fit once, transform each split), not afresh at every epoch. Each sample's noise is a
function of ``seed``, the modality and the sample id only, so it is the same in every
run, every process and every order of rows, and two runs of a suite see the same noise.
"""

from __future__ import annotations

import hashlib

import numpy as np

from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Alignment

LOW_RESOURCE = ("Restrepo et al. 2024, multimodal deep learning for low-resource settings (vector embedding alignment), section 2.4.6 'Embedding Alignment & "
            "Shift, Semantic Robustness', step 1 (noise injection).")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _key(text: str) -> int:
    """A 64-bit integer from a string, the same on every machine and Python run."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def sample_noise(ids: np.ndarray, modality: str, dim: int, sigma: float, seed: int) -> np.ndarray:
    """(len(ids), dim) draws of N(0, sigma^2), each row determined by (seed, modality, id)."""
    out = np.empty((len(ids), dim), dtype=np.float64)
    salt = _key(modality)
    for row, sample in enumerate(ids):
        rng = np.random.default_rng([seed, salt, _key(str(sample))])
        out[row] = rng.standard_normal(dim)
    return sigma * out


def add_noise(data: SplitData, rows: np.ndarray, modalities: list[str], sigma: float,
              seed: int) -> dict[str, np.ndarray]:
    """Features of ``data`` with noise added to ``rows`` (boolean, per sample) of each of
    ``modalities``, skipping samples that lack the modality (their rows hold the suite's fill)."""
    features = dict(data.features)
    for m in modalities:
        target = rows & data.present(m)
        if not target.any() or sigma == 0:
            continue
        x = features[m].astype(np.float64, copy=True)
        x[target] += sample_noise(data.ids[target], m, x.shape[1], sigma, seed)
        features[m] = x.astype(np.float32)
    return features


class GaussianNoise(Alignment):
    """Restrepo et al. step 1: add N(0, sigma^2) noise to the embeddings, on the train split by default."""

    name = "noise"
    citation = LOW_RESOURCE
    parameters = (
        Param("sigma", float, 1.0, "standard deviation of the noise per coordinate "
              "(Restrepo et al., 2024: N(0, 1), i.e. 1.0; on unit vectors in d dims its norm is ~sqrt(d))", min=0.0),
        Param("splits", str, "train", "where the noise goes: the train split only (augmentation, "
              "the default) or all splits", choices=("train", "all")),
        Param("seed", int, 0, "seed of the noise; each sample's draw depends on it, the modality "
              "and the sample id only"),
        Param("modalities", list, [], "modalities to perturb; empty: all of them (Restrepo et al., 2024: "
              "both image and text)"),
        Param("renormalize", bool, False, "scale every present row of the perturbed modalities, in "
              "every split, to unit norm after the noise (Restrepo et al. renormalises only after its "
              "shift, step 2)"),
    )

    def __init__(self, **params):
        super().__init__(**params)
        chosen = self.params["modalities"]
        if not all(isinstance(m, str) for m in chosen) or len(set(chosen)) != len(chosen):
            raise UserError(f"noise: modalities must be distinct modality names, got {chosen!r}")

    def fit(self, train: SplitData) -> None:
        chosen = self.params["modalities"] or sorted(train.features)
        unknown = sorted(set(chosen) - set(train.features))
        if unknown:
            raise UserError(f"noise: modalities {unknown} are not in this dataset (it has "
                            f"{', '.join(sorted(train.features))}); fix `modalities` in the "
                            "[[alignments]] entry, or leave it empty to perturb all of them")
        self.targets = list(chosen)
        # which samples are training samples: ids are unique across the dataset, so the
        # train rows of any split handed to transform are exactly these
        self.train_ids = np.asarray(train.ids).astype(str)

    def transform(self, data: SplitData) -> SplitData:
        p = self.params
        if p["splits"] == "all":
            rows = np.ones(len(data), dtype=bool)
        else:
            rows = np.isin(np.asarray(data.ids).astype(str), self.train_ids)
        features = add_noise(data, rows, self.targets, p["sigma"], p["seed"])
        if p["renormalize"]:
            for m in self.targets:
                x, present = features[m].copy(), data.present(m)
                x[present] = unit_rows(x[present])
                features[m] = x
        return data.with_features(features)
