"""``mmbench compare``: is a benchmark worse than its baseline by more than seed noise?

This is the CI regression gate. A fixed tolerance alone would either miss a regression on
a stable metric or cry wolf on a noisy one, so a quality metric fails only when it drops
by more than max(tolerance, k x seed std), the std being the larger of the two sides'.
Times and memory say something only on one machine (a laptop is no regression of a CI
runner), so they are judged only when both sides were measured on the same machine id.
Both sides go through the leaderboard's own aggregation, so a results folder and the
leaderboard JSON built from it compare as equal.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import UserError
from mmbench.files import write_text_atomic
from mmbench.leaderboard import Stat, from_results
from mmbench.metric_catalog import METRICS, current_names
from mmbench.results import left_out_notes, load_results

EXIT_REGRESSION = 1
NOT_COMPARED_MACHINE = "not compared: different or unknown machine"

#: dataset, configuration (encoder / alignment / fusion), robustness
Key = tuple[str, str, str]


@dataclass(frozen=True)
class Thresholds:
    tolerance: float = 0.02
    k: float = 3.0
    time_ratio: float = 1.5
    memory_ratio: float = 1.3

    def check(self) -> None:
        if self.tolerance < 0 or self.k < 0:
            raise UserError(f"--tolerance and --k must be >= 0, got {self.tolerance} and {self.k}")
        if self.time_ratio < 1 or self.memory_ratio < 1:
            raise UserError("--time-ratio and --memory-ratio are allowed growth factors and must be "
                            f">= 1 (1.5 = 50% slower fails), got {self.time_ratio} and {self.memory_ratio}")


@dataclass
class Side:
    """One side of the comparison, aggregated over seeds like the leaderboard does."""

    source: str
    suite: str
    rows: dict[Key, dict[str, Stat]]
    #: machine ids the numbers were measured on; empty when unknown
    machines: list[str]
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: what was left out of it (damaged or copied result files)
    notes: list[str] = field(default_factory=list)


@dataclass
class Change:
    dataset: str
    config: str
    robustness: str
    metric: str
    kind: str  # quality, time or memory
    baseline: Stat
    current: Stat
    delta: float | None
    #: the worst change still accepted, in the metric's units (None when not judged)
    allowed: float | None
    verdict: str  # regression, better, ok, not compared, no value

    @property
    def label(self) -> str:
        rob = "" if self.robustness == "-" else f" / {self.robustness}"
        return f"{self.dataset} | {self.config}{rob}"


@dataclass
class Comparison:
    baseline: Side
    current: Side
    thresholds: Thresholds
    costs_compared: bool
    changes: list[Change]
    only_baseline: list[Key]
    only_current: list[Key]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regression"]

    def to_dict(self) -> dict[str, Any]:
        def stat(s: Stat) -> dict[str, Any]:
            return {"mean": s.mean, "std": s.std, "n": s.n}

        return {
            "baseline": {"source": self.baseline.source, "suite": self.baseline.suite,
                         "machines": self.baseline.machines, "failed": self.baseline.failed},
            "current": {"source": self.current.source, "suite": self.current.suite,
                        "machines": self.current.machines, "failed": self.current.failed},
            "thresholds": asdict(self.thresholds),
            "times_and_memory": "compared (same machine)" if self.costs_compared else NOT_COMPARED_MACHINE,
            "regressions": len(self.regressions),
            "changes": [{"dataset": c.dataset, "config": c.config, "robustness": c.robustness,
                         "metric": c.metric, "kind": c.kind, "baseline": stat(c.baseline),
                         "current": stat(c.current), "delta": c.delta, "allowed": c.allowed,
                         "verdict": c.verdict} for c in self.changes],
            "only_in_baseline": [list(k) for k in self.only_baseline],
            "only_in_current": [list(k) for k in self.only_current],
        }


def load_side(path: Path) -> Side:
    """A results folder (one JSON per run) or a leaderboard JSON, as one comparable side."""
    path = Path(path)
    if path.is_dir():
        return _from_results_dir(path)
    if path.is_file():
        return _from_leaderboard_file(path)
    raise UserError(f"{path} does not exist: pass a results folder (one JSON per run, e.g. "
                    "results/quickstart) or a leaderboard JSON (e.g. leaderboard/quickstart.json)")


def _from_results_dir(path: Path) -> Side:
    results, left_out = load_results(path)
    ok = [r for r in results if r.get("status") == "ok"]
    if not results:
        suites = sorted(str(d) for d in path.iterdir() if d.is_dir() and any(d.glob("*.json")))
        hint = f"; it has suite folders: {', '.join(suites)}" if suites else ""
        if left_out:
            hint += f"; {len(left_out)} file(s) left out, e.g. {left_out[0]}"
        raise UserError(f"no result files in {path}: pass the results folder of one suite "
                        f"(e.g. results/quickstart), as `mmbench run` writes it{hint}")
    metrics = sorted({m for r in ok for m in r.get("metrics", {}) if m in METRICS})
    suites = sorted({str(r.get("suite")) for r in results})
    board = from_results(results, ", ".join(suites), "", metrics[0] if metrics else "auroc", metrics)
    machines = sorted({str(m) for r in ok if (m := r.get("environment", {}).get("machine_id"))})
    side = board_side(board.to_dict(), str(path), machines)
    side.notes = left_out_notes(left_out)
    return side


def _from_leaderboard_file(path: Path) -> Side:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as JSON ({exc}): pass a results folder or a leaderboard "
                        "JSON as `mmbench leaderboard` writes it") from exc
    return board_side(data, str(path), machines_of(data.get("environments", []) if isinstance(data, dict) else []))


def machines_of(environments: list[str]) -> list[str]:
    """The machine ids of a leaderboard's environment lines ("..., 1 threads, machine <id>")."""
    found = (re.search(r"\bmachine (\S+)$", str(env)) for env in environments)
    return sorted({m.group(1) for m in found if m and m.group(1) != "None"})


def board_side(board: Any, source: str, machines: list[str]) -> Side:
    """Rows of a leaderboard in its JSON form (``Leaderboard.to_dict``)."""
    try:
        rows = {}
        for dataset in board["datasets"]:
            for row in dataset["rows"]:
                key = (dataset["dataset"], f"{row['encoder']} / {row['alignment']} / {row['fusion']}",
                       row.get("robustness", "-"))
                rows[key] = {m: Stat(s["mean"], s["std"], s["n"])
                             for m, s in current_names(row["metrics"]).items()}
        return Side(source, str(board.get("suite", "")), rows, machines, list(board.get("failed", [])))
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{source} is not a leaderboard JSON as `mmbench leaderboard` writes it "
                        f"(missing or malformed {exc}): pass leaderboard/<suite>.json or a results folder"
                        ) from exc


def metric_kind(metric: str) -> str:
    """Time and memory by their unit suffix (the catalogue names them so); the rest is quality."""
    if metric.endswith("_mb"):
        return "memory"
    if metric.endswith("_s") or "_s_" in metric:
        return "time"
    return "quality"


def compare(baseline: Side, current: Side, thresholds: Thresholds = Thresholds()) -> Comparison:
    """Judge every configuration and metric the two sides share."""
    thresholds.check()
    common = [key for key in baseline.rows if key in current.rows]
    if not common:
        raise UserError(f"{baseline.source} and {current.source} share no configuration (dataset, "
                        "encoder / alignment / fusion, robustness): nothing to compare; are they the "
                        "same suite?")
    same_machine = len(baseline.machines) == 1 and baseline.machines == current.machines
    changes = []
    for key in common:
        before, after = baseline.rows[key], current.rows[key]
        for metric in before:
            if metric not in after or not METRICS.get(metric) or not METRICS[metric].direction:
                continue
            changes.append(_judge(key, metric, before[metric], after[metric], thresholds, same_machine))
    return Comparison(baseline, current, thresholds, same_machine, changes,
                      [k for k in baseline.rows if k not in current.rows],
                      [k for k in current.rows if k not in baseline.rows])


def _judge(key: Key, metric: str, before: Stat, after: Stat, th: Thresholds, same_machine: bool) -> Change:
    kind = metric_kind(metric)
    change = Change(*key, metric, kind, before, after, None, None, "no value")
    if before.mean is None or after.mean is None:
        return change
    change.delta = after.mean - before.mean
    # a cost of 0 was not measured (extraction served from the cache): no ratio to grow past
    if kind != "quality" and (not same_machine or before.mean <= 0):
        change.verdict = "not compared"
        return change
    noise = th.k * max(before.std or 0.0, after.std or 0.0)
    direction = METRICS[metric].direction
    if kind == "quality":
        margin = max(th.tolerance, noise)
        worse_by = -direction * change.delta
        change.allowed = -direction * margin
    else:  # lower is better; growth past the ratio fails unless it is within seed noise
        ratio = th.time_ratio if kind == "time" else th.memory_ratio
        margin = max((ratio - 1) * before.mean, noise)
        worse_by = change.delta
        change.allowed = margin
    change.verdict = "regression" if worse_by > margin else "better" if -worse_by > margin else "ok"
    return change


def write_json(comparison: Comparison, path: Path) -> Path:
    text = json.dumps(comparison.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    return write_text_atomic(Path(path), text)


def show(out: Any, comparison: Comparison) -> None:
    """The table of changes, then what was not compared, then the verdict (last, for CI logs)."""
    from rich.markup import escape
    from rich.table import Table

    b, c = comparison.baseline, comparison.current
    table = Table("dataset | configuration", "metric", "baseline", "current", "delta", "limit", "verdict",
                  title=f"compare: {b.source} -> {c.source}", title_justify="left")
    style = {"regression": "bold red", "better": "green", "ok": "", "not compared": "dim", "no value": "dim"}
    for ch in comparison.changes:
        fmt = METRICS[ch.metric].fmt
        delta = "" if ch.delta is None else format(ch.delta, "+" + fmt)
        limit = "" if ch.allowed is None else format(ch.allowed, "+" + fmt)
        verdict = ch.verdict.upper() if ch.verdict == "regression" else ch.verdict
        table.add_row(escape(ch.label), ch.metric, ch.baseline.format(fmt), ch.current.format(fmt), delta,
                      limit, f"[{style[ch.verdict]}]{verdict}[/]" if style[ch.verdict] else verdict)
    out.print(table)
    th = comparison.thresholds
    out.print(f"quality fails when worse by more than max({th.tolerance:g}, {th.k:g} x seed std); "
              f"times fail past x{th.time_ratio:g}, memory past x{th.memory_ratio:g} (and beyond "
              f"{th.k:g} x seed std)")
    if not comparison.costs_compared:
        out.print(f"times and memory {NOT_COMPARED_MACHINE} (baseline: "
                  f"{', '.join(b.machines) or 'unknown'}; current: {', '.join(c.machines) or 'unknown'})")
    for name, keys in (("baseline", comparison.only_baseline), ("current", comparison.only_current)):
        for dataset, config, rob in keys:
            rob = "" if rob == "-" else f" / {rob}"
            out.print(f"[yellow]only in the {name}[/yellow] (not compared): {escape(f'{dataset} | {config}{rob}')}")
    for note in b.notes + c.notes:
        out.print(f"[yellow]note:[/yellow] {escape(note)}")
    for f in c.failed:
        out.print(f"[yellow]failed in the current run[/yellow]: {escape(str(f.get('dataset')))} | "
                  f"{escape(str(f.get('config')))} | seed {f.get('seed')}")
    regressions = comparison.regressions
    if not regressions:
        out.print(f"[green]no regression[/green] in {len(comparison.changes)} comparisons")
        return
    out.print(f"[bold red]{len(regressions)} regression(s):[/bold red]")
    for ch in regressions:
        fmt = METRICS[ch.metric].fmt
        out.print(f"  {escape(ch.label)}: {ch.metric} {ch.baseline.mean:{fmt}} -> {ch.current.mean:{fmt}} "
                  f"({ch.delta:+{fmt}}; limit {ch.allowed:+{fmt}})")
