"""Records the quickstart's wall time and peak RSS (a measurement, not a timed test).

Run: python -m pytest benchmarks --benchmark-only -o addopts=""
"""

import resource
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_wall_time_and_peak_rss(benchmark, tmp_path):
    command = [sys.executable, "-m", "mmbench", "run", str(ROOT / "suites" / "quickstart.toml"),
               "--results", str(tmp_path / "results"), "--output", str(tmp_path / "leaderboard")]

    def run_quickstart():
        subprocess.run(command, check=True, capture_output=True, cwd=tmp_path)

    benchmark.pedantic(run_quickstart, rounds=1, iterations=1, setup=lambda: _clear(tmp_path))
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    benchmark.extra_info["peak_rss_mb"] = round(peak_mb)
    print(f"\nquickstart: {benchmark.stats.stats.mean:.1f} s wall, peak RSS {peak_mb:.0f} MiB")
    assert (tmp_path / "leaderboard" / "quickstart.md").is_file()


def _clear(tmp_path: Path) -> None:
    for folder in ("results", "leaderboard"):
        shutil.rmtree(tmp_path / folder, ignore_errors=True)
