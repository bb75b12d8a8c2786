"""Seeded, stratified, group-aware train / validation / test splits.

Used when a dataset has no official split. Stratification keeps rare classes in every
split; groups (patient or lesion ids) keep near-duplicates from crossing splits.
Multilabel data is stratified on its label combination, rare combinations pooled.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import (
    GroupShuffleSplit,
    StratifiedGroupKFold,
    train_test_split,
)

from mmbench.data import DatasetTable
from mmbench.errors import UserError


def split_indices(table: DatasetTable, val: float, test: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices per split; the dataset's official split wins where it has one."""
    if table.split is not None:
        out = {s: np.flatnonzero(table.split == s) for s in ("train", "val", "test")}
        if len(out["val"]) == 0:  # official train/test only: carve validation out of train
            rest = table.subset(out["train"])
            inner = _two_way(rest, val / (1 - test), seed)
            out["val"], out["train"] = out["train"][inner[1]], out["train"][inner[0]]
        return out
    all_rows = np.arange(len(table))
    train_val, test_rows = _two_way(table, test, seed)
    rest = table.subset(train_val)
    # modulo 2**32: the largest valid seed's validation split is still a valid seed (0)
    train_inner, val_inner = _two_way(rest, val / (1 - test), (seed + 1) % 2**32)
    return {"train": train_val[train_inner], "val": train_val[val_inner], "test": all_rows[test_rows]}


def strata(table: DatasetTable) -> np.ndarray:
    """One stratum key per sample; combinations with fewer than 2 members are pooled."""
    labels = table.labels
    if table.task != "multilabel":
        return labels
    keys = np.array(["".join(map(str, row)) for row in labels.astype(int)])
    values, counts = np.unique(keys, return_counts=True)
    rare = set(values[counts < 2])
    return np.array(["rare" if k in rare else k for k in keys])


def _two_way(table: DatasetTable, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out) with about ``fraction`` of the rows held out."""
    n = len(table)
    rows = np.arange(n)
    if n < 4:
        raise UserError(f"a dataset of {n} samples is too small to split into train/val/test")
    y = strata(table)
    if table.groups is None:
        try:
            return train_test_split(rows, test_size=fraction, random_state=seed, stratify=y)
        except ValueError:  # a class too rare to stratify: fall back to a plain shuffle
            return train_test_split(rows, test_size=fraction, random_state=seed)
    groups = np.asarray(table.groups)
    n_folds = max(2, round(1 / fraction))
    if len(np.unique(groups)) >= n_folds:
        try:
            folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
            kept, held = next(folds.split(rows, y, groups))
            if len(held) and len(kept):
                return kept, held
        except ValueError:
            pass
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    return next(splitter.split(rows, y, groups))
