"""The grid a suite expands to, as plain data: PluginConfig (one resolved plugin choice),
RunSpec (one run; its hash is the run id), Suite (the axes and settings) and the labels
results and leaderboards print.

Kept apart from the TOML reader (``mmbench.suite``), which needs the registry, so that
results, leaderboards and plugins can name these types without importing the reader: the
core's import graph stays acyclic. ``mmbench.suite`` re-exports every name here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mmbench.hashing import stable_hash
from mmbench.robustness import label as robustness_label


@dataclass(frozen=True)
class PluginConfig:
    """One resolved plugin choice on an axis of the grid."""

    kind: str
    name: str
    version: str
    params: dict[str, Any]
    label: str
    #: fusions only: every training setting of the run (defaults < the fusion's own
    #: protocol < the suite's ``[train]`` < the entry's ``train`` table).
    train: dict[str, Any] = field(default_factory=dict)
    #: the entry's label (or name) before sweep values are added: one name for all its points
    entry: str = ""
    #: fusions only: axis -> the dataset / encoder / alignment labels this fusion runs with
    #: (absent: all); it shapes the grid, changes no number, so it is not part of the identity
    scope: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def names(self) -> set[str]:
        """What a scope may call this config by: its point label or its entry's label."""
        return {self.label, self.entry}

    def runs_with(self, dataset: PluginConfig, encoders: dict[str, PluginConfig],
                  alignment: PluginConfig | None) -> bool:
        """Whether the grid pairs this fusion with this dataset, encoders and alignment."""
        names = {"datasets": dataset.names(), "encoders": encoder_names(encoders),
                 "alignments": alignment.names() if alignment is not None else {"-"}}
        return all(names[axis] & set(labels) for axis, labels in self.scope.items())

    def identity(self) -> dict[str, Any]:
        out = {"name": self.name, "version": self.version, "params": self.params}
        return {**out, "train": self.train} if self.kind == "fusion" else out


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run; its hash names the result file."""

    suite: str
    dataset: PluginConfig
    dataset_fingerprint: str
    encoders: dict[str, PluginConfig]
    alignment: PluginConfig | None
    fusion: PluginConfig
    split: dict[str, Any]
    seed: int
    threads: int
    #: missing-modality and noise settings (``mmbench.robustness``); None for clean data
    robustness: dict[str, Any] | None = None
    #: where encoders and fusions run (``--device``); like ``threads``, not part of the
    #: run's identity: it changes how long a run takes, not what it computes
    device: str = "cpu"

    def identity(self) -> dict[str, Any]:
        """What the run id hashes: not the suite name or labels, which change no number."""
        return {
            "dataset": {**self.dataset.identity(), "fingerprint": self.dataset_fingerprint},
            "encoders": {m: c.identity() for m, c in sorted(self.encoders.items())},
            "alignment": self.alignment.identity() if self.alignment else None,
            "fusion": self.fusion.identity(),
            "split": self.split,
            "seed": self.seed,
            "robustness": self.robustness,
        }

    @cached_property
    def run_id(self) -> str:
        """Computed once per spec (the spec is frozen): a 30,000-run leaderboard asks each
        spec several times."""
        return stable_hash(self.identity())

    def labels(self) -> dict[str, str]:
        """Display names, as results and leaderboards show them."""
        encoder = encoder_label(self.encoders)
        alignment = self.alignment.label if self.alignment else "-"
        robustness = robustness_label(self.robustness)
        config = config_label(encoder, alignment, self.fusion.label, robustness)
        return {"dataset": self.dataset.label, "encoder": encoder, "alignment": alignment,
                "fusion": self.fusion.label, "robustness": robustness, "config": config}


@dataclass
class Suite:
    path: Path
    name: str
    description: str
    seeds: list[int]
    threads: int
    split: dict[str, Any]
    datasets: list[tuple[PluginConfig, str, tuple[str, ...] | None]]  # (config, fingerprint, raw modalities)
    encoders: list[dict[str, PluginConfig]]
    alignments: list[PluginConfig | None]
    fusions: list[PluginConfig]
    report: dict[str, Any]
    robustness: list[dict[str, Any] | None] = field(default_factory=lambda: [None])
    #: ``[executor]``: kind, address, retries and local_cluster (n_workers, threads_per_worker)
    executor: dict[str, Any] = field(default_factory=dict)
    #: ``[suite] run_timeout``: seconds a run may take (0: no limit); like ``threads``, not part of run ids
    run_timeout: float = 0.0

    #: (the axes as text, the grid they gave): validation and the leaderboard each expand the
    #: grid, and a 30,000-run grid takes seconds to hash
    _expanded: tuple[str, list[RunSpec]] | None = field(default=None, init=False, repr=False, compare=False)

    def runs(self) -> list[RunSpec]:
        """The grid, in a stable order (datasets outermost, seeds innermost).

        Encoders apply only to a dataset's raw modalities, so a dataset of vectors runs once
        however many encoder entries the suite has (duplicates are dropped). Expanded once
        while the axes stay as they are."""
        axes = repr((self.name, self.datasets, self.encoders, self.alignments, self.robustness, self.fusions,
                     self.seeds, self.split, self.threads))
        if self._expanded is None or self._expanded[0] != axes:
            self._expanded = (axes, self._expand())
        return list(self._expanded[1])

    def _expand(self) -> list[RunSpec]:
        grid = itertools.product(self.datasets, self.encoders or [{}], self.alignments,
                                 self.robustness, self.fusions, self.seeds)
        runs: dict[str, RunSpec] = {}
        for (ds, fp, raw), enc, al, rob, fu, seed in grid:
            if not fu.runs_with(ds, enc, al):
                continue
            used = {m: c for m, c in enc.items() if raw is None or m in raw}
            spec = RunSpec(suite=self.name, dataset=ds, dataset_fingerprint=fp, encoders=used,
                           alignment=al, fusion=fu, split=self.split,
                           seed=seed, threads=self.threads, robustness=rob)
            runs.setdefault(spec.run_id, spec)
        return list(runs.values())

    @property
    def results_dir(self) -> Path:
        return Path(self.report["results"]) / self.name


def config_label(encoder: str, alignment: str, fusion: str, robustness: str) -> str:
    """A configuration as results and leaderboards print it (and references name it)."""
    config = f"{encoder} / {alignment} / {fusion}"
    return config if robustness == "-" else f"{config} / {robustness}"


def encoder_names(encoders: dict[str, PluginConfig]) -> set[str]:
    """What a fusion's scope may call an encoder entry: its label as the leaderboard prints
    it, or the same before sweep values are added (one name for all points of a sweep)."""
    return {encoder_label(encoders), "+".join(sorted({c.entry or c.label for c in encoders.values()})) or "-"}


def encoder_label(encoders: dict[str, PluginConfig]) -> str:
    """One label for the encoders of a run: one encoder for two modalities shows once."""
    labels = sorted({c.label for c in encoders.values()})
    return "+".join(labels) if labels else "-"
