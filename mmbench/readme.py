"""The README's results section: a suite's ranking across datasets between marker comments.

The section is rendered from the leaderboard alone (its JSON is committed), so the same
leaderboard gives the same text on every machine and CI can check the README is current
without running anything (``mmbench leaderboard SUITE --check-readme``).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from tabulate import tabulate

from mmbench.errors import UserError
from mmbench.leaderboard import Leaderboard
from mmbench.metric_catalog import METRICS

#: beside a configuration not significantly different from its dataset's best one
SAME_AS_BEST = "≈"


def markers(suite: str) -> tuple[str, str]:
    return f"<!-- mmbench:leaderboard {suite} -->", f"<!-- /mmbench:leaderboard {suite} -->"


def across_datasets(board: Leaderboard) -> str:
    """Configurations as rows, datasets as columns: the primary metric's mean over seeds and
    the rank there, best in bold, ≈ where not significantly different from the best; then
    mean rank and Borda count. One table that answers "what should I use"."""
    fmt = METRICS[board.primary].fmt
    cells: dict[tuple[str, str], str] = {}
    for dataset in board.datasets:
        for row in dataset.rows:
            stat = row.stats[board.primary]
            if stat.mean is None:
                continue
            text = f"{stat.mean:{fmt}} ({row.rank})"
            text = f"**{text}**" if board.primary in row.best else text
            cells[(row.config, dataset.dataset)] = f"{text} {SAME_AS_BEST}" if row.not_different else text
    names = [d.dataset for d in board.datasets]
    table = [[i, o.config, f"{o.mean_rank:.2f}", o.borda, *(cells.get((o.config, d), "–") for d in names)]
             for i, o in enumerate(board.overall, start=1)]
    return tabulate(table, headers=["rank", "configuration", "mean rank", "Borda", *names], tablefmt="github",
                    disable_numparse=True)


def section(board: Leaderboard, page: str) -> str:
    """The text between the markers; ``page`` links the full leaderboard page."""
    intro = f"Suite `{board.suite}`" + (f": {board.description}" if board.description else "")
    legend = (f"Cells: test **{board.primary}**, mean over seeds (rank on that dataset); bold: the "
              f"dataset's best; {SAME_AS_BEST}: not significantly different from it (paired bootstrap). "
              "Rows: mean rank over the datasets a configuration ran on, and its Borda count "
              "(configurations beaten, summed). "
              f"Every metric, interval and plot: [{page}]({page}). Regenerate with "
              f"`mmbench leaderboard SUITE --update-readme`.")
    return "\n".join([intro, "", legend, "", across_datasets(board), ""])


def replace(text: str, suite: str, body: str, readme: Path) -> str:
    start, end = markers(suite)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise UserError(f"{readme}: expected one pair of marker lines for suite {suite!r}, the start "
                        f"before the end:\n{start}\n{end}\nAdd them where the results should go.")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}{end}{tail}"


def page_link(readme: Path, page: Path) -> str:
    """The leaderboard page relative to the README, with forward slashes (as GitHub links)."""
    return Path(os.path.relpath(page.resolve(), readme.resolve().parent)).as_posix()


def rendered(readme: Path, board: Leaderboard, page: Path) -> tuple[str, str]:
    """The README's current text and the text with this board's section in place."""
    if not readme.is_file():
        raise UserError(f"{readme}: no such file (give the README with --update-readme PATH)")
    text = readme.read_text(encoding="utf-8")
    return text, replace(text, board.suite, section(board, page_link(readme, page)), readme)


def diff(old: str, new: str, readme: Path) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"{readme} (committed)", f"{readme} (from the leaderboard)"))
