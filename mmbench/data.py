"""The data contract between dataset plugins, encoders, alignments and fusions.

A dataset hands over one ``DatasetTable``: every sample once, with its label, any subset
of modalities, and optional group ids and official split. Each modality is either
*features* (a float array, one row per sample: embeddings or numeric tabular data) or
*raw* items (texts, image paths, ...) that an encoder turns into features. After the
harness splits and encodes, fusions see ``SplitData``: one split's features (and, for
fusions that train the encoders themselves, its raw items).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

TASK_KINDS = ("binary", "multiclass", "multilabel")
SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """A dataset plugin produced data that breaks the contract; the message says how."""


def is_features(values: object) -> bool:
    """True for a modality that fusions can consume as it is (a 2-D numeric array)."""
    return (
        isinstance(values, np.ndarray)
        and values.ndim == 2
        and np.issubdtype(values.dtype, np.number)
    )


@dataclass
class TokenSequence:
    """Per-sample token vectors (n, T, d) with a (n, T) mask of real tokens: what
    attention fusions read beside a modality's pooled vector."""

    values: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        self.mask = np.asarray(self.mask, dtype=bool)
        if self.values.ndim != 3 or self.mask.shape != self.values.shape[:2]:
            raise DataError(f"a token sequence is (n, T, d) values with an (n, T) mask, got "
                            f"{self.values.shape} and {self.mask.shape}")

    def __len__(self) -> int:
        return len(self.values)

    def take(self, index: np.ndarray) -> TokenSequence:
        return TokenSequence(self.values[index], self.mask[index])


@dataclass
class Encoded:
    """What an encoder returns for a list of items: one vector per item and, for encoders
    that have them (GloVe, transformer token states), the token vectors behind it."""

    vectors: np.ndarray
    tokens: TokenSequence | None = None

    def __post_init__(self) -> None:
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2:
            raise DataError(f"an encoder returns (n, dim) vectors, got shape {self.vectors.shape}")
        if self.tokens is not None and len(self.tokens) != len(self.vectors):
            raise DataError(f"{len(self.tokens)} token rows for {len(self.vectors)} vectors")


@dataclass
class DatasetTable:
    """Every sample of a dataset, as loaded by a dataset plugin.

    ``labels`` is (n,) integer class indices for binary and multiclass tasks, and an
    (n, L) 0/1 matrix for multilabel tasks. ``classes`` names the classes (or labels).
    ``groups`` (patient / lesion ids) keeps near-duplicates in one split.
    ``split`` holds the official split per sample ("train", "val", "test") if any.
    ``masks`` marks which samples have each modality (True = present) when some arrive
    without it; ``sequences`` holds token vectors for modalities that have them.
    ``skipped`` names the samples a loader dropped as unreadable, with the reason.
    """

    ids: np.ndarray
    labels: np.ndarray
    task: str
    classes: tuple[str, ...]
    modalities: dict[str, np.ndarray | Sequence]
    groups: np.ndarray | None = None
    split: np.ndarray | None = None
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    sequences: dict[str, TokenSequence] = field(default_factory=dict)
    #: samples the loader left out under ``on_bad_sample = "skip"``: id -> reason (results
    #: count them, so a run on fewer samples than the dataset has says so)
    skipped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids).astype(str)
        self.labels = np.asarray(self.labels)
        self.classes = tuple(str(c) for c in self.classes)
        n = len(self.ids)
        if self.task not in TASK_KINDS:
            raise DataError(f"task must be one of {TASK_KINDS}, got {self.task!r}")
        if len(np.unique(self.ids)) != n:
            raise DataError("sample ids must be unique")
        if len(self.labels) != n:
            raise DataError(f"{len(self.labels)} labels for {n} samples")
        if self.task == "multilabel":
            if self.labels.ndim != 2 or self.labels.shape[1] != len(self.classes):
                raise DataError(
                    f"multilabel labels must be (n, {len(self.classes)}) 0/1, got shape {self.labels.shape}"
                )
        else:
            if self.labels.ndim != 1 or not np.issubdtype(self.labels.dtype, np.integer):
                raise DataError("labels must be a 1-D array of integer class indices")
            if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
                raise DataError(f"labels must lie in 0..{len(self.classes) - 1}")
            if self.task == "binary" and len(self.classes) != 2:
                raise DataError(f"a binary task has 2 classes, got {len(self.classes)}")
        if not self.modalities:
            raise DataError("a dataset needs at least one modality")
        for name, values in self.modalities.items():
            if len(values) != n:
                raise DataError(f"modality {name!r} has {len(values)} rows for {n} samples")
            if is_features(values):
                self.modalities[name] = np.ascontiguousarray(values, dtype=np.float32)
        _check_masks(self.masks, self.modalities, n)
        for name, sequence in self.sequences.items():
            if len(sequence) != n:
                raise DataError(f"sequence {name!r} has {len(sequence)} rows for {n} samples")
        for extra, label in ((self.groups, "groups"), (self.split, "split")):
            if extra is not None and len(extra) != n:
                raise DataError(f"{label} has {len(extra)} entries for {n} samples")
        if self.split is not None:
            self.split = np.asarray(self.split).astype(str)
            unknown = set(self.split) - set(SPLITS)
            if unknown:
                raise DataError(f"split values must be {SPLITS}, got {sorted(unknown)}")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> DatasetTable:
        """The rows at ``index``, every modality sliced alike."""
        return DatasetTable(
            ids=self.ids[index],
            labels=self.labels[index],
            task=self.task,
            classes=self.classes,
            modalities={m: _take(v, index) for m, v in self.modalities.items()},
            groups=None if self.groups is None else np.asarray(self.groups)[index],
            split=None if self.split is None else self.split[index],
            masks={m: mask[index] for m, mask in self.masks.items()},
            sequences={m: s.take(index) for m, s in self.sequences.items()},
        )


@dataclass
class SplitData:
    """One split as fusions see it: features per modality, labels, task.

    ``masks[m]`` (True = present) exists for a modality some samples lack; a missing
    sample's feature row holds the suite's fill (zeros or the train mean), so a fusion
    that handles missing input must read the mask rather than trust those values.
    """

    ids: np.ndarray
    features: dict[str, np.ndarray]
    labels: np.ndarray
    task: str
    classes: tuple[str, ...]
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    sequences: dict[str, TokenSequence] = field(default_factory=dict)
    #: raw items per encoded modality, for fusions that consume "raw" (else empty); such a
    #: modality has no entry in ``features``
    raw: dict[str, Sequence] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def present(self, modality: str) -> np.ndarray:
        """Which samples have ``modality`` (all of them unless a mask says otherwise)."""
        mask = self.masks.get(modality)
        return np.ones(len(self), dtype=bool) if mask is None else mask

    @property
    def n_outputs(self) -> int:
        """Units a classifier head needs: 1 for binary, else one per class or label."""
        return 1 if self.task == "binary" else len(self.classes)

    def with_features(self, features: dict[str, np.ndarray]) -> SplitData:
        return replace(self, features=features)


def _check_masks(masks: dict[str, np.ndarray], modalities: dict, n: int) -> None:
    for name, mask in masks.items():
        if name not in modalities:
            raise DataError(f"mask for {name!r}, which is not a modality ({sorted(modalities)})")
        mask = np.asarray(mask)
        if mask.shape != (n,) or mask.dtype != bool:
            raise DataError(f"mask {name!r} must be a boolean array of shape ({n},), got {mask.dtype} {mask.shape}")


def _take(values: np.ndarray | Sequence, index: np.ndarray):
    if isinstance(values, np.ndarray):
        return values[index]
    if hasattr(values, "iloc"):  # pandas objects
        return values.iloc[index].reset_index(drop=True)
    return [values[i] for i in index]
