"""Runs a suite's grid on this machine: in-process, or a pool of worker processes.

Finished runs (a result file with status ok) are skipped, so an interrupted suite
resumes where it stopped; each result is written as soon as its run ends, so a kill
loses at most the runs in flight. The skip, record and progress parts are shared with
the Dask executor (``mmbench.dask_executor``), so both behave alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn)
from rich.text import Text

from mmbench.registry import Registry, load_registry
from mmbench.results import is_finished, write_result
from mmbench.suite import RunSpec, Suite


@dataclass
class SuiteOutcome:
    ok: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (config, message)
    skipped: int = 0


def pending_runs(suite: Suite, rerun: bool = False) -> tuple[list[RunSpec], int]:
    """The runs still to do, and how many are already finished."""
    runs = suite.runs()
    todo = [r for r in runs if rerun or not is_finished(suite.results_dir, r.run_id)]
    return todo, len(runs) - len(todo)


def runs_to_do(suite: Suite, console: Console, *, threads: int = 0, rerun: bool = False,
               device: str = "cpu") -> tuple[list[RunSpec], SuiteOutcome]:
    """The pending runs set to ``device`` (and ``threads`` when given), and an outcome that
    counts the finished ones as skipped; says on ``console`` how many were skipped."""
    todo, done = pending_runs(suite, rerun)
    if device != "cpu":
        todo = [replace(r, device=device) for r in todo]
    if threads:
        todo = [replace(r, threads=threads) for r in todo]
    if done:
        console.print(f"[dim]{done} of {done + len(todo)} runs already have results in "
                      f"{suite.results_dir} (use --rerun to redo them)[/dim]")
    return todo, SuiteOutcome(skipped=done)


def progress_bar(console: Console) -> Progress:
    """The suite's progress display: one bar for the grid, lines below it for what runs;
    a task with the field ``note=True`` is a line of text (e.g. a worker's tally)."""
    columns = (BarColumn(bar_width=20), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn())
    return Progress(TextColumn("{task.description}"), *map(_UnlessNote, columns), console=console,
                    transient=False)


class _UnlessNote(ProgressColumn):
    def __init__(self, column: ProgressColumn):
        super().__init__()
        self.column = column

    def render(self, task: Task) -> Any:
        return Text("") if task.fields.get("note") else self.column.render(task)


class Recorder:
    """Counts each arriving result into the outcome, advances the grid's bar and prints
    failures as they happen (the user should not wait for the end to see a broken run)."""

    def __init__(self, outcome: SuiteOutcome, progress: Progress, grid: Any):
        self.outcome, self.progress, self.grid = outcome, progress, grid

    def __call__(self, result: dict) -> bool:
        """Record ``result``; True when the run succeeded."""
        label = f"{result['labels']['dataset']} | {result['labels']['config']} | seed {result['spec']['seed']}"
        ok = result["status"] == "ok"
        if ok:
            self.outcome.ok.append(label)
        else:
            self.outcome.failed.append((label, result["error"]["message"]))
            self.progress.console.print(f"[red]failed[/red] {escape(label)}: {escape(result['error']['message'])}")
        self.progress.advance(self.grid)
        return ok


def run_suite(suite: Suite, registry: Registry, *, workers: int = 1, threads: int = 0,
              rerun: bool = False, device: str = "cpu", console: Console | None = None) -> SuiteOutcome:
    """Run what is not finished; ``device`` is a resolved torch device (``mmbench.device``)."""
    console = console or Console(stderr=True)
    todo, outcome = runs_to_do(suite, console, threads=threads, rerun=rerun, device=device)
    if not threads and workers > 1:  # keep workers x threads within the cores
        per_worker = max(1, (os.cpu_count() or 1) // workers)
        todo = [r if r.threads else replace(r, threads=per_worker) for r in todo]
    if not todo:
        return outcome

    with progress_bar(console) as progress:
        record = Recorder(outcome, progress, progress.add_task(f"suite {suite.name}", total=len(todo)))
        if workers > 1:
            _in_pool(todo, suite.results_dir, workers, record)
        else:
            _in_process(todo, suite.results_dir, registry, progress, record)
    return outcome


def _in_process(todo: list[RunSpec], results_dir: Path, registry: Registry, progress: Progress,
                record: Callable[[dict], object]) -> None:
    from mmbench.run import execute  # imports torch: only when there is work

    current = progress.add_task("", total=None, phase="")
    for spec in todo:
        label = escape(f"  {spec.dataset.label} | {spec.labels()['config']} | seed {spec.seed}")
        progress.reset(current, description=label, completed=0, total=None, phase="")

        def show(phase: str, description: str, done: int, total: int) -> None:
            if progress.tasks[current].fields.get("phase") != phase:  # new phase: new rate
                progress.reset(current, description=description, phase=phase)
            progress.update(current, completed=done, total=total)

        def on_epoch(done: int, total: int, label: str = label) -> None:
            show("train", label, done, total)

        def on_items(what: str, done: int, total: int, spec: RunSpec = spec) -> None:
            show(f"items {what}", escape(f"  {spec.dataset.label} | seed {spec.seed} | {what}"), done, total)

        result = execute(spec, registry, on_epoch=on_epoch, on_items=on_items)
        write_result(results_dir, result)
        record(result)
    progress.remove_task(current)


def _in_pool(todo: list[RunSpec], results_dir: Path, workers: int, record: Callable[[dict], object]) -> None:
    # spawn, not fork: forking a process that already runs torch threads can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending = {pool.submit(_worker, spec, str(results_dir)) for spec in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                record(future.result())


class RateColumn(ProgressColumn):
    """Samples per second while a run extracts embeddings (blank while it trains)."""

    def render(self, task: Task) -> Text:
        if not str(task.fields.get("phase", "")).startswith("items") or not task.speed:
            return Text("")
        return Text(f"{task.speed:,.1f}/s", style="progress.data.speed")


_worker_registry: Registry | None = None


def worker_registry() -> Registry:
    """The plugins, loaded once per worker process (a pool's or a Dask worker's)."""
    global _worker_registry
    if _worker_registry is None:
        _worker_registry = load_registry()
    return _worker_registry


def _worker(spec: RunSpec, results_dir: str) -> dict:
    """Pool entry point: the worker writes its own result, so a crash of the parent
    loses nothing that finished."""
    from mmbench.run import execute

    result = execute(spec, worker_registry())
    write_result(Path(results_dir), result)
    return {"status": result["status"], "error": result.get("error"), "labels": result["labels"],
            "spec": {"seed": result["spec"]["seed"]}}
