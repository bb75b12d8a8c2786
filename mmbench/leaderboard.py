"""The leaderboard, rebuilt from result files alone.

Per dataset, one row per configuration with mean and std over seeds, the best value per
column marked and a rank on the primary metric. When the runs kept their test predictions,
the primary metric also gets a 95% bootstrap interval and a flag on every configuration not
significantly different from the best (``mmbench.bootstrap``). Across datasets, each
configuration gets its mean rank and Borda count, so one table answers "what should I use".
Numbers a paper printed (the suite's ``[[report.reference]]``) travel beside the measured ones.
Everything is sorted and formatted the same way every time: an unchanged result set gives
byte-identical files, so a committed leaderboard shows no churn in git.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench import bootstrap, exact_stats
from mmbench.errors import UserError
from mmbench.files import DISK_FULL, WriteFailed, refuse_foreign
from mmbench.grid import Suite, config_label
from mmbench.metric_catalog import METRICS, current_names
from mmbench.result_index import ResultIndex
from mmbench.results import error_text, left_out_notes, load_results


@dataclass
class Stat:
    mean: float | None
    std: float | None
    n: int

    def format(self, fmt: str) -> str:
        if self.mean is None:
            return "–"
        if self.n < 2:
            return format(self.mean, fmt)
        return f"{self.mean:{fmt}} ± {self.std:{fmt}}"


@dataclass
class Configuration:
    """A configuration's labels, as results print them."""

    encoder: str
    alignment: str
    fusion: str
    robustness: str

    @property
    def config(self) -> str:
        return config_label(self.encoder, self.alignment, self.fusion, self.robustness)


@dataclass
class Row(Configuration):
    seeds: list[int]
    stats: dict[str, Stat]
    rank: int = 0
    best: list[str] = field(default_factory=list)
    #: bootstrap interval of the primary metric (mean over seeds); None without predictions
    ci: tuple[float, float] | None = None
    #: the paired interval of (this row - the best row) on the primary metric contains 0;
    #: None for the best row itself and where it cannot be computed
    not_different: bool | None = None
    #: what the runs were, as values (the labels are for reading): encoders, alignment,
    #: fusion (with training settings) and robustness of the run spec, e.g. for plots of a
    #: metric against lambda or the missing rate
    settings: dict[str, Any] = field(default_factory=dict)
    #: metric -> {"value", "source"}: the number a paper printed for this configuration
    references: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class OverallRow(Configuration):
    """One configuration across the datasets it ran on."""

    #: dataset -> its rank there (1 = best)
    ranks: dict[str, int]
    mean_rank: float
    #: configurations it beat, summed over datasets (Borda count)
    borda: int


@dataclass
class DatasetBoard:
    dataset: str
    task: str
    rows: list[Row]

    @property
    def has_robustness(self) -> bool:
        """Whether any row ran under missing modalities or noise (then a column shows it)."""
        return any(row.robustness != "-" for row in self.rows)


@dataclass
class Leaderboard:
    suite: str
    description: str
    primary: str
    columns: list[str]
    datasets: list[DatasetBoard]
    failed: list[dict[str, Any]]
    environments: list[str]
    #: resamples, seed and level of the intervals
    bootstrap: dict[str, Any] = field(default_factory=dict)
    #: every configuration ranked across the datasets it ran on
    overall: list[OverallRow] = field(default_factory=list)
    #: what a reader must know before trusting a row, e.g. runs the epoch cap ended
    warnings: list[str] = field(default_factory=list)

    @property
    def has_intervals(self) -> bool:
        return any(row.ci is not None for board in self.datasets for row in board.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "description": self.description,
            "primary": self.primary,
            "bootstrap": self.bootstrap,
            "columns": self.columns,
            "environments": self.environments,
            "datasets": [
                {
                    "dataset": board.dataset,
                    "task": board.task,
                    "rows": [
                        {
                            "rank": row.rank,
                            "encoder": row.encoder,
                            "alignment": row.alignment,
                            "fusion": row.fusion,
                            "robustness": row.robustness,
                            "seeds": row.seeds,
                            "best": row.best,
                            "ci": None if row.ci is None else {"metric": self.primary, "lo": row.ci[0],
                                                               "hi": row.ci[1]},
                            "not_different_from_best": row.not_different,
                            "metrics": {m: {"mean": s.mean, "std": s.std, "n": s.n}
                                        for m, s in row.stats.items()},
                            "settings": row.settings,
                            "references": row.references,
                        }
                        for row in board.rows
                    ],
                }
                for board in self.datasets
            ],
            "overall": [
                {"encoder": o.encoder, "alignment": o.alignment, "fusion": o.fusion, "robustness": o.robustness,
                 "ranks": o.ranks, "mean_rank": o.mean_rank, "borda": o.borda}
                for o in self.overall
            ],
            "failed": self.failed,
            "warnings": self.warnings,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Leaderboard:
        """A leaderboard read back from its JSON (``to_dict``), e.g. to render the README."""
        boards = []
        for board in data["datasets"]:
            rows = []
            for r in board["rows"]:
                ci = r.get("ci")
                rows.append(Row(encoder=r["encoder"], alignment=r["alignment"], fusion=r["fusion"],
                                robustness=r["robustness"], seeds=list(r["seeds"]),
                                stats={m: Stat(v["mean"], v["std"], v["n"])
                                       for m, v in current_names(r["metrics"]).items()},
                                rank=r["rank"], best=list(r["best"]),
                                ci=None if ci is None else (ci["lo"], ci["hi"]),
                                not_different=r.get("not_different_from_best"),
                                settings=r.get("settings", {}), references=r.get("references", {})))
            boards.append(DatasetBoard(board["dataset"], board["task"], rows))
        overall = [OverallRow(**o) for o in data.get("overall", [])]
        columns = list(current_names(dict.fromkeys(data["columns"])))
        return cls(data["suite"], data["description"], data["primary"], columns, boards,
                   list(data["failed"]), list(data["environments"]), dict(data.get("bootstrap", {})), overall,
                   list(data.get("warnings", [])))


def build(suite: Suite) -> tuple[Leaderboard, list[str]]:
    """The leaderboard of a suite's current grid, and notes on what was left out."""
    index = ResultIndex(suite.results_dir)
    results, left_out = load_results(suite.results_dir, index.check)
    notes = left_out_notes(left_out)
    specs = {spec.run_id: spec for spec in suite.runs()}
    order = {run_id: i for i, run_id in enumerate(specs)}
    outside = [r for r in results if r["run_id"] not in specs]
    if outside:
        notes.append(f"{len(outside)} result(s) in {suite.results_dir} belong to no run of the "
                     "current suite and were left out")
    # labels change no number, so they are not in the run id: take them from the suite as it is now
    results = sorted(({**r, "labels": specs[r["run_id"]].labels()} for r in results if r["run_id"] in specs),
                     key=lambda r: order[r["run_id"]])
    for r in results:
        for warning in r.get("warnings") or []:
            labels = r["labels"]
            notes.append(f"{labels['dataset']} | {labels['config']} | seed {r['spec']['seed']}: {warning}")
    resamples = int(suite.report.get("bootstrap", bootstrap.RESAMPLES))
    seed = int(suite.report.get("bootstrap_seed", bootstrap.SEED))
    primary = suite.report["primary"]
    replicates = index.replicates(primary, resamples, seed)
    tasks = {r["run_id"]: r["data"]["task"] for r in results if r["status"] == "ok"}
    found = {run_id: replicates(r, tasks[run_id]) for r in results if (run_id := r["run_id"]) in tasks
             } if primary in bootstrap.QUALITY_METRICS and resamples > 0 else {}
    lost = [r["run_id"] for r in results if r.get("predictions") and r["run_id"] in found
            and found[r["run_id"]] is None]
    if lost:
        notes.append(f"{len(lost)} result(s) name a test-predictions file that is missing or unreadable "
                     f"(e.g. {lost[0]}); their rows have no confidence interval")
    try:
        index.save(keep=set(tasks))
    except OSError as exc:  # a cache: a read-only results folder still gets its leaderboard
        notes.append(f"the results index in {index.folder} could not be written ({exc}); the next "
                     "rebuild reads every result file again")
    references = suite.report.get("reference", [])
    columns = list(dict.fromkeys([*suite.report["columns"], *(ref["metric"] for ref in references)]))
    board = from_results(results, suite.name, suite.description, primary, columns,
                         replicates=lambda run, task: found.get(run["run_id"]), resamples=resamples, seed=seed,
                         references=references)
    return board, notes


def from_results(results: list[dict[str, Any]], suite: str, description: str, primary: str,
                 columns: list[str], predictions: dict[str, dict[str, np.ndarray] | None] | None = None,
                 resamples: int = bootstrap.RESAMPLES, seed: int = bootstrap.SEED,
                 references: list[dict[str, Any]] | None = None,
                 replicates: Replicates | None = None) -> Leaderboard:
    """Aggregate result records (in grid order) into a leaderboard; ``predictions`` (the
    test predictions per run id, ``results.read_predictions``) add the bootstrap intervals,
    ``references`` (a suite's ``[[report.reference]]`` entries) the papers' numbers;
    ``replicates`` (``result_index``) gives each run's bootstrap replicates instead of
    computing them from ``predictions``."""
    if replicates is None and predictions:
        replicates = _computed_replicates(predictions, primary, resamples, seed)
    metrics = list(dict.fromkeys([primary, *columns]))
    groups: dict[str, dict[tuple[str, str, str, str], list[dict]]] = {}
    tasks: dict[str, str] = {}
    failed = []
    for r in results:
        labels = r["labels"]
        if r["status"] != "ok":
            failed.append({"dataset": labels["dataset"], "config": labels["config"],
                           "seed": r["spec"]["seed"], "error": error_text(r["error"])})
            continue
        tasks[labels["dataset"]] = r["data"]["task"]
        key = (labels["encoder"], labels["alignment"], labels["fusion"], labels.get("robustness", "-"))
        groups.setdefault(labels["dataset"], {}).setdefault(key, []).append(r)

    boards, warnings = [], []
    for dataset, configs in groups.items():
        runs_of: dict[int, list[dict]] = {}
        rows = []
        for (enc, al, fu, rob), runs in configs.items():
            warnings += _epoch_cap_warning(dataset, config_label(enc, al, fu, rob), runs)
            rows.append(Row(encoder=enc, alignment=al, fusion=fu, robustness=rob,
                            seeds=sorted(r["spec"]["seed"] for r in runs),
                            stats={m: _stat([r["metrics"].get(m) for r in runs]) for m in metrics},
                            settings=_settings(runs[0]["spec"])))
            runs_of[id(rows[-1])] = runs
        for ref in references or []:
            for row in rows:
                if ref["dataset"] == dataset and ref["config"] == row.config:
                    row.references[ref["metric"]] = {"value": ref["value"], "source": ref["source"]}
        _rank(rows, primary)
        _mark_best(rows, metrics)
        if replicates is not None and resamples > 0:
            _add_intervals(rows, runs_of, primary, tasks[dataset], replicates)
        boards.append(DatasetBoard(dataset, tasks[dataset], rows))
    environments = sorted({
        f"mmbench {e.get('mmbench_version')}, torch {e.get('torch')}, python {e.get('python')}, "
        f"{e.get('cpu_count')} CPUs, {e.get('threads')} threads, machine {e.get('machine_id')}"
        for e in (r.get("environment", {}) for r in results if r["status"] == "ok")
    })
    settings = {"resamples": resamples, "seed": seed, "level": bootstrap.LEVEL}
    return Leaderboard(suite, description, primary, columns, boards, failed, environments, settings,
                       overall=_overall(boards, primary), warnings=warnings)


def _epoch_cap_warning(dataset: str, config: str, runs: list[dict[str, Any]]) -> list[str]:
    """A configuration whose runs stopped at the epoch cap while early stopping was on:
    the cap, not the validation loss, chose their result (``hit_epoch_cap``)."""
    capped = [r for r in runs if r["metrics"].get("hit_epoch_cap") == 1.0]
    if not capped:
        return []
    caps = sorted({r["spec"].get("fusion", {}).get("train", {}).get("epochs") for r in capped} - {None})
    cap = f" ({', '.join(map(str, caps))} epochs)" if caps else ""
    return [f"{dataset} | {config}: {len(capped)} of {len(runs)} run(s) reached the epoch cap{cap} before "
            "early stopping, so the cap decided their result; raise the fusion's train epochs"]


#: the parts of a run's spec that tell configurations apart (not the dataset, seed or split)
SETTING_KEYS = ("encoders", "alignment", "fusion", "robustness")


def _settings(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: spec[key] for key in SETTING_KEYS if key in spec}


def _overall(boards: list[DatasetBoard], primary: str) -> list[OverallRow]:
    """Mean rank and Borda count of every configuration, best first: more datasets first
    (a mean over fewer datasets is not comparable), then lower mean rank, then more
    configurations beaten."""
    found: dict[tuple[str, str, str, str], dict[str, tuple[int, int]]] = {}
    for board in boards:
        ranked = [row for row in board.rows if row.stats[primary].mean is not None]  # ranks 1..n
        for row in ranked:
            found.setdefault((row.encoder, row.alignment, row.fusion, row.robustness), {})[board.dataset] = (
                row.rank, len(ranked) - row.rank)
    rows = [OverallRow(*key, ranks={d: rank for d, (rank, _) in sorted(per.items())},
                       mean_rank=statistics.fmean(rank for rank, _ in per.values()),
                       borda=sum(beaten for _, beaten in per.values()))
            for key, per in found.items()]
    rows.sort(key=lambda o: (-len(o.ranks), o.mean_rank, -o.borda, o.config))
    return rows


#: ``run, task -> (test-set key, the primary metric on every resample)``, None without predictions
Replicates = Callable[[dict[str, Any], str], "tuple[str, np.ndarray] | None"]


def _computed_replicates(predictions: dict[str, dict[str, np.ndarray] | None], primary: str, resamples: int,
                         seed: int) -> Replicates:
    draws: dict[str, np.ndarray] = {}  # one draw per test set: every configuration shares it

    def of(run: dict[str, Any], task: str) -> tuple[str, np.ndarray] | None:
        arrays = predictions.get(run["run_id"])
        if arrays is None:
            return None
        test = bootstrap.TestSet.of(arrays["ids"], arrays["labels"], arrays["proba"], task)
        if test.key not in draws:
            draws[test.key] = bootstrap.draws(test, resamples, seed)
        return test.key, bootstrap.replicates(test, primary, draws[test.key])

    return of


def _add_intervals(rows: list[Row], runs_of: dict[int, list[dict]], primary: str, task: str,
                   replicates: Replicates) -> None:
    """Set each row's interval (the bootstrap of its mean over seeds) and, paired on the
    same resampled test samples, whether it is significantly different from the best row."""
    if primary not in bootstrap.QUALITY_METRICS:
        return
    samples: dict[int, dict[int, tuple[str, np.ndarray]]] = {}  # row -> seed -> (test set, values)
    for row in rows:
        per_seed = {}
        for r in runs_of[id(row)]:
            found = replicates(r, task)
            if found is None:
                break
            per_seed[r["spec"]["seed"]] = found
        else:
            samples[id(row)] = per_seed
            row.ci = bootstrap.interval(np.mean([v for _, v in per_seed.values()], axis=0))
    best = samples.get(id(rows[0])) if rows and rows[0].stats[primary].mean is not None else None
    if best is None:
        return
    for row in rows[1:]:
        mine = samples.get(id(row))
        if mine is None:
            continue
        paired = sorted(s for s in mine if s in best and mine[s][0] == best[s][0])
        if not paired:
            continue
        difference = np.mean([mine[s][1] - best[s][1] for s in paired], axis=0)
        ci = bootstrap.interval(difference)
        row.not_different = None if ci is None else ci[0] <= 0.0 <= ci[1]


def _stat(values: list[Any]) -> Stat:
    present = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not present:
        return Stat(None, None, 0)
    std = exact_stats.stdev(present) if len(present) > 1 else 0.0  # = statistics.stdev, 5x faster
    return Stat(statistics.fmean(present), std, len(present))


def _rank(rows: list[Row], primary: str) -> None:
    """Sort rows best-first on the primary metric (ties and gaps by label) and number them."""
    direction = METRICS[primary].direction or 1

    def key(row: Row):
        mean = row.stats[primary].mean
        return (mean is None, -direction * (mean or 0.0), row.config)

    rows.sort(key=key)
    for i, row in enumerate(rows, start=1):
        row.rank = i


def _mark_best(rows: list[Row], metrics: list[str]) -> None:
    for metric in metrics:
        direction = METRICS[metric].direction
        means = [row.stats[metric].mean for row in rows if row.stats[metric].mean is not None]
        if not direction or len(means) < 2:
            continue
        best = max(means) if direction > 0 else min(means)
        for row in rows:
            if row.stats[metric].mean == best:
                row.best.append(metric)


def write(board: Leaderboard, out_dir: Path, reporters: list[Any],
          failed: dict[str, str] | None = None) -> list[Path]:
    """Write the board with each reporter; return every file written.

    Every reporter's ``targets`` are checked first: a file mmbench did not generate where
    one goes stops the leaderboard before any file is written (not after the CSV and JSON
    are). A reporter that raises is skipped and the others still write: its name and error
    go into ``failed`` (when given; else the error propagates), so the caller can say the
    leaderboard is incomplete. A full disk or a failed write is not a reporter's fault, nor
    a refusal to overwrite a file mmbench did not generate: those always propagate."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def check(reporter: Any) -> None:
        for path, is_ours in reporter.targets(board, out_dir):
            refuse_foreign(path, is_ours)

    ordered = sorted(reporters, key=lambda r: r.embeds_others)  # pages after what they embed
    for reporter in [r for r in ordered if _attempt(r, failed, check)]:
        _attempt(reporter, failed, lambda r: written.extend(r.write(board, out_dir)))
    return written


def _attempt(reporter: Any, failed: dict[str, str] | None, step: Callable[[Any], Any]) -> bool:
    """``step(reporter)``; False when it raised and the reporter is recorded in ``failed``
    (see ``write`` for what always propagates)."""
    try:
        step(reporter)
    except Exception as exc:
        if failed is None or isinstance(exc, (UserError, WriteFailed)) or (
                isinstance(exc, OSError) and exc.errno in DISK_FULL):
            raise
        failed[reporter.name] = f"{type(exc).__name__}: {exc}"
        return False
    return True
