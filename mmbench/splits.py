"""Seeded, stratified, group-aware train / validation / test splits.

Used when a dataset has no official split. Stratification keeps rare classes in every
split; groups (patient or lesion ids) keep near-duplicates from crossing splits, and a
grouped split still holds out the requested fractions as closely as the group sizes allow
(each result records the sizes it got under ``data.n``).
Multilabel data is stratified on its label combination, rare combinations pooled.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, train_test_split

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
    held = _grouped_held_out(y, np.asarray(table.groups), fraction, seed)
    if not held.any() or held.all():  # one group, or a fraction no group fits: fall back
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        return next(splitter.split(rows, y, table.groups))
    return rows[~held], rows[held]


def _grouped_held_out(y: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Rows held out when whole groups must stay together: as close to ``fraction`` of the
    rows, per stratum, as the group sizes allow.

    Groups are visited in a seeded random order; a group is held out when that brings the
    held-out counts closer to ``fraction`` of each stratum and of all rows (the sum of the
    absolute differences), after one group for each class the part should hold at least one
    sample of. Groups of one sample make this an exactly stratified split; larger groups
    stop it within a few rows of the target. (K-fold splitting, used
    before, can only hold out 1/k: a 15 % request gave 1/7 = 14.3 %.)
    """
    _, group_of = np.unique(groups, return_inverse=True)
    _, stratum_of = np.unique(y, return_inverse=True)
    counts = np.zeros((group_of.max() + 1, stratum_of.max() + 1))
    np.add.at(counts, (group_of, stratum_of), 1)
    target = fraction * counts.sum(axis=0)
    held = np.zeros_like(target)
    chosen = np.zeros(len(counts), dtype=bool)
    total = fraction * len(y)

    def distance(per_stratum: np.ndarray) -> float:
        return float(np.abs(per_stratum - target).sum() + abs(per_stratum.sum() - total))

    order = np.random.default_rng(seed).permutation(len(counts))
    # first one group for every class the held-out part should have at least one sample
    # of, so a small dataset of large groups does not leave a class out of a split
    for stratum in np.flatnonzero(target >= 0.5):
        if held[stratum] == 0:
            g = order[np.flatnonzero(counts[order, stratum] > 0)[0]]
            held += counts[g]
            chosen[g] = True
    for g in order:
        if not chosen[g] and distance(held + counts[g]) < distance(held):
            held += counts[g]
            chosen[g] = True
    return chosen[group_of]
