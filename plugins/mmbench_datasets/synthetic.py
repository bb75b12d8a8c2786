"""Synthetic paired embeddings whose knobs map to the papers' phenomena.

Each class (or label) has one direction per modality on the unit sphere; a sample is its
class direction times the modality's signal plus isotropic noise of unit expected norm,
normalised. ``signal`` sets how informative a modality is (0: a "lazy" modality with
none). ``cone`` pulls every vector of a modality toward one shared direction, which
tightens the cone (raises the mean resultant length R, the modality-gap paper); ``gap`` moves the
modalities' shared directions apart, which opens a modality gap. Everything is
determined by ``seed``, so every run of a suite sees the same data.

``sequence_length > 0`` adds token vectors for one modality (``DatasetTable.sequences``),
the input of attention fusions such as PairDxFusion (PairDx, 2025): each sample has between
ceil(T/2) and T real tokens, left-aligned and zero-padded to T like padded GloVe captions.
``signal_tokens`` of them, at random positions, carry the class signal (the modality's
class directions times ``token_signal`` plus unit-norm noise, normalised); the rest are
unit-norm noise. Their mean is therefore a diluted signal that attention pooling can beat.
The pooled feature vector of that modality is unchanged, and the tokens come from a
generator of their own, so every other array is the same as without sequences.
"""

from __future__ import annotations

import numpy as np

from mmbench.data import TASK_KINDS, DatasetTable, TokenSequence
from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset


class Synthetic(Dataset):
    """Generated embeddings with controllable signal, cone, gap, imbalance and noise."""

    name = "synthetic"
    modalities = ()
    parameters = (
        Param("n_samples", int, 2000, "number of samples", min=8),
        Param("task", str, "binary", "task kind", choices=TASK_KINDS),
        Param("n_classes", int, 2, "classes (multilabel: labels); binary needs 2", min=2),
        Param("modalities", list, ["image", "text"], "modality names"),
        Param("dims", list, [64, 64], "embedding dimension per modality"),
        Param("signal", list, [0.2, 0.2], "class signal per modality relative to unit-norm noise (0: none)"),
        Param("cone", float, 0.0, "pull toward a shared modality direction, 0..1 (cone effect)",
              min=0.0, max=0.99),
        Param("gap", float, 0.0, "0: modalities share the cone direction, 1: independent "
              "(needs cone > 0 and equal dims)", min=0.0, max=1.0),
        Param("imbalance", float, 1.0, "largest / smallest class frequency (multilabel: label rate)",
              min=1.0),
        Param("label_rate", float, 0.3, "multilabel: prevalence of the most common label",
              min=0.01, max=0.99),
        Param("label_noise", float, 0.0, "fraction of labels replaced at random", min=0.0, max=0.9),
        Param("seed", int, 0, "seed of the generated data (not the run seed)"),
        Param("sequence_length", int, 0, "tokens per sample T of a token sequence (0: no sequence)",
              min=0),
        Param("sequence_modality", str, "text", "modality that gets the token sequence"),
        Param("signal_tokens", int, 3, "tokens per sequence that carry the class signal "
              "(at most ceil(T/2), the shortest length)", min=1),
        Param("token_signal", float, 1.0, "class signal of each signal token relative to "
              "unit-norm noise (0: uninformative tokens)", min=0.0),
    )

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        names, dims, signal = p["modalities"], p["dims"], p["signal"]
        if not names or len(set(names)) != len(names) or not all(isinstance(m, str) for m in names):
            raise UserError(f"synthetic: modalities must be distinct names, got {names!r}")
        for key, values in (("dims", dims), ("signal", signal)):
            if len(values) != len(names):
                raise UserError(f"synthetic: {key} needs one value per modality {names}, got {values!r}")
        if not all(isinstance(d, int) and d >= 2 for d in dims):
            raise UserError(f"synthetic: dims must be integers >= 2, got {dims!r}")
        if not all(isinstance(s, (int, float)) and s >= 0 for s in signal):
            raise UserError(f"synthetic: signal values must be numbers >= 0, got {signal!r}")
        if p["task"] == "binary" and p["n_classes"] != 2:
            raise UserError(f"synthetic: a binary task has n_classes = 2, got {p['n_classes']}")
        length = p["sequence_length"]
        if length > 0:
            if p["sequence_modality"] not in names:
                raise UserError(f"synthetic: sequence_modality {p['sequence_modality']!r} is not one of "
                                f"the modalities {names}")
            if p["signal_tokens"] > (length + 1) // 2:
                raise UserError(f"synthetic: signal_tokens must be at most ceil(sequence_length / 2) = "
                                f"{(length + 1) // 2}, the shortest sequence, got {p['signal_tokens']}")

    def task_kind(self) -> str:
        return self.params["task"]

    def raw_modalities(self) -> tuple[str, ...]:
        return ()  # every modality is vectors already

    def load(self) -> DatasetTable:
        p = self.params
        rng = np.random.default_rng(p["seed"])
        n, k, task = p["n_samples"], p["n_classes"], p["task"]
        labels = self._labels(rng, n, k, task)
        targets = labels if task == "multilabel" else np.eye(k)[labels]
        common = {d: _unit(rng.standard_normal(d)) for d in sorted(set(p["dims"]))}
        features, class_directions = {}, {}
        for name, dim, signal in zip(p["modalities"], p["dims"], p["signal"]):
            directions = class_directions[name] = _unit(rng.standard_normal((k, dim)))
            noise = rng.standard_normal((n, dim)) / np.sqrt(dim)
            x = _unit(signal * targets @ directions + noise)
            if p["cone"] > 0:
                own = _unit(rng.standard_normal(dim))
                shared = _unit((1 - p["gap"]) * common[dim] + p["gap"] * own)
                x = _unit((1 - p["cone"]) * x + p["cone"] * shared)
            features[name] = x.astype(np.float32)
        classes = tuple(f"label_{i}" for i in range(k)) if task == "multilabel" else \
            tuple(f"class_{i}" for i in range(k))
        sequences = {}
        if p["sequence_length"] > 0:
            name = p["sequence_modality"]
            sequences[name] = self._tokens(targets, class_directions[name])
        return DatasetTable(ids=np.array([f"s{i:06d}" for i in range(n)]), labels=labels, task=task,
                            classes=classes, modalities=features, sequences=sequences)

    def _tokens(self, targets: np.ndarray, directions: np.ndarray) -> TokenSequence:
        """Token vectors whose class signal sits in ``signal_tokens`` of the real tokens.

        Drawn from a generator seeded by (seed, 1), so adding a sequence leaves every
        other array of the dataset as it was.
        """
        p = self.params
        rng = np.random.default_rng([p["seed"], 1])
        n, length, dim = len(targets), p["sequence_length"], directions.shape[1]
        lengths = rng.integers((length + 1) // 2, length + 1, n)
        mask = np.arange(length)[None, :] < lengths[:, None]
        values = _unit(rng.standard_normal((n, length, dim)))
        # signal positions: the first signal_tokens of a random order of each sample's real tokens
        order = np.argsort(np.where(mask, rng.random((n, length)), np.inf), axis=1)
        rows = np.repeat(np.arange(n), p["signal_tokens"])
        cols = order[:, :p["signal_tokens"]].ravel()
        noise = rng.standard_normal((len(rows), dim)) / np.sqrt(dim)
        values[rows, cols] = _unit(p["token_signal"] * (targets @ directions)[rows] + noise)
        values[~mask] = 0.0
        return TokenSequence(values.astype(np.float32), mask)

    def _labels(self, rng: np.random.Generator, n: int, k: int, task: str) -> np.ndarray:
        p = self.params
        decay = p["imbalance"] ** (-np.arange(k) / (k - 1))  # 1 down to 1 / imbalance
        if task == "multilabel":
            labels = (rng.random((n, k)) < p["label_rate"] * decay).astype(np.int64)
            flip = rng.random((n, k)) < p["label_noise"]
            return np.where(flip, 1 - labels, labels)
        labels = rng.choice(k, size=n, p=decay / decay.sum())
        noisy = rng.random(n) < p["label_noise"]
        labels[noisy] = rng.integers(0, k, noisy.sum())
        return labels.astype(np.int64)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)
