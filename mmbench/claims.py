"""Claims on runs, so two ``mmbench run`` of one suite at once do every run once.

Before a process starts a run it takes the run's claim: an exclusive ``flock`` on
``<results>/.<run id>.claim``, held until the run's result is written. A second process
skips the runs others hold and comes back to them when it has nothing else to do; when it
finally gets a claim, the run's result is there (it is counted as done) or the claimant
died first (the kernel drops a dead process's locks, so a crash never blocks anyone) and
it runs. The claim file is removed when released; the one a killed process leaves is
taken over and removed by the next run. Where ``fcntl`` is missing (Windows) claims are
always granted: concurrent runs of one suite there do the work twice, as before.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

CLAIM_SUFFIX = ".claim"


def claim_path(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / f".{run_id}{CLAIM_SUFFIX}"


class Claims:
    """The claims this process holds in one results folder."""

    def __init__(self, results_dir: Path):
        self.results_dir = Path(results_dir)
        self.held: dict[str, int] = {}  # run id -> locked file descriptor

    def take(self, run_id: str) -> bool:
        """Claim ``run_id`` without waiting; False when another process holds it."""
        if run_id in self.held:
            return True
        if fcntl is None:
            self.held[run_id] = -1
            return True
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = claim_path(self.results_dir, run_id)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # the holder may have released (removed) it between our open and lock: then
            # we locked a file nobody else will ever see; open the current one instead
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self.held[run_id] = fd
                return True
            os.close(fd)

    def release(self, run_id: str) -> None:
        """Give up a claim and remove its file (while still holding it, so a process that
        opened the file meanwhile sees it is gone and opens a fresh one)."""
        fd = self.held.pop(run_id, None)
        if fd is None or fd < 0:
            return
        claim_path(self.results_dir, run_id).unlink(missing_ok=True)
        os.close(fd)

    def release_all(self) -> None:
        for run_id in list(self.held):
            self.release(run_id)

    def holder(self, run_id: str) -> int | None:
        """The pid written in a claim another process holds (None when unknown)."""
        try:
            return int(claim_path(self.results_dir, run_id).read_text().strip())
        except (OSError, ValueError):
            return None
