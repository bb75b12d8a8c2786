"""Modality-gap diagnostics (the modality-gap paper eq. 1 and Table 1; Restrepo et al. section 3).

Computed on unit-normalised embeddings of the samples that have the modality:
- ``R``: mean resultant length ||mean_i v_i||, in [0, 1] (the cone effect);
- ``variance``: per-dimension variance across samples, averaged over dimensions (the
  "embedding variance" Restrepo et al. reports, e.g. BRSET text 5.4e-4);
- per pair of modalities of equal dimension, ``gap_norm`` = ||mu_a - mu_b|| (the modality-gap paper's
  ||Delta||) and ``mean_cosine``, the mean cosine similarity of the paired embeddings of
  samples that have both.
"""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.data import SplitData
from mmbench.files import write_generated

#: the mark of every file ``mmbench gap`` writes (the JSON's ``generated_by``, the PNG's
#: Software text): it replaces only files that carry it, so ``--out .`` never overwrites
#: a file of the user's
GENERATED_BY = "mmbench gap"
#: the keys of every gap record, those written before the mark included
RECORD_KEYS = frozenset({"suite", "seed", "split", "n", "labels", "before"})
#: the Software text matplotlib gave the plots drawn before the mark
LEGACY_SOFTWARE = b"tEXtSoftware\x00Matplotlib"


def unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def diagnostics(data: SplitData) -> dict[str, Any]:
    modalities: dict[str, Any] = {}
    vectors = {m: unit(np.asarray(x, dtype=np.float64)) for m, x in sorted(data.features.items())}
    for m, v in vectors.items():
        present = v[data.present(m)]
        modalities[m] = {
            "R": float(np.linalg.norm(present.mean(axis=0))) if len(present) else None,
            "variance": float(present.var(axis=0).mean()) if len(present) else None,
        }
    pairs: dict[str, Any] = {}
    for a, b in itertools.combinations(vectors, 2):
        if vectors[a].shape[1] != vectors[b].shape[1]:
            continue
        both = data.present(a) & data.present(b)
        va, vb = vectors[a][data.present(a)], vectors[b][data.present(b)]
        pairs[f"{a}~{b}"] = {
            "gap_norm": float(np.linalg.norm(va.mean(axis=0) - vb.mean(axis=0))) if len(va) and len(vb) else None,
            "mean_cosine": float(np.sum(vectors[a][both] * vectors[b][both], axis=1).mean()) if both.any() else None,
        }
    return {"modalities": modalities, "pairs": pairs}


def pooled(splits: dict[str, SplitData], split: str) -> SplitData:
    """The samples ``mmbench gap`` describes: one split, or every split together ("all":
    the modality-gap paper's Table 1 gives R per dataset, over its N embeddings)."""
    if split != "all":
        return splits[split]
    parts = list(splits.values())
    names = sorted(parts[0].features)
    return SplitData(
        np.concatenate([p.ids for p in parts]),
        {m: np.concatenate([p.features[m] for p in parts]) for m in names},
        np.concatenate([p.labels for p in parts]), parts[0].task, parts[0].classes,
        masks={m: np.concatenate([p.present(m) for p in parts]) for m in names
               if any(m in p.masks for p in parts)})


def pca_plot(before: SplitData, after: SplitData | None, title: str, path: Path) -> Path:
    """Both modalities in the first two principal components, before and after alignment
    (Restrepo et al. Fig. 2-3, the modality-gap paper Fig. 2). Modalities of unequal dimension get one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    stages = [("before alignment", before)] + ([("after alignment", after)] if after is not None else [])
    groups = _by_dimension(before)
    fig, axes = plt.subplots(len(groups), len(stages), figsize=(5.5 * len(stages), 5 * len(groups)),
                             squeeze=False)
    for row, (dim, modalities) in enumerate(groups.items()):
        for col, (stage, data) in enumerate(stages):
            ax = axes[row][col]
            stacked = np.concatenate([unit(data.features[m][data.present(m)]) for m in modalities])
            projected = PCA(n_components=2, random_state=0).fit_transform(stacked)
            start = 0
            for m in modalities:
                count = int(data.present(m).sum())
                points = projected[start:start + count]
                ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.5, label=m)
                start += count
            ax.set_title(f"{stage} ({dim}-d)")
            ax.set_xlabel("PC 1")
            ax.set_ylabel("PC 2")
            ax.legend(markerscale=3)
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": GENERATED_BY})
    plt.close(fig)
    return write_generated(path, buffer.getvalue(), is_plot_ours)


def write_record(path: Path, record: dict[str, Any]) -> Path:
    """The diagnostics of one dataset / encoder / alignment as JSON, marked as gap's."""
    text = json.dumps({**record, "generated_by": GENERATED_BY}, indent=2, sort_keys=True) + "\n"
    return write_generated(path, text.encode("utf-8"), is_record_ours)


def is_record_ours(data: bytes) -> bool:
    """A JSON record ``mmbench gap`` wrote: its ``generated_by``, or (written before the
    mark) every key a record has."""
    try:
        record = json.loads(data)
    except ValueError:
        return False
    return isinstance(record, dict) and (record.get("generated_by") == GENERATED_BY or RECORD_KEYS <= set(record))


def is_plot_ours(data: bytes) -> bool:
    """A PCA plot ``mmbench gap`` drew: a PNG whose Software text is its mark, or
    matplotlib's (the plots drawn before the mark; at a plot's own name only, the one
    place this is asked)."""
    head = data[:4096]
    return head.startswith(b"\x89PNG") and (b"tEXtSoftware\x00" + GENERATED_BY.encode() in head
                                            or LEGACY_SOFTWARE in head)


def _by_dimension(data: SplitData) -> dict[int, list[str]]:
    """Modalities sharing a dimension share one PCA (only then is the gap visible)."""
    groups: dict[int, list[str]] = {}
    for m in sorted(data.features):
        groups.setdefault(data.features[m].shape[1], []).append(m)
    return groups
