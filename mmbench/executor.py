"""Runs a suite's grid on this machine: in-process, or a pool of worker processes.

Finished runs (a result file with status ok) are skipped, so an interrupted suite
resumes where it stopped; each result is written as soon as its run ends, so a kill
loses at most the runs in flight. A run starts only once this process holds its claim
(``mmbench.claims``), so two ``mmbench run`` of one suite share the work. The skip, claim,
record and progress parts are shared with the Dask executor (``mmbench.dask_executor``),
so both behave alike. The failure model (what each fault does) is in docs/design.md.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn,
                           TimeElapsedColumn)
from rich.text import Text

from mmbench.claims import Claims
from mmbench.registry import Registry, load_registry
from mmbench.results import error_text, is_finished, read_result, result_path, run_record, write_result
from mmbench.suite import RunSpec, Suite

#: How often a run may lose its worker process (a segfault, an out-of-memory kill) and run
#: again before it is recorded as failed; the local pool and the Dask executor share it.
RETRIES = 2
#: seconds between looks at claims other processes hold and at time limits
POLL_S = 0.5


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
        label = _label(result)
        ok = result["status"] == "ok"
        if ok:
            self.outcome.ok.append(label)
            for warning in result.get("warnings") or []:
                self.progress.console.print(f"[yellow]warning[/yellow] {escape(label)}: {escape(warning)}")
        else:
            message = error_text(result["error"])
            self.outcome.failed.append((label, message))
            self.progress.console.print(f"[red]failed[/red] {escape(label)}: {escape(message)}")
        self.progress.advance(self.grid)
        return ok

    def elsewhere(self, result: dict) -> None:
        """A run another ``mmbench run`` did while this one waited for its claim: a success
        counts as skipped, a failure as failed (this process will not repeat it)."""
        self.progress.console.print(f"[dim]done by another mmbench run: {escape(_label(result))}[/dim]")
        if result["status"] == "ok":
            self.outcome.skipped += 1
            self.progress.advance(self.grid)
        else:
            self(result)


def _label(result: dict) -> str:
    return f"{result['labels']['dataset']} | {result['labels']['config']} | seed {result['spec']['seed']}"


class RunQueue:
    """The runs still to do, each handed out only once this process holds its claim
    (``mmbench.claims``). Runs another process holds wait at the back; when one's claim is
    finally taken, its result may be there (recorded as done elsewhere, not run again) or
    its claimant died (then it runs here)."""

    def __init__(self, todo: list[RunSpec], results_dir: Path, record: Recorder, *, rerun: bool = False):
        self.queue, self.deferred = deque(todo), deque()
        self.results_dir, self.record, self.rerun = Path(results_dir), record, rerun
        self.claims = Claims(results_dir)
        self.since = time.time()
        self.waiting_for: set[int | None] = set()

    def __bool__(self) -> bool:
        return bool(self.queue or self.deferred)

    def next(self) -> RunSpec | None:
        """A claimed run to start now; None when nothing is left or only runs another
        process holds (ask again later: ``POLL_S``)."""
        while self.queue:
            spec = self.queue.popleft()
            if self._claim(spec):
                return spec
        for _ in range(len(self.deferred)):
            spec = self.deferred.popleft()
            if self._claim(spec):
                return spec
        self._say_waiting()
        return None

    def again(self, spec: RunSpec) -> None:
        """Run ``spec`` next again (its worker died); it keeps its claim."""
        self.queue.appendleft(spec)

    def finished(self, spec: RunSpec) -> None:
        """Its result is written: let the claim go."""
        self.claims.release(spec.run_id)

    def close(self) -> None:
        self.claims.release_all()

    def _claim(self, spec: RunSpec) -> bool:
        if not self.claims.take(spec.run_id):
            self.deferred.append(spec)
            return False
        path = result_path(self.results_dir, spec.run_id)
        result = read_result(path)
        if result is not None and (path.stat().st_mtime >= self.since
                                   or (not self.rerun and result.get("status") == "ok")):
            self.claims.release(spec.run_id)
            self.record.elsewhere(result)
            return False
        for stale in self.results_dir.glob(f".{spec.run_id}.*.tmp"):  # from a writer killed mid-write
            stale.unlink(missing_ok=True)
        return True

    def _say_waiting(self) -> None:
        holders = {self.claims.holder(spec.run_id) for spec in self.deferred}
        if self.deferred and not holders <= self.waiting_for:
            self.waiting_for |= holders
            pids = ", ".join(str(p) for p in sorted(h for h in holders if h is not None)) or "unknown"
            self.record.progress.console.print(
                f"waiting for {len(self.deferred)} run(s) that another mmbench run (pid {pids}) is doing "
                "on this suite; each run is done once")


def run_suite(suite: Suite, registry: Registry, *, workers: int = 1, threads: int = 0,
              rerun: bool = False, device: str = "cpu", console: Console | None = None,
              run_timeout: float = 0.0, retries: int = RETRIES) -> SuiteOutcome:
    """Run what is not finished; ``device`` is a resolved torch device (``mmbench.device``).
    ``run_timeout`` > 0 stops a run after that many seconds and records it failed (in-process
    runs then go to one worker process, which can be stopped); a run whose worker process
    dies runs again up to ``retries`` times, then is recorded failed."""
    console = console or Console(stderr=True)
    todo, outcome = runs_to_do(suite, console, threads=threads, rerun=rerun, device=device)
    if not threads and workers > 1:  # keep workers x threads within the cores
        per_worker = max(1, (os.cpu_count() or 1) // workers)
        todo = [r if r.threads else replace(r, threads=per_worker) for r in todo]
    if not todo:
        return outcome

    with progress_bar(console) as progress:
        record = Recorder(outcome, progress, progress.add_task(f"suite {suite.name}", total=len(todo)))
        queue = RunQueue(todo, suite.results_dir, record, rerun=rerun)
        try:
            if workers > 1 or run_timeout:
                _Pool(queue, suite.results_dir, workers, progress, run_timeout, retries).run()
            else:
                _in_process(queue, suite.results_dir, registry, progress)
        finally:
            queue.close()
    return outcome


def _in_process(queue: RunQueue, results_dir: Path, registry: Registry, progress: Progress) -> None:
    from mmbench.run import execute  # imports torch: only when there is work

    current = progress.add_task("", total=None, phase="")
    while queue:
        spec = queue.next()
        if spec is None:
            time.sleep(POLL_S)
            continue
        label = escape(f"  {spec.dataset.label} | {spec.labels()['config']} | seed {spec.seed}")
        progress.reset(current, description=label, completed=0, total=None, phase="")
        show = _Shows(progress, current, label, spec)
        result = execute(spec, registry, on_epoch=show.epoch, on_items=show.items)
        write_result(results_dir, result)
        queue.finished(spec)
        queue.record(result)
    progress.remove_task(current)


class _Shows:
    """A running run's line under the grid: its label while it trains, what it encodes
    (with samples/s) while it extracts."""

    def __init__(self, progress: Progress, task: TaskID, label: str, spec: RunSpec):
        self.progress, self.task, self.label, self.spec = progress, task, label, spec

    def show(self, phase: str, description: str, done: int, total: int) -> None:
        if self.progress.tasks[self.task].fields.get("phase") != phase:  # new phase: new rate
            self.progress.reset(self.task, description=description, phase=phase)
        self.progress.update(self.task, completed=done, total=total)

    def epoch(self, done: int, total: int) -> None:
        self.show("train", self.label, done, total)

    def items(self, what: str, done: int, total: int) -> None:
        self.show(f"items {what}", escape(f"  {self.spec.dataset.label} | seed {self.spec.seed} | {what}"),
                  done, total)


class _Pool:
    """``workers`` worker processes (``mmbench.pool``), one run each at a time. A worker
    that dies costs its run one of ``retries`` and is replaced; a run past ``run_timeout``
    has its worker stopped and is recorded failed; Ctrl-C stops every worker at once."""

    def __init__(self, queue: RunQueue, results_dir: Path, workers: int, progress: Progress,
                 run_timeout: float, retries: int):
        self.queue, self.results_dir, self.n, self.progress = queue, results_dir, workers, progress
        self.run_timeout, self.retries = run_timeout, retries
        self.deaths: dict[str, int] = {}  # run id -> worker deaths while running it
        self.workers: list[Any] = []
        self.lines: dict[int, TaskID] = {}  # id(worker) -> its progress line

    def run(self) -> None:
        from mmbench.pool import WorkerProcess, stop_all

        try:
            self.workers = [WorkerProcess(self.results_dir) for _ in range(min(self.n, len(self.queue.queue)))]
            while self.queue or any(w.spec for w in self.workers):
                for worker in self.workers:
                    if worker.spec is None and self.queue:
                        spec = self.queue.next()
                        if spec is None:
                            break
                        self._start(worker, spec)
                self._wait()
        except BaseException:
            with second_interrupt_exits(self._abandon):
                stop_all(self.workers)
            raise
        stop_all(self.workers)
        for line in self.lines.values():
            self.progress.remove_task(line)

    def _abandon(self) -> None:
        """On a second Ctrl-C: SIGKILL every worker and drop this process's claims, without
        waiting for either (a worker deaf to SIGTERM would otherwise hold the exit)."""
        for worker in self.workers:
            try:
                worker.process.kill()
            except (OSError, ValueError):  # already gone, or closed
                pass
        self.queue.close()

    def _start(self, worker: Any, spec: RunSpec) -> None:
        worker.start(spec)
        label = escape(f"  {spec.dataset.label} | {spec.labels()['config']} | seed {spec.seed}")
        if id(worker) not in self.lines:
            self.lines[id(worker)] = self.progress.add_task("", total=None, phase="")
        self.progress.reset(self.lines[id(worker)], description=label, completed=0, total=None, phase="",
                            visible=True)
        worker.shows = _Shows(self.progress, self.lines[id(worker)], label, spec)

    def _wait(self) -> None:
        busy = [w for w in self.workers if w.spec is not None]
        if not busy:
            time.sleep(POLL_S)
            return
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=POLL_S))
        for worker in busy:
            if worker.conn in ready:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    self._died(worker)
                    continue
                self._received(worker, message)
            elif worker.process.sentinel in ready:
                self._died(worker)
            elif self.run_timeout and worker.running_for() > self.run_timeout:
                self._timed_out(worker)

    def _received(self, worker: Any, message: tuple) -> None:
        if message[0] == "write_failed":  # the worker could not write its result: the disk is full
            from mmbench.files import WriteFailed

            _, code, reason, filename = message
            raise WriteFailed(code, reason, filename)
        if message[0] == "started":
            worker.started = time.monotonic()
            return
        if message[0] == "progress":
            _, phase, what, done, total = message
            if phase == "train":
                worker.shows.epoch(done, total)
            else:
                worker.shows.items(what, done, total)
            return
        spec = worker.spec
        worker.done()
        self.queue.finished(spec)
        self.queue.record(message[1])

    def _died(self, worker: Any) -> None:
        spec, how = worker.spec, worker.died()
        self._replace(worker)
        self.deaths[spec.run_id] = self.deaths.get(spec.run_id, 0) + 1
        if self.deaths[spec.run_id] <= self.retries:
            self.progress.console.print(f"[yellow]worker died[/yellow] ({how}) running {escape(_spec_label(spec))}; "
                                        f"running it again ({self.deaths[spec.run_id]} of {self.retries} retries)")
            self.queue.again(spec)
            return
        message = (f"its worker process died {self.deaths[spec.run_id]} time(s) while running it (last: {how}), "
                   "most often out of memory or a crash in native code; use fewer --workers or threads, or a "
                   "smaller batch_size, then run the suite again to retry it")
        self._failed(spec, "WorkerDied", message)

    def _timed_out(self, worker: Any) -> None:
        spec = worker.spec
        self._replace(worker)
        self._failed(spec, "TimeoutError", timed_out_message(self.run_timeout))

    def _failed(self, spec: RunSpec, kind: str, message: str) -> None:
        result = never_reported(spec, kind, message)
        write_result(self.results_dir, result)
        self.queue.finished(spec)
        self.queue.record(result)

    def _replace(self, worker: Any) -> None:
        """Stop ``worker`` (its run is over) and start a fresh one in its place."""
        from mmbench.pool import WorkerProcess

        worker.stop()
        fresh = WorkerProcess(self.results_dir)
        self.workers[self.workers.index(worker)] = fresh
        if id(worker) in self.lines:
            self.lines[id(fresh)] = self.lines.pop(id(worker))
            self.progress.update(self.lines[id(fresh)], visible=False)


def _spec_label(spec: RunSpec) -> str:
    return f"{spec.dataset.label} | {spec.labels()['config']} | seed {spec.seed}"


def timed_out_message(limit: float) -> str:
    return (f"timed out after {limit:g} s (the limit: --run-timeout or [suite] run_timeout); raise it or make "
            "the run cheaper (fewer epochs, a smaller model)")


def never_reported(spec: RunSpec, kind: str, message: str) -> dict:
    """The failed record of a run that never reported back (its worker died, it was
    stopped at its time limit, or its extraction failed)."""
    return run_record(spec, started=datetime.now(timezone.utc), duration_s=0.0, threads=spec.threads,
                      error={"type": kind, "message": message, "traceback": None})


#: what a second Ctrl-C says as it exits (the first one's line is printed only after the cleanup it cut short)
AGAIN = "interrupted again: stopped without waiting; finished runs are saved; run the same command again to resume"


@contextmanager
def second_interrupt_exits(abandon: Callable[[], None] | None = None) -> Iterator[None]:
    """While an interrupted suite cleans up (stops workers, closes a cluster), a second
    Ctrl-C exits at once with 130: the user asked twice, so no cleanup is waited for. It
    runs ``abandon`` first (what must not outlive the process: the pool kills its workers
    and drops its claims, neither of which waits) and says one line; no traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_now(signum: int, frame: Any) -> None:
        try:
            if abandon is not None:
                abandon()
        finally:
            cursor = "\x1b[?25h" if os.isatty(2) else ""  # the progress display hid it
            os.write(2, f"{cursor}\n{AGAIN}\n".encode())
            os._exit(130)

    before = signal.signal(signal.SIGINT, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


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
