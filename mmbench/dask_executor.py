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
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID

from mmbench.errors import UserError
from mmbench.executor import Recorder, SuiteOutcome, progress_bar, runs_to_do, worker_registry
from mmbench.extract import describe, extraction_keys
from mmbench.registry import Registry
from mmbench.results import run_record, write_result
from mmbench.suite import RunSpec, Suite

#: How often a task may lose its worker and run again before it is recorded as failed; an
#: external scheduler's own ``distributed.scheduler.allowed-failures`` retries count towards it.
RETRIES = 2
INSTALL_HINT = 'the Dask executor needs dask[distributed]: pip install "mmbench[dask]"'


def run_suite_dask(suite: Suite, registry: Registry, *, address: str | None, n_workers: int | None = None,
                   threads_per_worker: int | None = None, threads: int = 0, rerun: bool = False,
                   device: str = "cpu", console: Console | None = None, retries: int = RETRIES) -> SuiteOutcome:
    """Run what is not finished on the cluster at ``address``, or on a LocalCluster of
    ``n_workers`` (default: the cores) x ``threads_per_worker`` (default 1) started and
    closed here. ``threads`` overrides every run's torch threads (0: the suite's, else the
    worker's). Ctrl-C cancels what is in flight; finished results are already written."""
    _require_distributed()
    console = console or Console(stderr=True)
    todo, outcome = runs_to_do(suite, console, threads=threads, rerun=rerun, device=device)
    if not todo:
        return outcome
    with _client(address, n_workers, threads_per_worker) as client, progress_bar(console) as progress:
        grid = progress.add_task(f"suite {suite.name}", total=len(todo))
        _Dispatcher(client, suite, registry, todo, Recorder(outcome, progress, grid), progress, retries).run()
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
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=n_workers or os.cpu_count() or 1,
                               threads_per_worker=threads_per_worker or 1, processes=True)
    with cluster, Client(cluster) as client:
        yield client


class _Dispatcher:
    """Feeds the cluster one task per worker: extractions first, then the runs each
    finished extraction unlocks; records every outcome as it arrives."""

    def __init__(self, client: Any, suite: Suite, registry: Registry, todo: list[RunSpec], record: Recorder,
                 progress: Progress, retries: int):
        self.client, self.results_dir, self.record, self.progress = client, suite.results_dir, record, progress
        self.retries = retries
        self.deaths: dict[str, int] = {}  # task key -> how many workers died running it
        self.extractions: deque[tuple[str, RunSpec]] = deque()
        self.runs: deque[RunSpec] = deque()
        self.waiting: dict[str, list[RunSpec]] = {}  # extraction key -> the runs that need it
        self.needs: dict[str, set[str]] = {}  # run id -> extraction keys not finished yet
        for spec in todo:
            keys = extraction_keys(spec, registry)
            if not keys:
                self.runs.append(spec)
                continue
            self.needs[spec.run_id] = set(keys)
            for key, item in keys.items():
                if key not in self.waiting:
                    self.waiting[key] = []
                    self.extractions.append((key, item))
                self.waiting[key].append(spec)
        self.in_flight: dict[Any, tuple[str, Any]] = {}
        self.workers: dict[str, TaskID] = {}
        self.tally: dict[str, list[int]] = {}  # worker -> [ok, failed]
        self.embeddings = (progress.add_task("  embeddings extracted", total=len(self.extractions))
                           if self.extractions else None)

    def run(self) -> None:
        from distributed import as_completed

        self.completed = as_completed()
        self._top_up()
        try:
            for future in self.completed:
                kind, payload = self.in_flight.pop(future)
                if future.cancelled():
                    raise UserError("the Dask cluster dropped a task (was its scheduler restarted, or the "
                                    "connection lost?); finished results are saved: run the same command "
                                    "again to resume")
                self._top_up()  # the freed worker starts its next task while this one is written
                if not self._lost_worker(future, kind, payload):
                    (self._extracted if kind == "extract" else self._ran)(future, payload)
                self._top_up(self.slots)  # a retry, or the runs an extraction unlocked
        except BaseException:  # Ctrl-C above all: what finished is written, the rest is cancelled
            self.client.cancel(list(self.in_flight), force=True)
            raise

    def _top_up(self, slots: int | None = None) -> None:
        """Submit queued tasks until every worker has one; ``slots`` is the number of
        workers when known, else it is asked (workers come and go on adaptive clusters)."""
        self.slots = slots or max(1, len(self.client.nthreads()))
        while len(self.in_flight) < self.slots and (self.extractions or self.runs):
            if self.extractions:
                payload = self.extractions.popleft()
                self._submit(extract_task, payload[1], "extract", payload)
            else:
                spec = self.runs.popleft()
                self._submit(run_task, spec, "run", spec)

    def _submit(self, task: Any, spec: RunSpec, kind: str, payload: Any) -> None:
        key = _key(kind, payload)
        attempt = self.deaths.get(key, 0)  # a fresh key per attempt: the lost one is in error
        future = self.client.submit(task, spec, key=f"{key}-{attempt}" if attempt else key, pure=False)
        self.in_flight[future] = (kind, payload)
        self.completed.add(future)

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
        (self.extractions if kind == "extract" else self.runs).appendleft(payload)
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
                    self.runs.append(run)
            return
        exc = future.exception()
        message = "extracting the embeddings it needs failed: " + self._error(exc, "extract", payload)
        self.progress.console.print(f"[red]extraction failed[/red] {escape(spec.dataset.label)}: {escape(message)}")
        for run in runs:
            del self.needs[run.run_id]
            self._write(_never_reported(run, exc, message), None)

    def _ran(self, future: Any, spec: RunSpec) -> None:
        if future.status == "finished":
            worker, result = future.result()
        else:
            exc = future.exception()
            worker = _last_worker(exc)
            result = _never_reported(spec, exc, self._error(exc, "run", spec))
        self._write(result, worker)

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


def _never_reported(spec: RunSpec, exc: BaseException, message: str) -> dict:
    """The failed record of a run that ``execute`` never finished (its worker died, or its
    extraction failed)."""
    return run_record(spec, started=datetime.now(timezone.utc), duration_s=0.0, threads=spec.threads,
                      error={"type": type(exc).__name__, "message": message, "traceback": None})


# --- on the workers ----------------------------------------------------------------

#: one run or extraction at a time per worker process: seeds and torch threads are global
_one_at_a_time = threading.Lock()


def run_task(spec: RunSpec) -> tuple[str, dict]:
    """A worker runs one configuration; returns its address and the result record (with
    the test predictions, which the client writes beside the result)."""
    from mmbench.run import execute

    with _one_at_a_time:
        spec, worker = _on_worker(spec)
        return worker, execute(spec, worker_registry())


def extract_task(spec: RunSpec) -> str:
    """A worker fills the shared embedding cache for one extraction (``extraction_keys``)."""
    from mmbench.cache import EmbeddingCache
    from mmbench.extract import extract_one

    with _one_at_a_time:
        spec, worker = _on_worker(spec)
        extract_one(spec, worker_registry(), EmbeddingCache())
        return worker


def _on_worker(spec: RunSpec) -> tuple[RunSpec, str]:
    """The spec with the worker's threads when it names none, and the worker's address."""
    from distributed import get_worker

    worker = get_worker()
    if not spec.threads:
        spec = replace(spec, threads=worker.state.nthreads)
    return spec, worker.address
