"""Bootstrap confidence intervals and paired comparisons over a run's test predictions.

A leaderboard that ranks noise is worse than none: each configuration gets a 95%
interval on its primary test metric, and a configuration whose paired difference to
the best one has an interval containing 0 is marked as not significantly different.

Pairing: the resampled indices depend only on the test set (its sorted sample ids) and
the bootstrap seed, so every configuration evaluated on the same test samples is
resampled with the same draws, and a multi-seed row is the bootstrap of the mean over
seeds (each seed's test set resampled with its own draws).

Every metric is computed for all resamples at once, from how often each sample is drawn:
scikit-learn costs about 1-4 ms per call in input validation, i.e. seconds per run at
1,000 resamples and minutes per leaderboard (a 24-run suite ranked by F1 took 158 s that
way). ``_resampled_auroc`` is the area under the ROC curve with ties counted half (the
Mann-Whitney statistic), ``_resampled_f1`` and ``_resampled_accuracy`` weighted confusion
counts, each with the conventions of ``mmbench.metrics.quality`` (AUROC macro over the
classes or labels where it is defined; F1 of the positive class, else macro over the
classes present in the labels or predictions (multiclass) or over every label
(multilabel), 0 where undefined; subset accuracy for multilabel). Tests check each against
``mmbench.metrics.quality`` on every resample.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

#: resamples of the test set per interval (the issue's default) and their seed
RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
#: the metrics computed from test predictions (``mmbench.metrics.QUALITY_METRICS``,
#: repeated here so the leaderboard does not import scikit-learn to learn their names)
QUALITY_METRICS = ("accuracy", "f1", "auroc")


@dataclass(frozen=True)
class TestSet:
    """One run's test predictions in the canonical order (sorted by sample id)."""

    ids: np.ndarray
    labels: np.ndarray
    proba: np.ndarray
    task: str

    @classmethod
    def of(cls, ids: np.ndarray, labels: np.ndarray, proba: np.ndarray, task: str) -> TestSet:
        """Sorted by id, so two runs on the same samples line up row by row whatever
        order their split produced."""
        ids = np.asarray(ids).astype(str)
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], np.asarray(labels)[order], np.asarray(proba, dtype=np.float64)[order], task)

    @property
    def key(self) -> str:
        """The identity of the test samples: equal keys mean the draws pair up."""
        return hashlib.sha256("\0".join(self.ids.tolist()).encode()).hexdigest()[:16]


def draws(test: TestSet, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, n) indices into ``test``: a function of the samples and the seed only."""
    rng = np.random.default_rng([seed, int(test.key, 16)])
    n = len(test.ids)
    return rng.integers(0, n, size=(resamples, n))


def replicates(test: TestSet, metric: str, index: np.ndarray) -> np.ndarray:
    """The metric on every resample (rows of ``index``); NaN where it is undefined."""
    resampled = {"auroc": _resampled_auroc, "f1": _resampled_f1, "accuracy": _resampled_accuracy}
    if metric not in resampled:
        raise ValueError(f"no bootstrap for {metric!r}; the quality metrics are {QUALITY_METRICS}")
    return resampled[metric](test, _draw_counts(index))


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile interval over the defined resamples; None when none is defined."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def _draw_counts(index: np.ndarray) -> np.ndarray:
    """(n, resamples): how often each sample is drawn in each resample; samples along rows,
    so the per-sample sums run over contiguous rows."""
    resamples, n = index.shape
    return np.bincount((index * resamples + np.arange(resamples)[:, None]).ravel(),
                       minlength=resamples * n).reshape(n, resamples).astype(np.float64)


def _hard_predictions(test: TestSet) -> np.ndarray:
    """As ``mmbench.metrics.predictions``: argmax, else the 0.5 threshold."""
    if test.task == "multiclass":
        return test.proba.argmax(axis=1)
    return (test.proba >= 0.5).astype(int)


def _resampled_accuracy(test: TestSet, counts: np.ndarray) -> np.ndarray:
    right = _hard_predictions(test) == test.labels
    if test.task == "multilabel":
        right = right.all(axis=1)  # subset accuracy
    return right.astype(np.float64) @ counts / counts.sum(axis=0)


def _resampled_f1(test: TestSet, counts: np.ndarray) -> np.ndarray:
    predicted, labels = _hard_predictions(test), test.labels
    if test.task == "binary":
        columns = [(labels == 1, predicted == 1)]
    elif test.task == "multiclass":
        columns = [(labels == k, predicted == k) for k in range(test.proba.shape[1])]
    else:
        columns = [(labels[:, k] == 1, predicted[:, k] == 1) for k in range(labels.shape[1])]
    scores, used = [], []
    for truth, guess in columns:
        tp = (truth & guess).astype(np.float64) @ counts
        wrong = (truth ^ guess).astype(np.float64) @ counts  # false positives + false negatives
        denominator = 2 * tp + wrong
        with np.errstate(invalid="ignore", divide="ignore"):
            scores.append(np.where(denominator > 0, 2 * tp / denominator, 0.0))  # zero_division=0
        used.append(denominator > 0)
    scores, used = np.stack(scores), np.stack(used)
    if test.task == "binary":
        return scores[0]
    if test.task == "multiclass":  # scikit-learn averages over the classes in labels or predictions
        return scores.sum(axis=0) / used.sum(axis=0)
    return scores.mean(axis=0)  # multilabel: every label, 0 where undefined


def _resampled_auroc(test: TestSet, counts: np.ndarray) -> np.ndarray:
    labels, scores = test.labels, test.proba
    if test.task == "binary":
        columns = [(labels == 1, scores)]
    elif test.task == "multiclass":
        scores = scores / scores.sum(axis=1, keepdims=True)
        columns = [(labels == k, scores[:, k]) for k in range(scores.shape[1])]
    else:
        columns = [(labels[:, k] == 1, scores[:, k]) for k in range(scores.shape[1])]
    per_column = np.stack([_weighted_auroc(positive, score, counts) for positive, score in columns], axis=1)
    defined = np.isfinite(per_column)
    total = np.where(defined, per_column, 0.0).sum(axis=1)
    n_defined = defined.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_defined > 0, total / n_defined, np.nan)


def _weighted_auroc(positive: np.ndarray, score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Binary AUROC per column of ``counts`` (how often each sample is drawn): the share of
    (positive, negative) pairs ranked right, ties counted half; NaN without both classes."""
    order = np.argsort(score, kind="stable")
    sorted_scores = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    weights = counts[order]
    is_positive = positive[order][:, None]
    pos = np.add.reduceat(np.where(is_positive, weights, 0.0), starts, axis=0)
    neg = np.add.reduceat(np.where(is_positive, 0.0, weights), starts, axis=0)
    below = np.cumsum(neg, axis=0) - neg  # negatives scored strictly lower, per tie group
    n_pos, n_neg = pos.sum(axis=0), neg.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=0) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
