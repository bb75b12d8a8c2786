"""Killing `mmbench run` mid-suite loses at most the run in flight."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest

SUITE = """
[suite]
name = "killme"
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
threads = 1
[[datasets]]
name = "synthetic"
n_samples = 1500
[[fusions]]
name = "early"
train = { epochs = 40 }
"""


@pytest.mark.slow
def test_kill_then_rerun_computes_only_the_unfinished_runs(tmp_path):
    (tmp_path / "killme.toml").write_text(SUITE)
    command = [sys.executable, "-m", "mmbench", "run", "killme.toml"]
    results = tmp_path / "results" / "killme"
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(results.glob("*.json"))) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = list(results.glob("*.json"))
    assert 3 <= len(finished) < 10, "the kill should land mid-suite"
    for path in finished:  # atomic writes: every file on disk is a whole result
        assert json.loads(path.read_text())["status"] == "ok"

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = re.search(r"(\d+) runs finished, 0 failed, (\d+) skipped", again.stdout)
    assert summary is not None, again.stdout
    assert (int(summary[1]), int(summary[2])) == (10 - len(finished), len(finished))
    assert len(list(results.glob("*.json"))) == 10
