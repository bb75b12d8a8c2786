"""Issue 16 item 3: rebuilding a big suite's leaderboard costs what changed.

Generates ``MMBENCH_BENCH_RUNS`` result files (default 1,200; the issue's sizes are 3,000 and
30,000) for a suite of 2 datasets x gap_shift lambdas x 3 fusions x 5 seeds, each a real
quickstart-shaped result (per-epoch history included) with a binary test-predictions file of
300 samples, then times ``leaderboard.build``: cold (no index: every JSON parsed, every run
bootstrapped with 1,000 resamples), warm (the index beside the results is valid: nothing is
re-read), and after one result changed. Peak RSS of the process is printed too.

Run: MMBENCH_BENCH_RUNS=3000 python -m pytest benchmarks/test_leaderboard_scale.py \
         --benchmark-only -o addopts="" -s
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mmbench import leaderboard
from mmbench.registry import load_registry
from mmbench.results import write_predictions
from mmbench.suite import load_suite

RUNS = int(os.environ.get("MMBENCH_BENCH_RUNS", "1200"))
SEEDS, FUSIONS, DATASETS = 5, ("early", "late_joint", "linear_probe"), 2


def make_suite(root: Path, runs: int) -> Path:
    lambdas = max(1, runs // (SEEDS * len(FUSIONS) * DATASETS))
    sweep = ", ".join(repr(i / lambdas) for i in range(lambdas))
    fusions = "".join(f'[[fusions]]\nname = "{f}"\n' for f in FUSIONS)
    datasets = "".join(f'[[datasets]]\nname = "synthetic"\nlabel = "d{i}"\nseed = {i}\n' for i in range(DATASETS))
    path = root / "big.toml"
    path.write_text(f'[suite]\nname = "big"\nseeds = {list(range(SEEDS))}\n{datasets}'
                    f'[[alignments]]\nname = "gap_shift"\nlambda = [{sweep}]\n{fusions}'
                    f'[report]\nprimary = "auroc"\nresults = "{root}/results"\noutput = "{root}/leaderboard"\n')
    return path


def write_results(suite) -> None:
    rng = np.random.default_rng(0)
    folder = suite.results_dir
    folder.mkdir(parents=True, exist_ok=True)
    history = [{"epoch": e, "train_loss": 0.5, "val_loss": 0.5, "val_auroc": 0.8} for e in range(100)]
    labels = (np.arange(300) % 3 == 0).astype(int)
    for spec in suite.runs():
        proba = np.clip(labels * 0.3 + rng.random(300) * 0.7, 0, 1)
        write_predictions(folder, spec.run_id, [f"s{spec.seed}-{i}" for i in range(300)], labels, proba)
        record = {"schema_version": 1, "run_id": spec.run_id, "suite": "big", "status": "ok", "error": None,
                  "labels": spec.labels(), "spec": {"seed": spec.seed}, "data": {"task": "binary"},
                  "metrics": {"auroc": float(rng.random()), "f1": 0.5, "accuracy": 0.7, "best_epoch": 10,
                              "train_s_per_epoch": 0.01, "infer_s_per_sample": 1e-6, "model_mb": 0.1,
                              "peak_rss_mb": 800.0},
                  "environment": {"machine_id": "bench"}, "history": history,
                  "predictions": f"{spec.run_id}.test.npz"}
        (folder / f"{spec.run_id}.json").write_text(json.dumps(record, indent=2))


#: the CLI, then its own peak resident memory (Linux). Not getrusage(RUSAGE_CHILDREN): a
#: child forked from this process starts with this process's high-water mark, which Linux
#: carries across exec; VmHWM belongs to the exec'd program's memory alone.
COMMAND_WITH_PEAK = (
    "import sys\nfrom mmbench.cli import main\ncode = main(sys.argv[1:])\n"
    "print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM')), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def timed(suite) -> tuple[float, str]:
    start = time.perf_counter()
    board, _ = leaderboard.build(suite)
    return time.perf_counter() - start, json.dumps(board.to_dict(), sort_keys=True)


def test_leaderboard_rebuild_scales_with_what_changed(benchmark, tmp_path):
    suite = load_suite(make_suite(tmp_path, RUNS), load_registry())
    write_results(suite)
    runs = len(suite.runs())
    cold, first = timed(suite)
    warm, again = benchmark.pedantic(lambda: timed(suite), rounds=3, iterations=1)
    one = sorted(suite.results_dir.glob("*.json"))[0]
    os.utime(one, ns=(one.stat().st_atime_ns, one.stat().st_mtime_ns + 1_000_000))
    changed, third = timed(suite)
    # what a user waits for: `mmbench leaderboard` in a fresh process (imports, build, every
    # reporter's files), its peak memory measured alone
    start = time.perf_counter()
    cli = subprocess.run([sys.executable, "-c", COMMAND_WITH_PEAK, "leaderboard", str(suite.path)],
                         capture_output=True, text=True, timeout=3600)
    command_s = time.perf_counter() - start
    assert cli.returncode == 0, cli.stderr[-2000:]
    command_peak = int(cli.stderr.rsplit("VmHWM:", 1)[1].split()[0]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{runs} runs: leaderboard.build cold {cold:.2f} s, warm {warm:.2f} s, one result changed "
          f"{changed:.2f} s, cold/warm {cold / warm:.1f}x, peak RSS of this process {peak:.0f} MiB; "
          f"`mmbench leaderboard` (warm index, fresh process, every reporter) {command_s:.2f} s, "
          f"peak RSS {command_peak:.0f} MiB")
    assert first == again == third  # the index changes no number
