"""Worker processes that each run one run at a time, for ``--workers N`` and for in-process
runs under a time limit.

Not ``concurrent.futures``: its pool breaks whole when one worker dies (BrokenProcessPool),
cannot stop one task, and its shutdown drains the queue. Here the parent knows which run
each worker holds: a dead worker costs only its run (the executor retries it, then records
it failed) and is replaced, a run past its time limit is stopped by stopping its worker,
and Ctrl-C stops every worker at once. Workers ignore SIGINT (a terminal's Ctrl-C reaches
the whole process group; the parent decides), and die with the parent even when it is
killed with SIGKILL: ``PR_SET_PDEATHSIG`` on Linux, a thread watching the parent's pid
elsewhere. Each worker writes its own result, so a crash of the parent loses nothing that
finished; it sends back a summary, and its progress while it runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mmbench.suite import RunSpec

#: seconds a worker gets to exit on SIGTERM (removing a half-written temporary file) before SIGKILL
STOP_GRACE_S = 2.0
#: at most this many progress messages per second from a worker
_PROGRESS_EVERY_S = 0.2
_PR_SET_PDEATHSIG = 1


class WorkerProcess:
    """One spawned worker (spawn, not fork: forking a process that already runs torch
    threads can deadlock) and the run it holds."""

    def __init__(self, results_dir: Path):
        context = get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, str(results_dir), os.getpid()))
        self.process.start()
        child.close()
        self.spec: RunSpec | None = None
        #: when the worker began the run it holds (None until it says so: a fresh worker
        #: imports torch first, which is no part of the run's time)
        self.started: float | None = None

    def start(self, spec: RunSpec) -> None:
        self.spec, self.started = spec, None
        self.conn.send(spec)

    def running_for(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started

    def done(self) -> None:
        self.spec = None

    def died(self) -> str:
        """How the process ended, for the failed run's message."""
        self.process.join(timeout=STOP_GRACE_S)
        code = self.process.exitcode
        if code is None:
            return "it stopped answering"
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def stop(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL after ``STOP_GRACE_S``)."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=STOP_GRACE_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def stop_all(workers: list[WorkerProcess]) -> None:
    """Stop every worker at once: SIGTERM to all, then SIGKILL to those still alive."""
    for worker in workers:
        if worker.process.is_alive():
            worker.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
    for worker in workers:
        worker.stop()


# --- in the worker process ---------------------------------------------------------


def _serve(conn: Connection, results_dir: str, parent: int) -> None:
    """Run the specs the parent sends, one at a time, until it sends None or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        _serve_runs(conn, results_dir, parent)
    finally:
        # nothing is being written any more: a SIGTERM while the interpreter shuts down
        # (atexit handlers such as torch's) ends the process silently, no traceback
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _serve_runs(conn: Connection, results_dir: str, parent: int) -> None:
    _die_with(parent)
    from mmbench.executor import worker_registry
    from mmbench.files import WriteFailed
    from mmbench.results import write_result
    from mmbench.run import execute

    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return
        if spec is None:
            return
        conn.send(("started",))
        report = _Reporter(conn, spec)
        result = execute(spec, worker_registry(), on_epoch=report.epoch, on_items=report.items)
        try:
            write_result(Path(results_dir), result)
        except WriteFailed as exc:  # the parent stops the suite, naming the file (exit 3), no traceback here
            conn.send(("write_failed", exc.errno, exc.strerror, exc.filename))
            return
        conn.send(("done", {"status": result["status"], "error": result.get("error"),
                            "warnings": result.get("warnings"),
                            "labels": result["labels"], "spec": {"seed": result["spec"]["seed"]}}))


def _exit_on_term(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not interrupt the unwinding
    raise SystemExit(128 + signum)  # unwinds, so an atomic write removes its temporary file


def _die_with(parent: int) -> None:
    """Exit when the parent is gone, however it ended."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="mmbench-parent-watch", daemon=True).start()


class _Reporter:
    """Sends the run's progress to the parent, at most every ``_PROGRESS_EVERY_S``."""

    def __init__(self, conn: Connection, spec: RunSpec):
        self.conn, self.spec, self.last = conn, spec, 0.0

    def _send(self, phase: str, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < _PROGRESS_EVERY_S:
            return
        self.last = now
        self.conn.send(("progress", phase, what, done, total))

    def epoch(self, done: int, total: int) -> None:
        self._send("train", "", done, total)

    def items(self, what: str, done: int, total: int) -> None:
        self._send(f"items {what}", what, done, total)
