"""Killing `mmbench run` mid-suite (kill -9 of the parent alone) loses at most the runs in
flight, in-process, with `--workers 2` and on Dask: the re-run does only what is left, its
leaderboard's quality columns equal an uninterrupted run's exactly, no temporary or claim
file stays, every predictions sidecar is valid, and no worker process outlives the kill."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from mmbench import result_index
from mmbench.results import read_predictions

SUITE = """
[suite]
name = "killme"
seeds = [0, 1, 2, 3, 4, 5, 6, 7]
threads = 1
[[datasets]]
name = "synthetic"
n_samples = 1500
[[fusions]]
name = "early"
train = { epochs = 40 }
"""
N_RUNS = 8
MODES = {"in-process": [], "workers": ["--workers", "2"], "dask": ["--executor", "dask", "--workers", "2"]}


def run(folder, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "mmbench", "run", "killme.toml", *args], cwd=folder,
                          capture_output=True, text=True, timeout=timeout)


def quality_columns(folder) -> dict:
    """Per dataset and configuration: the leaderboard's quality metrics (not times or
    memory) and the primary metric's interval."""
    board = json.loads((folder / "leaderboard" / "killme.json").read_text())
    return {(table["dataset"], row["fusion"]): ({k: v for k, v in row["metrics"].items()
                                                 if not ("_s_" in k or k.endswith(("_s", "_mb")))}, row["ci"])
            for table in board["datasets"] for row in table["rows"]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    (folder / "killme.toml").write_text(SUITE)
    done = run(folder)
    assert done.returncode == 0, done.stderr
    return quality_columns(folder)


def processes_in_group(pgid: int) -> list:
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, ProcessLookupError):
            pass
    return found


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_kill_then_rerun_computes_only_the_unfinished_runs(tmp_path, mode, uninterrupted):
    if mode == "dask":
        pytest.importorskip("distributed")
    (tmp_path / "killme.toml").write_text(SUITE)
    command = [sys.executable, "-m", "mmbench", "run", "killme.toml", *MODES[mode]]
    results = tmp_path / "results" / "killme"
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(results.glob("*.json"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # the parent alone, as the OOM killer or `kill -9 PID` would
    proc.wait()
    finished = list(results.glob("*.json"))
    assert 2 <= len(finished) < N_RUNS, "the kill should land mid-suite"
    for path in finished:  # atomic writes: every file on disk is a whole result
        assert json.loads(path.read_text())["status"] == "ok"
    # the workers die with their parent (before the fix, pool workers stayed, idle, for minutes)
    deadline = time.monotonic() + 60
    while processes_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in_group(proc.pid) == []

    again = run(tmp_path, *MODES[mode])
    assert again.returncode == 0, again.stderr
    summary = re.search(r"(\d+) runs finished, 0 failed, (\d+) skipped", again.stdout)
    assert summary is not None, again.stdout
    assert (int(summary[1]), int(summary[2])) == (N_RUNS - len(finished), len(finished))
    assert len(list(results.glob("*.json"))) == N_RUNS
    assert quality_columns(tmp_path) == uninterrupted
    # no temporary or claim file (the leaderboard's result index is meant to stay)
    assert [p.name for p in results.iterdir() if p.name.startswith(".") and p.name != result_index.FOLDER] == []
    for path in results.glob("*.json"):
        result = json.loads(path.read_text())
        predictions = read_predictions(results, result)
        assert predictions is not None and len(predictions["ids"]) == result["data"]["n"]["test"]
