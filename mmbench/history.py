"""A suite's leaderboard over commits: ``<output>/history/<suite>.jsonl`` (asv's idea).

``record`` appends one line per call: the commit, the machine id, when, the environments and,
per configuration, every metric's mean / std / n over seeds with the primary metric's
bootstrap interval. The file is append-only so it can be committed (or kept on an artifact
branch) and merged by concatenation; each line is written with one ``write`` under an
exclusive lock and fsynced, and a line torn by a crash or a full disk is skipped with a note
when read (the next record starts on a fresh line), so one bad line never loses the rest.

``check`` asks whether the last point stepped away from the previous ones by more than seed
noise, with ``mmbench compare``'s own model (max(tolerance, k x seed std); times and memory
only on one machine id): the previous points of the last point's machine (else of any
machine, quality only) are pooled into one baseline whose std is the larger of the seed std
and the spread of their means, and compared with the last point.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mmbench.compare import Comparison, Key, Side, Thresholds, board_side, compare, machines_of, metric_kind
from mmbench.errors import UserError
from mmbench.leaderboard import Leaderboard, Stat
from mmbench.metric_catalog import METRICS

SCHEMA = 1
#: previous points pooled into the check's baseline
WINDOW = 5
FOLDER = "history"


@dataclass
class Point:
    """One recorded line."""

    line: int
    commit: str
    machine: str
    recorded_at: str
    primary: str
    side: Side  # rows as ``compare`` reads them: (dataset, config, robustness) -> metric -> Stat
    #: (dataset, config, robustness) -> (lo, hi) of the primary metric
    intervals: dict[Key, tuple[float, float]]

    @property
    def short(self) -> str:
        return self.commit[:8]


def path_of(out_dir: Path, suite: str) -> Path:
    return Path(out_dir) / FOLDER / f"{suite}.jsonl"


def plot_dir(out_dir: Path, suite: str) -> Path:
    """Where ``show`` writes its plots; the site page shows every PNG in it."""
    return Path(out_dir) / FOLDER / suite


def summary(board: Leaderboard, commit: str, machine: str, recorded_at: str | None = None) -> dict[str, Any]:
    """The line ``record`` appends: the leaderboard's rows without labels' settings or ranks."""
    return {
        "schema": SCHEMA,
        "suite": board.suite,
        "commit": commit,
        "machine": machine,
        "recorded_at": recorded_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "primary": board.primary,
        "environments": board.environments,
        "datasets": [
            {"dataset": d.dataset, "rows": [
                {"encoder": r.encoder, "alignment": r.alignment, "fusion": r.fusion, "robustness": r.robustness,
                 "seeds": r.seeds, "ci": None if r.ci is None else {"lo": r.ci[0], "hi": r.ci[1]},
                 "metrics": {m: {"mean": s.mean, "std": s.std, "n": s.n} for m, s in r.stats.items()}}
                for r in d.rows]}
            for d in board.datasets],
    }


def machine_of(board: Leaderboard) -> str:
    """The machine the results were measured on (one), else this machine's id."""
    from mmbench.results import machine_id

    found = machines_of(board.environments)
    return found[0] if len(found) == 1 else machine_id()


def append(path: Path, record: dict[str, Any]) -> Path:
    """Append one JSON line, crash-safely: one write under an exclusive lock, then fsync;
    after a torn last line (a killed writer, a full disk) the record starts on a new line."""
    line = (json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        _lock(fd)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        raise UserError(f"{path}: the history record could not be written ({exc}); the lines already "
                        "there are intact (a partial line is skipped when read)") from exc
    finally:
        os.close(fd)
    return path


def _lock(fd: int) -> None:
    """Two writers at once append whole lines one after the other (POSIX; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # Windows: O_APPEND alone
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def read(path: Path) -> tuple[list[Point], list[str]]:
    """Every readable point in file order, and a note per damaged line skipped."""
    path = Path(path)
    if not path.is_file():
        return [], []
    points, notes = [], []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            side = board_side(data, f"{path}:{number}", [str(data["machine"])])
            intervals = {(d["dataset"], f"{r['encoder']} / {r['alignment']} / {r['fusion']}", r["robustness"]):
                         (float(r["ci"]["lo"]), float(r["ci"]["hi"]))
                         for d in data["datasets"] for r in d["rows"] if r.get("ci")}
            points.append(Point(number, str(data["commit"]), str(data["machine"]), str(data["recorded_at"]),
                                str(data["primary"]), side, intervals))
        except (ValueError, KeyError, TypeError, AttributeError, UserError) as exc:
            notes.append(f"{path}:{number}: damaged line skipped ({type(exc).__name__}: {exc})")
    return points, notes


def label(key: Key) -> str:
    dataset, config, robustness = key
    return f"{dataset} | {config}" + ("" if robustness == "-" else f" / {robustness}")


def select(points: list[Point], metric: str, config: str | None = None,
           machine: str | None = None) -> tuple[list[Point], list[Key], str | None]:
    """The points and configurations a trend shows: configurations whose label contains
    ``config`` (case-insensitive); for a time or memory metric, only one machine's points
    (``machine``, else the last point's), since times of two machines are not comparable."""
    if metric_kind(metric) != "quality" and points:
        machine = machine or points[-1].machine
        points = [p for p in points if p.machine == machine]
    elif machine:
        points = [p for p in points if p.machine == machine]
    else:
        machine = None
    text = (config or "").lower()
    keys = sorted({k for p in points for k, row in p.side.rows.items() if metric in row
                   and text in label(k).lower()}, key=label)
    return points, keys, machine


def value(point: Point, key: Key, metric: str) -> tuple[float, float, float] | None:
    """(mean, lo, hi) at a point: the bootstrap interval for the primary metric, else ± std."""
    stat = point.side.rows.get(key, {}).get(metric)
    if stat is None or stat.mean is None:
        return None
    if metric == point.primary and key in point.intervals:
        lo, hi = point.intervals[key]
        return stat.mean, lo, hi
    return stat.mean, stat.mean - (stat.std or 0.0), stat.mean + (stat.std or 0.0)


def plot(points: list[Point], keys: list[Key], metric: str, title: str, path: Path) -> Path:
    """The metric against the commit (in recording order), one line per configuration with
    its interval as error bars; byte-identical for the same history."""
    import io

    import matplotlib.style
    from matplotlib.figure import Figure

    from mmbench.files import write_bytes_atomic

    height = max(4.0, 1.5 + 0.16 * len(keys))
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(11.0, height), dpi=100)
        ax = fig.add_axes((0.08, 1.0 / height, 0.5, 1 - 1.5 / height))
        fig.suptitle(title, fontsize=10, x=0.08, ha="left")
        for key in keys:
            found = [(i, v) for i, p in enumerate(points) if (v := value(p, key, metric)) is not None]
            if not found:
                continue
            xs, ys = [i for i, _ in found], [v[0] for _, v in found]
            below, above = [v[0] - v[1] for _, v in found], [v[2] - v[0] for _, v in found]
            ax.errorbar(xs, ys, yerr=[below, above], marker="o", markersize=3, capsize=2, linewidth=1,
                        label=label(key)[:80])
        ax.set_xticks(range(len(points)), [p.short for p in points], rotation=60, fontsize=7)
        ax.set_xlabel("commit (in recording order)")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return write_bytes_atomic(path, buffer.getvalue())


def check(points: list[Point], thresholds: Thresholds = Thresholds(), window: int = WINDOW) -> Comparison | None:
    """The last point against the pooled previous ones; None with fewer than two points."""
    if len(points) < 2:
        return None
    last, previous = points[-1], points[:-1]
    same = [p for p in previous if p.machine == last.machine]
    pool = (same or previous)[-window:]
    rows: dict[Key, dict[str, Stat]] = {}
    for key in dict.fromkeys(k for p in pool for k in p.side.rows):
        metrics = dict.fromkeys(m for p in pool for m in p.side.rows.get(key, {}))
        rows[key] = {m: _pooled([p.side.rows[key][m] for p in pool if m in p.side.rows.get(key, {})])
                     for m in metrics}
    machines = sorted({p.machine for p in pool})
    commits = ", ".join(p.short for p in pool)
    baseline = Side(f"previous {len(pool)} point(s) ({commits})", last.side.suite, rows, machines)
    current = Side(f"last point ({last.short})", last.side.suite, last.side.rows, [last.machine])
    return compare(baseline, current, thresholds)


def _pooled(stats: list[Stat]) -> Stat:
    """Mean of the points' means; std the larger of their seed std and the spread of the means."""
    means = [s.mean for s in stats if s.mean is not None]
    if not means:
        return Stat(None, None, 0)
    spread = statistics.stdev(means) if len(means) > 1 else 0.0
    return Stat(statistics.fmean(means), max([spread, *(s.std or 0.0 for s in stats)]), sum(s.n for s in stats))


def metric_or_primary(points: list[Point], metric: str | None) -> str:
    metric = metric or (points[-1].primary if points else None)
    if metric not in METRICS:
        raise UserError(f"--metric {metric!r} is not a metric mmbench records; choose one of: "
                        + ", ".join(METRICS))
    return metric
