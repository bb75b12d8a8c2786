"""Faults of the executors (issue 13): Ctrl-C with workers, a killed parent, a dying worker,
runs past their time limit, two `mmbench run` of one suite at once, Ctrl-C on Dask.
End to end through the CLI in subprocesses, as a user meets them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmbench import result_index
from mmbench.registry import load_registry
from mmbench.suite import load_suite

RUN_FIXTURES = Path(__file__).resolve().parent / "run_fixtures"
SUITE = """
[suite]
name = "faults"
seeds = {seeds}
threads = 1
{suite_extra}
[[datasets]]
name = "synthetic"
n_samples = 300
dims = [8, 8]

{fusions}
"""


def write_suite(folder: Path, fusions: str, seeds: str = "[0, 1]", suite_extra: str = "") -> Path:
    path = folder / "faults.toml"
    path.write_text(SUITE.format(seeds=seeds, fusions=fusions, suite_extra=suite_extra))
    return path


def fusion(name: str, **params) -> str:
    return f'[[fusions]]\nname = "{name}"\n' + "".join(f"{k} = {v}\n" for k, v in params.items()) + "\n"


def env() -> dict[str, str]:
    """The fixture plugins importable by `mmbench` and its workers."""
    paths = [str(RUN_FIXTURES), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "MMBENCH_PLUGINS": "mmbench,faulty_fusions",
            "COLUMNS": "100"}


def mmbench(folder: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmbench", "run", "faults.toml", *args], cwd=folder, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def start(folder: Path, *args: str) -> subprocess.Popen:
    """`mmbench run` in its own process group, as a terminal runs it (Ctrl-C reaches the group)."""
    return subprocess.Popen([sys.executable, "-m", "mmbench", "run", "faults.toml", *args], cwd=folder, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """A terminal's Ctrl-C reaches a program whose SIGINT is not ignored; a test session
    started in the background of a non-interactive shell ignores it, and the child would
    inherit that (Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def results(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (folder / "results" / "faults").glob("*.json")}


def by_fusion(folder: Path) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for result in results(folder).values():
        grouped.setdefault(result["spec"]["fusion"]["name"], []).append(result)
    return grouped


def summary(stdout: str) -> tuple[int, int, int]:
    found = re.search(r"(\d+) runs finished, (\d+) failed, (\d+) skipped", stdout)
    assert found is not None, stdout
    return int(found[1]), int(found[2]), int(found[3])


def pool_workers(pid: int) -> list:
    """The pool's worker processes of `mmbench run` ``pid`` (not multiprocessing's helpers)."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return [c for c in children if _is_worker(c)]


def _is_worker(process) -> bool:
    import psutil

    try:
        return "spawn_main" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def no_leftovers(folder: Path) -> None:
    """No claim or temporary file stays in the results folder."""
    # no claim or temporary file left (the leaderboard's result index is meant to stay)
    assert [p.name for p in (folder / "results" / "faults").glob(".*") if p.name != result_index.FOLDER] == []


# --- fast --------------------------------------------------------------------------


def test_a_claim_is_exclusive_and_removed_when_released(tmp_path):
    from mmbench.claims import Claims, claim_path

    mine, theirs = Claims(tmp_path), Claims(tmp_path)  # two open files: as two processes
    assert mine.take("run1")
    assert not theirs.take("run1")
    assert theirs.holder("run1") == os.getpid()
    assert theirs.take("run2")
    mine.release("run1")
    assert not claim_path(tmp_path, "run1").exists()
    assert theirs.take("run1")
    theirs.release_all()
    assert list(tmp_path.iterdir()) == []


def test_a_dead_claimants_claim_is_taken_over(tmp_path):
    from mmbench.claims import Claims, claim_path

    code = ("import os, sys; from mmbench.claims import Claims; c = Claims(sys.argv[1]); "
            "assert c.take('run1'); print('held', flush=True); os.kill(os.getpid(), 9)")
    dead = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert dead.stdout.strip() == "held" and dead.returncode == -9
    assert claim_path(tmp_path, "run1").exists()  # left behind, but nobody holds it
    claims = Claims(tmp_path)
    assert claims.take("run1")
    claims.release("run1")
    assert not claim_path(tmp_path, "run1").exists()


def test_run_timeout_is_validated_and_not_part_of_run_ids(tmp_path, run_cli):
    plain = load_suite(write_suite(tmp_path, fusion("early")), load_registry())
    timed = load_suite(write_suite(tmp_path, fusion("early"), suite_extra="run_timeout = 30"), load_registry())
    assert timed.run_timeout == 30.0 and plain.run_timeout == 0.0
    assert [r.run_id for r in timed.runs()] == [r.run_id for r in plain.runs()]

    path = write_suite(tmp_path, fusion("early"), suite_extra="run_timeout = -1")
    bad = run_cli("validate", path)
    assert bad.code == 2 and "run_timeout" in bad.err
    write_suite(tmp_path, fusion("early"))
    bad = run_cli("run", path, "--run-timeout", "0")
    assert bad.code == 2 and "--run-timeout" in bad.err


# --- slow: end to end ----------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_that_segfaults_is_retried_then_recorded_failed_and_the_suite_goes_on(tmp_path):
    write_suite(tmp_path, fusion("segfaults") + fusion("prior"))
    done = mmbench(tmp_path, "--workers", "2", "--retries", "1")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "BrokenProcessPool" not in done.stderr
    assert summary(done.stdout) == (2, 2, 0)
    runs = by_fusion(tmp_path)
    assert [r["status"] for r in runs["prior"]] == ["ok", "ok"]
    for result in runs["segfaults"]:
        assert result["status"] == "failed"
        assert result["error"]["type"] == "WorkerDied"
        assert "died 2 time(s)" in result["error"]["message"] and "SIGSEGV" in result["error"]["message"]
    no_leftovers(tmp_path)
    again = mmbench(tmp_path, "--workers", "2", "--retries", "0")  # the failed runs are retried
    assert summary(again.stdout) == (0, 2, 2)


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_run_past_its_time_limit_is_stopped_and_recorded_failed(tmp_path, workers):
    write_suite(tmp_path, fusion("sleeps", seconds=600) + fusion("prior"), seeds="[0]")
    done = mmbench(tmp_path, "--workers", workers, "--run-timeout", "10")
    assert done.returncode == 1, done.stderr
    assert summary(done.stdout) == (1, 1, 0)
    runs = by_fusion(tmp_path)
    assert runs["prior"][0]["status"] == "ok"
    slow = runs["sleeps"][0]
    assert slow["status"] == "failed" and slow["error"]["type"] == "TimeoutError"
    assert slow["error"]["message"].startswith("timed out after 10 s")
    no_leftovers(tmp_path)


@pytest.mark.slow
def test_ctrl_c_stops_the_pool_at_once_keeps_finished_results_and_exits_130(tmp_path):
    # four quick runs, then runs that would take ten minutes each
    write_suite(tmp_path, fusion("prior") + fusion("sleeps", seconds=600), seeds="[0, 1, 2, 3]")
    proc = start(tmp_path, "--workers", "2")
    wait_for(lambda: len(results(tmp_path)) >= 4 and len(pool_workers(proc.pid)) == 2)
    time.sleep(1.0)  # the sleeping runs are in flight
    workers = pool_workers(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)  # before the fix: never returns (the pool drains the queue)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert [line for line in err.splitlines() if "interrupted" in line] == [
        "interrupted: finished runs are saved; run the same command again to resume"]
    assert sorted(r["spec"]["fusion"]["name"] for r in results(tmp_path).values()) == ["prior"] * 4
    assert not [w for w in workers if w.is_running() and w.status() != "zombie"]
    no_leftovers(tmp_path)


@pytest.mark.slow
def test_a_second_ctrl_c_exits_at_once_while_the_pool_waits_for_its_workers(tmp_path):
    """The first Ctrl-C stops handing out runs and stops the runs in flight (SIGTERM, then
    SIGKILL after pool.STOP_GRACE_S); runs deaf to SIGTERM hold that stop, and a second
    Ctrl-C then exits at once: 130, one line, no traceback, no worker or claim left."""
    from mmbench.executor import AGAIN

    started = tmp_path / "started"
    started.mkdir()
    # four quick runs, then runs that would take a minute each: two in flight, two queued
    write_suite(tmp_path, fusion("prior") + fusion("stubborn", seconds=60, started=f'"{started}"'),
                seeds="[0, 1, 2, 3]")
    proc = start(tmp_path, "--workers", "2")
    wait_for(lambda: len(results(tmp_path)) >= 4 and len(list(started.glob("*.started"))) == 2, seconds=300)
    workers = pool_workers(proc.pid)
    assert len(workers) == 2
    os.killpg(proc.pid, signal.SIGINT)
    wait_for(lambda: len(list(started.glob("*.terminated"))) == 2, seconds=30)  # the stop is waiting for them
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert [line for line in err.splitlines() if "interrupted" in line] == [AGAIN]  # the second one's line
    # it waited neither for the runs in flight nor started the queued ones
    assert sorted(r["spec"]["fusion"]["name"] for r in results(tmp_path).values()) == ["prior"] * 4
    assert len(list(started.glob("*.started"))) == 2
    wait_for(lambda: not [w for w in workers if w.is_running() and w.status() != "zombie"], seconds=10)
    no_leftovers(tmp_path)


@pytest.mark.slow
def test_workers_stopped_while_they_shut_down_print_nothing(tmp_path):
    # the pool stops idle workers with SIGTERM, and again after its grace period: the second
    # one reached a worker inside an atexit handler and printed a traceback
    write_suite(tmp_path, fusion("slow_exit"))
    done = mmbench(tmp_path, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert summary(done.stdout) == (2, 0, 0)


@pytest.mark.slow
def test_pool_workers_die_with_a_killed_parent(tmp_path):
    started = tmp_path / "started"
    started.mkdir()
    write_suite(tmp_path, fusion("sleeps", seconds=600, started=f'"{started}"'))
    proc = start(tmp_path, "--workers", "2")
    wait_for(lambda: len(list(started.iterdir())) == 2, seconds=300)  # both workers are in a run
    workers = pool_workers(proc.pid)
    assert len(workers) == 2
    proc.kill()
    proc.wait(timeout=30)  # not communicate(): orphans would hold its pipes open until their run ends
    try:
        # before the fix they stay alive (and hold ~850 MB each) for minutes
        wait_for(lambda: not [w for w in workers if w.is_running() and w.status() != "zombie"], seconds=30)
    finally:
        for worker in workers:
            if worker.is_running():
                worker.kill()
        proc.communicate()


@pytest.mark.slow
def test_two_runs_of_one_suite_at_once_do_every_run_once(tmp_path):
    write_suite(tmp_path, fusion("sleeps", seconds=1.5), seeds="[0, 1, 2, 3, 4, 5, 6, 7]")
    first, second = start(tmp_path), start(tmp_path)
    outs = [proc.communicate(timeout=300) for proc in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    finished = [summary(out)[0] for out, _ in outs]
    assert sum(finished) == 8, outs  # before the fix: 16, each did all of them
    assert len(results(tmp_path)) == 8
    no_leftovers(tmp_path)


@pytest.mark.slow
def test_ctrl_c_on_dask_says_one_line(tmp_path):
    pytest.importorskip("distributed")
    write_suite(tmp_path, fusion("prior") + fusion("sleeps", seconds=600), seeds="[0, 1]")
    proc = start(tmp_path, "--executor", "dask", "--workers", "2")
    wait_for(lambda: len(results(tmp_path)) >= 2, seconds=180)
    time.sleep(2.0)  # the sleeping runs are in flight
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err, err  # before the fix: dozens of lines of worker tracebacks
    progress = ("suite faults", "worker tcp://")  # the display's lines
    assert [line for line in err.splitlines() if line.strip() and not line.lstrip().startswith(progress)] == [
        "interrupted: finished runs are saved; run the same command again to resume"], err
