"""Every metric a run reports: which way is better and how a leaderboard prints it.

Light on purpose (no sklearn, no torch): suite validation and leaderboards read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricInfo:
    name: str
    #: +1 when higher is better, -1 when lower is better, 0 when neither (not marked).
    direction: int
    fmt: str
    help: str


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("accuracy", +1, ".3f", "test accuracy (subset accuracy for multilabel)"),
    MetricInfo("f1", +1, ".3f", "test F1: positive class (binary), macro (multiclass, multilabel)"),
    MetricInfo("auroc", +1, ".3f", "test AUROC: binary; one-vs-rest macro; macro over labels"),
    MetricInfo("best_epoch", 0, ".1f", "epoch chosen on validation"),
    MetricInfo("epochs_run", 0, ".1f", "epochs trained (fewer with early stopping)"),
    MetricInfo("hit_epoch_cap", 0, ".2f", "share of seeds whose training the epoch cap ended before early "
               "stopping did (above 0: raise epochs; empty without early stopping)"),
    MetricInfo("train_s_per_epoch", -1, ".4f", "training seconds per epoch"),
    MetricInfo("train_s_total", -1, ".3f", "training seconds in total"),
    MetricInfo("infer_s_test_pass", -1, ".4f", "seconds for one inference pass over the test split (the "
               "papers' \"inference time per epoch\")"),
    MetricInfo("infer_s_per_sample", -1, ".2e", "inference seconds per test sample"),
    MetricInfo("extract_s_per_sample", -1, ".2e", "embedding-extraction seconds per sample"),
    MetricInfo("model_mb", -1, ".3f", "parameters x 4 bytes, MiB (Restrepo et al., 2024)"),
    MetricInfo("data_mb_per_epoch", -1, ".2f", "bytes of every batch tensor in one epoch, MiB (Restrepo et al., 2024)"),
    MetricInfo("peak_rss_mb", -1, ".0f", "peak resident memory of the process during the run, MiB"),
)}

#: Metrics renamed since a release: old name -> current name, with the date of the rename.
#: Result files and suites that use the old name still read (a suite gets a
#: DeprecationWarning); docs/plugins.md lists them.
RENAMED: dict[str, tuple[str, str]] = {
    "infer_s_per_epoch": ("infer_s_test_pass", "2026-12-06"),
}


def current_names(measured: dict[str, Any]) -> dict[str, Any]:
    """``measured`` (metric -> value) with every renamed metric under its current name."""
    return {RENAMED[m][0] if m in RENAMED else m: v for m, v in measured.items()}


DEFAULT_COLUMNS = ("auroc", "f1", "accuracy", "best_epoch", "train_s_per_epoch",
                   "infer_s_per_sample", "model_mb", "peak_rss_mb")
