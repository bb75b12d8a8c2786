"""Leaderboard plots (PNG): alignment-parameter sweeps, score vs missing rate, score vs
training time with its Pareto front.

The figures the papers print (Restrepo et al. Fig. 4-6 and the modality-gap paper Fig. 3: the score against
lambda; OmniFuse Fig. 6: the score against the missing rate) are read off the rows' run
settings, never their labels, so any numeric alignment parameter that a suite sweeps gets
its plot without this module knowing the alignment. What to draw is decided by pure
functions (``plan``) so the data behind every line can be tested for exact values, and
so a page can link the files without drawing them. The PNGs are byte-identical for the same
board (fixed size and dpi, matplotlib's default style, no version metadata): a committed
leaderboard shows no churn in git.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mmbench.files import write_generated
from mmbench.leaderboard import DatasetBoard, Leaderboard, Row
from mmbench.metric_catalog import METRICS
from mmbench.plugin import Reporter, stable_hash
from mmbench.robustness import MISSING_ONLY

#: the time a Pareto plot puts on its x axis, first one the rows have
TIME_METRICS = ("train_s_total", "train_s_per_epoch")
MISSING_RATE = ("robustness", "missing_rate")
DPI = 100
WIDTH = 11.0  # inches; the legend / rank table takes the right part
#: longer legend entries are shortened so they stay inside the fixed-size figure
MAX_LABEL = 80
#: a Pareto plot numbers and lists the rows of these ranks (and the front's)
LABELLED = 30
#: the names this reporter writes, so files of plots that are no longer drawn are removed
#: the PNG "Software" text of every plot (no version: the bytes must not change with one);
#: mmbench replaces or removes only PNGs that carry it
SOFTWARE = "mmbench"
OWN_FILES = ("*_sweep_*.png", "missing_rate_*.png", "pareto_*.png")


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    #: the error bar: (y - lo, hi - y), both >= 0
    below: float
    above: float
    rank: int


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Lines:
    """The lines of one plot and the configuration parts they all share (said in the title)."""

    series: tuple[Series, ...]
    shared: str


@dataclass(frozen=True)
class Plot:
    """One figure: where it goes (relative to the leaderboard folder) and what it shows."""

    dataset: str
    kind: str  # "sweep", "missing_rate" or "pareto"
    path: str
    title: str
    xlabel: str
    ylabel: str
    #: a line plot's lines; a Pareto plot's one series of every timed row
    series: tuple[Series, ...] = ()
    #: Pareto only: the front in time order, and the rank -> configuration table
    front: tuple[Point, ...] = ()
    legend: tuple[str, ...] = ()
    #: Pareto only: the ranks whose points carry their number
    labelled: frozenset[int] = frozenset()


class PlotsReporter(Reporter):
    """PNG plots per dataset: score vs a swept alignment parameter, missing rate, train time.

    Into ``<out_dir>/<suite>/``: the primary metric against each swept numeric alignment
    parameter, against the missing rate, and against training time with the Pareto front;
    a plot is drawn only where its axis varies."""

    name = "plots"

    def targets(self, board: Leaderboard, out_dir: Path) -> list[tuple[Path, Callable[[bytes], bool]]]:
        return [(Path(out_dir) / plot.path, is_png_ours) for plot in plan(board)]

    def write(self, board: Leaderboard, out_dir: Path) -> list[Path]:
        import matplotlib.style
        from matplotlib.figure import Figure

        # a Figure without pyplot: no global figure state, no GUI backend to pick

        written = []
        with matplotlib.style.context("default"):  # the user's matplotlibrc must not change the bytes
            for plot in plan(board):
                fig = Figure(figsize=(WIDTH, _height(plot)), dpi=DPI)
                _draw(fig, plot)
                buffer = io.BytesIO()
                fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": SOFTWARE})
                written.append(write_generated(Path(out_dir) / plot.path, buffer.getvalue(), is_png_ours))
        _remove_stale(Path(out_dir) / board.suite, set(written))
        return sorted(written)


def plan(board: Leaderboard) -> list[Plot]:
    """Every plot the board has data for, in a fixed order (datasets as the board lists them)."""
    folder = board.suite  # as the other reporters name their files, so the page finds the plots
    names = _file_names([d.dataset for d in board.datasets])
    plots = []
    for dataset in board.datasets:
        stem = names[dataset.dataset]
        for param, lines in sorted(sweeps(dataset, board.primary).items()):
            plots.append(_line_plot(board, dataset, "sweep", f"{folder}/{_safe(param)}_sweep_{stem}.png",
                                    param, lines))
        lines = missing_rate_series(dataset, board.primary)
        if lines is not None:
            plots.append(_line_plot(board, dataset, "missing_rate", f"{folder}/missing_rate_{stem}.png",
                                    "missing rate", lines))
        pareto = _pareto_plot(board, dataset, f"{folder}/pareto_{stem}.png")
        if pareto is not None:
            plots.append(pareto)
    return plots


def sweeps(dataset: DatasetBoard, primary: str) -> dict[str, Lines]:
    """Numeric alignment parameter -> one series per configuration whose rows differ only in
    that parameter (two values or more); parameters that vary in no such group are left out."""
    names = sorted({name for row in dataset.rows for name, value in _alignment_params(row).items()
                    if _is_number(value)})
    out = {}
    for name in names:
        path = ("alignment", "params", name)
        groups = _varying(_groups(dataset.rows, path, primary))
        if groups:
            rows = [row for members in groups.values() for _, row in members]
            others = {k for k in {k for row in rows for k in _alignment_params(row)} - {name}
                      if len({json.dumps(_alignment_params(row).get(k)) for row in rows}) > 1}
            out[name] = _lines(groups, primary, partial(_sweep_parts, swept=name, shown=others))
    return out


def missing_rate_series(dataset: DatasetBoard, primary: str) -> Lines | None:
    """One series per configuration (the other robustness settings included) whose rows
    differ only in the missing rate; None when no configuration ran at two rates. At rate
    0 which modality would go missing (and how it would be filled) changes nothing, so a
    clean row is the first point of every line it matches in everything else."""
    rated = [row for row in dataset.rows if _is_number(_at(row.settings, MISSING_RATE))]
    groups = _groups([row for row in rated if _at(row.settings, MISSING_RATE) > 0], MISSING_RATE, primary)
    clean: dict[str, list[Row]] = {}
    for row in sorted(rated, key=lambda r: r.rank):
        if _at(row.settings, MISSING_RATE) == 0 and row.stats[primary].mean is not None:
            clean.setdefault(_clean_key(row), []).append(row)
    for members in groups.values():
        first = clean.get(_clean_key(members[0][1]))
        if first:
            members.insert(0, (0.0, first[0]))
    groups = _varying(groups)
    return _lines(groups, primary, _missing_parts) if groups else None


def _clean_key(row: Row) -> str:
    settings = row.settings
    for name in ("missing_rate", *MISSING_ONLY):
        settings = _without(settings, ("robustness", name))
    return json.dumps(settings, sort_keys=True, default=str)


def time_metric(dataset: DatasetBoard) -> str | None:
    """The training time the Pareto plot uses: the total when the rows have it."""
    for metric in TIME_METRICS:
        if any(metric in row.stats and row.stats[metric].mean is not None for row in dataset.rows):
            return metric
    return None


def pareto_front(dataset: DatasetBoard, primary: str) -> list[Row]:
    """The rows no other row beats on both time and score: the best score for at most that
    much training time, in time order (a tie in time keeps the better, then the higher-ranked)."""
    metric = time_metric(dataset)
    if metric is None:
        return []
    direction = METRICS[primary].direction or 1
    timed = sorted(_timed_rows(dataset, metric, primary),
                   key=lambda row: (row.stats[metric].mean, -direction * row.stats[primary].mean, row.rank))
    front, best = [], None
    for row in timed:
        score = direction * row.stats[primary].mean
        if best is None or score > best:
            front.append(row)
            best = score
    return front


def _timed_rows(dataset: DatasetBoard, metric: str, primary: str) -> list[Row]:
    """Rows with a score and a positive time (a log axis has no place for zero)."""
    return [row for row in dataset.rows
            if row.stats[primary].mean is not None and metric in row.stats
            and row.stats[metric].mean is not None and row.stats[metric].mean > 0]


def _groups(rows: list[Row], path: tuple[str, ...], primary: str) -> dict[str, list[tuple[float, Row]]]:
    """Rows keyed by everything in their settings except ``path``, each group sorted by
    the value at ``path``."""
    groups: dict[str, list[tuple[float, Row]]] = {}
    for row in rows:
        value = _at(row.settings, path)
        if not _is_number(value) or row.stats[primary].mean is None:
            continue
        key = json.dumps(_without(row.settings, path), sort_keys=True, default=str)
        groups.setdefault(key, []).append((float(value), row))
    return {key: sorted(members, key=lambda m: (m[0], m[1].rank)) for key, members in groups.items()}


def _varying(groups: dict[str, list[tuple[float, Row]]]) -> dict[str, list[tuple[float, Row]]]:
    """The groups where the value takes two or more values: a line, not a dot."""
    return {key: members for key, members in groups.items() if len({value for value, _ in members}) >= 2}


def _lines(groups: dict[str, list[tuple[float, Row]]], primary: str, parts_of) -> Lines:
    """Series labelled by the parts of their configuration that tell the lines apart."""
    ci = _with_ci([row for members in groups.values() for _, row in members])
    # the last row names the line: a missing-rate line's first row may be a shared clean one
    parts = {key: parts_of(members[-1][1]) for key, members in groups.items()}
    varying = [i for i in range(4) if len({p[i] for p in parts.values()}) > 1] or list(range(4))
    series = []
    for key, members in groups.items():
        shown = [parts[key][i] for i in varying if parts[key][i]]
        label = _shorten(" / ".join(shown) or "-")
        series.append(Series(label, tuple(_point(value, row, primary, ci) for value, row in members)))
    first = next(iter(parts.values()))
    shared = " / ".join(first[i] for i in range(4) if i not in varying and first[i] not in ("", "-"))
    return Lines(tuple(sorted(series, key=lambda s: s.label)), shared)


def _with_ci(rows: list[Row]) -> bool:
    """Bootstrap intervals as error bars only when every point has one: mixed bars mislead."""
    return all(row.ci is not None for row in rows)


def _point(x: float, row: Row, primary: str, ci: bool) -> Point:
    stat = row.stats[primary]
    if ci:
        below, above = stat.mean - row.ci[0], row.ci[1] - stat.mean
    else:
        below = above = stat.std or 0.0
    return Point(x, stat.mean, max(below, 0.0), max(above, 0.0), row.rank)


def _sweep_parts(row: Row, swept: str, shown: set[str]) -> tuple[str, str, str, str]:
    """encoder / alignment without the swept value (with the ``shown`` parameters, those
    that differ between lines) / fusion / robustness."""
    alignment = row.settings.get("alignment") or {}
    others = {k: v for k, v in sorted(_alignment_params(row).items()) if k != swept and k in shown}
    text = alignment.get("name", row.alignment)
    if others:
        text += "(" + ", ".join(f"{k}={_value(v)}" for k, v in others.items()) + ")"
    return row.encoder, text, row.fusion, "" if row.robustness == "-" else row.robustness


def _missing_parts(row: Row) -> tuple[str, str, str, str]:
    """encoder / alignment / fusion / the robustness settings other than the rate."""
    rob = row.settings.get("robustness") or {}
    text = f"{rob.get('missing_modality', '?')}@{rob.get('missing_at', '?')} fill={rob.get('fill', '?')}"
    if rob.get("test_noise"):
        text += f", test noise {_value(rob['test_noise'])}"
    return row.encoder, row.alignment, row.fusion, text


def _line_plot(board: Leaderboard, dataset: DatasetBoard, kind: str, path: str, xname: str,
               lines: Lines) -> Plot:
    ranks = {p.rank for s in lines.series for p in s.points}
    ci = _with_ci([row for row in dataset.rows if row.rank in ranks])
    bars = (f"{board.bootstrap.get('level', 0.95):.0%} bootstrap interval of the mean" if ci
            else "± std over seeds")
    title = (f"{dataset.dataset}: test {board.primary} vs {xname}\n"
             f"{_seeds(dataset, board.primary, ranks)}; error bars: {bars}")
    if lines.shared:
        title += f"\nevery line: {_shorten(lines.shared)}"
    return Plot(dataset.dataset, kind, path, title, xname, f"test {board.primary}", lines.series)


def _pareto_plot(board: Leaderboard, dataset: DatasetBoard, path: str) -> Plot | None:
    metric = time_metric(dataset)
    if metric is None:
        return None
    rows = sorted(_timed_rows(dataset, metric, board.primary), key=lambda r: r.rank)
    if not rows:
        return None
    front = pareto_front(dataset, board.primary)
    on_front = {row.rank for row in front}

    def point(row: Row) -> Point:
        return Point(row.stats[metric].mean, row.stats[board.primary].mean, 0.0, 0.0, row.rank)

    # a figure of hundreds of labels is unreadable and takes seconds to draw: the best
    # LABELLED ranks and the front are labelled and listed, the other points drawn bare
    labelled = [row for row in rows if row.rank <= LABELLED or row.rank in on_front]
    legend = tuple(_shorten(f"{row.rank:>3}{'*' if row.rank in on_front else ' '} {row.config}")
                   for row in labelled)
    if len(labelled) < len(rows):
        legend += (f"... {len(rows) - len(labelled)} more, unlabelled: every row is in the table",)
    left = len(dataset.rows) - len(rows)
    note = f"; {left} row(s) without a positive time left out" if left else ""
    title = (f"{dataset.dataset}: test {board.primary} vs {metric}\n"
             f"{_seeds(dataset, board.primary, {r.rank for r in rows})}; points: rank; "
             f"line and *: Pareto front{note}")
    return Plot(dataset.dataset, "pareto", path, title, f"{metric} (log)", f"test {board.primary}",
                (Series("all", tuple(point(r) for r in rows)),), tuple(point(r) for r in front), legend,
                labelled=frozenset(row.rank for row in labelled))


def _seeds(dataset: DatasetBoard, primary: str, ranks: set[int]) -> str:
    counts = sorted({row.stats[primary].n for row in dataset.rows if row.rank in ranks})
    if len(counts) == 1:
        return f"mean over {counts[0]} seed{'s' if counts[0] != 1 else ''}"
    return f"mean over {counts[0]}-{counts[-1]} seeds"


def _height(plot: Plot) -> float:
    """Tall enough for the legend or rank table: a function of the board only."""
    entries = len(plot.legend) if plot.kind == "pareto" else len(plot.series)
    return max(5.0, 1.4 + 0.17 * entries)


def _draw(fig, plot: Plot) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    height = fig.get_figheight()
    top, bottom = 1.0 - 1.0 / height, 0.6 / height  # inches kept for the title and the x label
    ax = fig.add_axes((0.07, bottom, 0.5, top - bottom))
    fig.suptitle(plot.title, fontsize=10, x=0.07, y=1.0 - 0.1 / height, ha="left", va="top")
    ax.set_xlabel(plot.xlabel)
    ax.set_ylabel(plot.ylabel)
    ax.grid(True, alpha=0.3)
    if plot.kind == "pareto":
        (everything,) = plot.series
        ax.scatter([p.x for p in everything.points], [p.y for p in everything.points], s=18, color="tab:blue")
        ax.scatter([p.x for p in plot.front], [p.y for p in plot.front], s=24, color="tab:red", zorder=3)
        for p in (p for p in everything.points if p.rank in plot.labelled):
            ax.annotate(str(p.rank), (p.x, p.y), textcoords="offset points", xytext=(3, 3), fontsize=7)
        right = max(p.x for p in everything.points)
        xs = [p.x for p in plot.front] + [right]
        ys = [p.y for p in plot.front] + [plot.front[-1].y]
        ax.step(xs, ys, where="post", color="tab:red", linewidth=1.2)
        ax.set_xscale("log")
        lo, hi = min(p.x for p in everything.points) / 1.15, right * 1.15
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(FixedLocator(_log_ticks(lo, hi)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        fig.text(0.6, top, "rank  configuration\n" + "\n".join(plot.legend), va="top", ha="left",
                 fontsize=7, family="monospace")
        return
    values = sorted({p.x for s in plot.series for p in s.points})
    for s in plot.series:
        ax.errorbar([p.x for p in s.points], [p.y for p in s.points],
                    yerr=[[p.below for p in s.points], [p.above for p in s.points]],
                    marker="o", markersize=4, capsize=3, linewidth=1.2, label=s.label)
    if len(values) <= 12:
        ax.set_xticks(values)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Plain-number ticks on a log axis, as few as still give three: matplotlib's own labels
    of a range inside one decade overlap."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    ticks: list[float] = []
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [float(f"{m}e{k}") for k in decades for m in mantissas if lo <= float(f"{m}e{k}") <= hi]
        if len(ticks) >= 3:
            break
    return ticks


def _remove_stale(folder: Path, written: set[Path]) -> None:
    """Plots of an earlier result set that this one no longer has (a dataset renamed, a
    sweep removed) would otherwise stay beside the page as if current."""
    if not folder.is_dir():
        return
    for pattern in OWN_FILES:
        for path in folder.glob(pattern):
            if path not in written and is_png_ours(path.read_bytes()):
                path.unlink()


def is_png_ours(data: bytes) -> bool:
    """A plot this reporter drew: its PNG says Software = mmbench. Plots drawn before the
    mark said no Software at all: at the names this reporter gives (the only paths it
    checks), such a PNG is taken as its own; an image any program labelled is not."""
    head = data[:4096]
    return b"tEXtSoftware\x00" + SOFTWARE.encode() in head or (
        head.startswith(b"\x89PNG") and b"tEXtSoftware\x00" not in head)


def _file_names(datasets: list[str]) -> dict[str, str]:
    """Safe file-name stems; two labels that clean up to the same stem get a hash each."""
    safe = {d: _safe(d) for d in datasets}
    taken: dict[str, int] = {}
    for stem in safe.values():
        taken[stem] = taken.get(stem, 0) + 1
    return {d: stem if taken[stem] == 1 else f"{stem}-{stable_hash(d, 8)}" for d, stem in safe.items()}


def _safe(text: str) -> str:
    """Letters, digits, ".", "_" and "-" only: dataset labels may hold spaces, slashes or "(...)"."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "unnamed"


def _alignment_params(row: Row) -> dict[str, Any]:
    alignment = row.settings.get("alignment")
    return dict(alignment.get("params", {})) if isinstance(alignment, dict) else {}


def _at(settings: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = settings
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _without(settings: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    head, *rest = path
    if head not in settings:
        return settings
    if not rest:
        return {k: v for k, v in settings.items() if k != head}
    inner = settings[head]
    return {**settings, head: _without(inner, tuple(rest)) if isinstance(inner, dict) else inner}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value(value: Any) -> str:
    return f"{value:g}" if _is_number(value) else json.dumps(value) if not isinstance(value, str) else value


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"
