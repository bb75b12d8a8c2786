"""Runs a suite's grid on a Dask cluster: a LocalCluster started here, or any cluster a
scheduler address points at (dask-jobqueue on SLURM / PBS, Kubernetes, ...).

Why it is shaped this way:
- The client writes every result (atomically, as the local executor does), so workers
  need no shared results folder; only the embedding cache (``$MMBENCH_CACHE``) is shared.
- Embeddings are extracted first, one task per extraction ``mmbench extract`` plans (per
  dataset x modality x encoder; per split too for fitted encoders), and a run is submitted
  only once every extraction it needs finished: two workers never compute the same
  embedding at once, each sample is encoded once, and the runs are cache hits.
- The client keeps at most one task per worker in flight, and retries a task whose worker
  died itself (a LocalCluster started here lets the scheduler retry nothing). Dask blames
  every task a dead worker held, so this spends the retries on the run that was running,
  not on innocent queued ones; and a worker process runs one run at a time anyway, because
  seeds and torch threads are per process (a run's torch threads default to the worker's).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID

from mmbench.errors import UserError
from mmbench.executor import (POLL_S, RETRIES, Recorder, RunQueue, SuiteOutcome, never_reported, progress_bar,
                               runs_to_do, second_interrupt_exits, timed_out_message, worker_registry)
from mmbench.extract import describe, extraction_keys
from mmbench.registry import Registry
from mmbench.results import write_result
from mmbench.suite import RunSpec, Suite

#: the Dask event topic a worker logs a run's task key to when the run begins (after any
#: run before it on that worker), so a time limit counts the run's own time
RUN_BEGAN = "mmbench-run-began"
INSTALL_HINT = 'the Dask executor needs dask[distributed]: pip install "mmbench[dask]"'


def run_suite_dask(suite: Suite, registry: Registry, *, address: str | None, n_workers: int | None = None,
                   threads_per_worker: int | None = None, threads: int = 0, rerun: bool = False,
                   device: str = "cpu", console: Console | None = None, retries: int = RETRIES,
                   run_timeout: float = 0.0) -> SuiteOutcome:
    """Run what is not finished on the cluster at ``address``, or on a LocalCluster of
    ``n_workers`` (default: the cores) x ``threads_per_worker`` (default 1) started and
    closed here. ``threads`` overrides every run's torch threads (0: the suite's, else the
    worker's). A task may lose its worker ``retries`` times (an external scheduler's own
    ``distributed.scheduler.allowed-failures`` retries count towards it). ``run_timeout`` > 0
    stops a run after that many seconds (its worker is restarted) and records it failed.
    Ctrl-C cancels what is in flight; finished results are already written."""
    _require_distributed()
    console = console or Console(stderr=True)
    todo, outcome = runs_to_do(suite, console, threads=threads, rerun=rerun, device=device)
    if not todo:
        return outcome
    with ExitStack() as interrupted:  # its callbacks run after the cluster closed
        with _client(address, n_workers, threads_per_worker) as client, progress_bar(console) as progress:
            grid = progress.add_task(f"suite {suite.name}", total=len(todo))
            queue = RunQueue([], suite.results_dir, Recorder(outcome, progress, grid), rerun=rerun)
            try:
                _Dispatcher(client, suite, registry, todo, queue, progress, retries, run_timeout).run()
            except KeyboardInterrupt:
                interrupted.enter_context(second_interrupt_exits())
                interrupted.enter_context(_quiet_shutdown(local=address is None))
                raise
            finally:
                queue.close()
    return outcome


def _require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UserError(INSTALL_HINT) from None


@contextmanager
def _client(address: str | None, n_workers: int | None, threads_per_worker: int | None) -> Iterator[Any]:
    import dask
    from distributed import Client, LocalCluster

    if address:
        try:
            client = Client(address)  # gives up after distributed.comm.timeouts.connect
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {address} ({exc}); start it (e.g. "
                            "`dask scheduler`) or fix --scheduler / [executor] address") from None
        with client:
            yield client
        return
    # the scheduler runs in this process: it reports a worker's death at once, and the
    # dispatcher decides what runs again
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, **_workers_ignore_ctrl_c()}):
        with _ctrl_c_deferred() as interrupted:  # a half-started cluster cannot be closed
            cluster = LocalCluster(n_workers=n_workers or os.cpu_count() or 1,
                                   threads_per_worker=threads_per_worker or 1, processes=True)
        with cluster, Client(cluster) as client:
            if interrupted:
                raise KeyboardInterrupt
            yield client


@contextmanager
def _ctrl_c_deferred() -> Iterator[list[bool]]:
    """Hold a Ctrl-C back until the block ends; the list yielded is true when one came."""
    import signal

    came: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    before = signal.signal(signal.SIGINT, lambda signum, frame: came.append(True))
    try:
        yield came
    finally:
        signal.signal(signal.SIGINT, before)


def _workers_ignore_ctrl_c() -> dict[str, str]:
    """Dask settings under which a LocalCluster's worker processes ignore SIGINT: a
    terminal's Ctrl-C reaches the whole process group, and workers interrupted while they
    start or run print dozens of lines of tracebacks; this process stops them instead.
    They are forked from a forkserver started here with SIGINT ignored, which they inherit
    (restarted workers too); where there is no forkserver (Windows) nothing changes."""
    import multiprocessing
    import multiprocessing.forkserver
    import signal

    from distributed.utils import get_mp_context

    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover
        return {}
    settings = {"distributed.worker.multiprocessing-method": "forkserver"}
    import dask

    with dask.config.set(settings):
        get_mp_context()  # sets the forkserver's preloads (distributed and its dependencies)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # only while the forkserver is spawned
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, before)
    return settings


@contextmanager
def _quiet_shutdown(local: bool) -> Iterator[None]:
    """After Ctrl-C, one line says what happened: not distributed's warnings about the
    tasks it cancels and the workers it stops. A LocalCluster's workers are stopped at once
    (they run nothing worth waiting for: the results are written here), before they can
    log their lost scheduler while the cluster closes."""
    import logging
    import multiprocessing.forkserver

    import psutil  # a dependency of distributed

    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    server = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)
    if local and server is not None:
        try:
            workers = psutil.Process(server).children()
        except psutil.Error:
            workers = []
        for worker in workers:
            try:
                worker.kill()
            except psutil.Error:
                pass
    try:
        yield
    finally:
        logger.setLevel(level)


class _Dispatcher:
    """Feeds the cluster one task per worker: extractions first, then the runs each
    finished extraction unlocks; records every outcome as it arrives."""

    def __init__(self, client: Any, suite: Suite, registry: Registry, todo: list[RunSpec], queue: RunQueue,
                 progress: Progress, retries: int, run_timeout: float = 0.0):
        self.client, self.results_dir, self.progress = client, suite.results_dir, progress
        self.queue, self.record = queue, queue.record
        self.retries, self.run_timeout = retries, run_timeout
        self.deaths: dict[str, int] = {}  # task key -> how many workers died running it
        self.extractions: deque[tuple[str, RunSpec]] = deque()
        self.waiting: dict[str, list[RunSpec]] = {}  # extraction key -> the runs that need it
        self.needs: dict[str, set[str]] = {}  # run id -> extraction keys not finished yet
        for spec in todo:
            keys = extraction_keys(spec, registry)
            if not keys:
                self.queue.queue.append(spec)
                continue
            self.needs[spec.run_id] = set(keys)
            for key, item in keys.items():
                if key not in self.waiting:
                    self.waiting[key] = []
                    self.extractions.append((key, item))
                self.waiting[key].append(spec)
        self.in_flight: dict[Any, tuple[str, Any]] = {}
        self.runs_in_flight: set[Any] = set()  # the futures of runs (not extractions)
        self.began: dict[str, float] = {}  # task key -> when its worker said it began (with a time limit)
        self.events_seen = 0
        self.workers: dict[str, TaskID] = {}
        self.tally: dict[str, list[int]] = {}  # worker -> [ok, failed]
        self.embeddings = (progress.add_task("  embeddings extracted", total=len(self.extractions))
                           if self.extractions else None)

    def run(self) -> None:
        from distributed import wait

        self._top_up()
        try:
            while self.in_flight or self.extractions or self.queue:
                done: Any = ()
                if self.in_flight:  # wake up now and then: time limits, claims others hold
                    try:
                        done = wait(list(self.in_flight), timeout=POLL_S, return_when="FIRST_COMPLETED").done
                    except TimeoutError:
                        pass
                else:
                    time.sleep(POLL_S)
                for future in done:
                    self._arrived(future)
                self._stop_overdue()
                self._top_up()
        except BaseException:  # Ctrl-C above all: what finished is written, the rest is cancelled
            self.client.cancel(list(self.in_flight), force=True)
            raise

    def _arrived(self, future: Any) -> None:
        kind, payload = self.in_flight.pop(future)
        self.runs_in_flight.discard(future)
        if future.cancelled():
            raise UserError("the Dask cluster dropped a task (was its scheduler restarted, or the "
                            "connection lost?); finished results are saved: run the same command "
                            "again to resume")
        self._top_up()  # the freed worker starts its next task while this one is written
        if not self._lost_worker(future, kind, payload):
            (self._extracted if kind == "extract" else self._ran)(future, payload)

    def _stop_overdue(self) -> None:
        """Record a run past ``run_timeout`` as failed and end the worker process running it
        (its nanny starts a fresh one; a worker without a nanny is gone)."""
        if not self.run_timeout:
            return
        now = time.monotonic()
        events = self.client.get_events(RUN_BEGAN)
        for _, key in events[self.events_seen:]:
            self.began[key] = now
        self.events_seen = len(events)
        for future in list(self.runs_in_flight):
            began = self.began.get(future.key)
            if began is None or now - began <= self.run_timeout:
                continue
            spec = self.in_flight.pop(future)[1]
            self.runs_in_flight.discard(future)
            workers = [w for w, keys in self.client.processing().items() if future.key in keys]
            self.client.cancel([future], force=True)
            if workers:  # its nanny starts a fresh process, as after any death
                self.client.run(_exit_worker, workers=workers, wait=False)
            self._write(never_reported(spec, "TimeoutError", timed_out_message(self.run_timeout)),
                        workers[0] if workers else None)
            self.queue.finished(spec)

    def _top_up(self, slots: int | None = None) -> None:
        """Submit queued tasks until every worker has one; ``slots`` is the number of
        workers when known, else it is asked (workers come and go on adaptive clusters)."""
        self.slots = slots or max(1, len(self.client.nthreads()))
        while len(self.in_flight) < self.slots and (self.extractions or self.queue):
            if self.extractions:
                payload = self.extractions.popleft()
                self._submit(extract_task, payload[1], "extract", payload)
                continue
            spec = self.queue.next()
            if spec is None:  # only runs another process holds
                return
            self._submit(run_task, spec, "run", spec)

    def _submit(self, task: Any, spec: RunSpec, kind: str, payload: Any) -> None:
        key = _key(kind, payload)
        attempt = self.deaths.get(key, 0)  # a fresh key per attempt: the lost one is in error
        future = self.client.submit(task, spec, key=f"{key}-{attempt}" if attempt else key, pure=False)
        self.in_flight[future] = (kind, payload)
        if kind == "run":
            self.runs_in_flight.add(future)

    def _lost_worker(self, future: Any, kind: str, payload: Any) -> bool:
        """Queue a task whose worker died to run again (first in line) while it has
        retries left; True when it was queued."""
        from distributed import KilledWorker

        if future.status != "error" or not isinstance(future.exception(), KilledWorker):
            return False
        key = _key(kind, payload)
        self.deaths[key] = self.deaths.get(key, 0) + future.exception().allowed_failures + 1
        if self.deaths[key] > self.retries:
            return False
        if kind == "extract":
            self.extractions.appendleft(payload)
        else:
            self.queue.again(payload)
        return True

    def _extracted(self, future: Any, payload: tuple[str, RunSpec]) -> None:
        key, spec = payload
        runs = [run for run in self.waiting.pop(key) if run.run_id in self.needs]  # not failed already
        self.progress.advance(self.embeddings)
        if future.status == "finished":
            for run in runs:
                self.needs[run.run_id].discard(key)
                if not self.needs[run.run_id]:
                    del self.needs[run.run_id]
                    self.queue.queue.append(run)
            return
        exc = future.exception()
        message = "extracting the embeddings it needs failed: " + self._error(exc, "extract", payload)
        self.progress.console.print(f"[red]extraction failed[/red] {escape(spec.dataset.label)}: {escape(message)}")
        for run in runs:
            del self.needs[run.run_id]
            self._write(never_reported(run, type(exc).__name__, message), None)

    def _ran(self, future: Any, spec: RunSpec) -> None:
        if future.status == "finished":
            worker, result = future.result()
        else:
            exc = future.exception()
            worker = _last_worker(exc)
            result = never_reported(spec, type(exc).__name__, self._error(exc, "run", spec))
        self._write(result, worker)
        self.queue.finished(spec)

    def _error(self, exc: BaseException, kind: str, payload: Any) -> str:
        """What went wrong outside ``execute`` (which records a run's own errors), and what
        to do about it; an extraction's own errors are the runs' errors, as locally."""
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):
            return (f"its Dask worker died {self.deaths.get(_key(kind, payload), 0)} time(s) while running it "
                    f"(last: {_last_worker(exc)}), most often out of memory or a crash in native code; check "
                    "the worker logs, give workers more memory or use fewer threads / a smaller batch_size, "
                    "then run the suite again to retry it")
        if kind == "extract":
            return describe(exc)
        return (f"{describe(exc)} (raised on a Dask worker outside the run itself: check that every worker "
                "has the same mmbench, plugins and environment variables as this machine)")

    def _write(self, result: dict, worker: str | None) -> None:
        write_result(self.results_dir, result)
        ok = self.record(result)
        if worker is None:
            return
        tally = self.tally.setdefault(worker, [0, 0])
        tally[0 if ok else 1] += 1
        if worker not in self.workers:
            self.workers[worker] = self.progress.add_task("", total=None, note=True)
        self.progress.update(self.workers[worker],
                             description=f"  worker {escape(worker)}: {tally[0]} done, {tally[1]} failed")


def _key(kind: str, payload: Any) -> str:
    """A task's dask key (also the dashboard's name for it)."""
    return f"mmbench_extract-{payload[0]}" if kind == "extract" else f"mmbench_run-{payload.run_id}"


def _last_worker(exc: BaseException) -> str | None:
    worker = getattr(exc, "last_worker", None)
    return getattr(worker, "address", None)


# --- on the workers ----------------------------------------------------------------

#: one run or extraction at a time per worker process: seeds and torch threads are global
_one_at_a_time = threading.Lock()


def run_task(spec: RunSpec) -> tuple[str, dict]:
    """A worker runs one configuration; returns its address and the result record (with
    the test predictions, which the client writes beside the result)."""
    from mmbench.run import execute

    from distributed import get_worker

    with _one_at_a_time:
        spec, worker = _on_worker(spec)
        get_worker().log_event(RUN_BEGAN, get_worker().get_current_task())  # its time limit counts from now
        return worker, execute(spec, worker_registry())


def extract_task(spec: RunSpec) -> str:
    """A worker fills the shared embedding cache for one extraction (``extraction_keys``)."""
    from mmbench.cache import EmbeddingCache
    from mmbench.extract import extract_one

    with _one_at_a_time:
        spec, worker = _on_worker(spec)
        extract_one(spec, worker_registry(), EmbeddingCache())
        return worker


async def _exit_worker() -> None:
    """Ends the worker process at once: its run is past its time limit, and a thread
    cannot be stopped."""
    os._exit(1)


def _on_worker(spec: RunSpec) -> tuple[RunSpec, str]:
    """The spec with the worker's threads when it names none, and the worker's address."""
    from distributed import get_worker

    worker = get_worker()
    if not spec.threads:
        spec = replace(spec, threads=worker.state.nthreads)
    return spec, worker.address
