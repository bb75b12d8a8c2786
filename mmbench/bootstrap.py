"""Bootstrap confidence intervals and paired comparisons over a run's test predictions.

A leaderboard that ranks noise is worse than none: each configuration gets a 95%
interval on its primary test metric, and a configuration whose paired difference to
the best one has an interval containing 0 is marked as not significantly different.

Pairing: the resampled indices depend only on the test set (its sorted sample ids) and
the bootstrap seed, so every configuration evaluated on the same test samples is
resampled with the same draws, and a multi-seed row is the bootstrap of the mean over
seeds (each seed's test set resampled with its own draws).

AUROC is computed for all resamples at once: scikit-learn's ``roc_auc_score`` costs
about 1-4 ms per call in input validation, i.e. seconds per run at 1,000 resamples and
minutes per leaderboard. ``_resampled_auroc`` is the same quantity (the area under the
ROC curve with ties counted half, the Mann-Whitney statistic) weighted by how often each
sample is drawn, with the conventions of ``mmbench.metrics.auroc`` (macro over the classes
or labels where it is defined); tests check it against ``mmbench.metrics.auroc`` on every
resample. Other metrics call ``mmbench.metrics.quality`` once per resample (slower).
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
    if metric == "auroc":
        return _resampled_auroc(test, index)
    from mmbench import (
        metrics,  # scikit-learn: only when there is something to resample
    )

    return np.array([metrics.quality(test.labels[rows], test.proba[rows], test.task)[metric]
                     for rows in index], dtype=np.float64)


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile interval over the defined resamples; None when none is defined."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def _resampled_auroc(test: TestSet, index: np.ndarray) -> np.ndarray:
    labels, scores = test.labels, test.proba
    if test.task == "binary":
        columns = [(labels == 1, scores)]
    elif test.task == "multiclass":
        scores = scores / scores.sum(axis=1, keepdims=True)
        columns = [(labels == k, scores[:, k]) for k in range(scores.shape[1])]
    else:
        columns = [(labels[:, k] == 1, scores[:, k]) for k in range(scores.shape[1])]
    resamples, n = index.shape
    # (n, resamples), samples along rows: the per-sample sums below run over contiguous rows
    counts = np.bincount((index * resamples + np.arange(resamples)[:, None]).ravel(),
                         minlength=resamples * n).reshape(n, resamples).astype(np.float64)
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
