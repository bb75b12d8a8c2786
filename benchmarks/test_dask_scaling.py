"""P5 (issue 7): Dask executor throughput, 2 workers x 1 thread vs 1 worker x 1 thread.

A CPU-bound grid of 48 runs (synthetic vectors, 2,000 samples; early fusion, 40 epochs:
~0.5 s per run on one thread) runs through ``run_suite_dask`` on a LocalCluster of one
worker, then of two, both measured in this one test so they share the machine's state.
Each cluster is started and its workers warmed (torch and mmbench imported) before the
clock starts: what is measured is the grid's throughput, which is what a long grid sees,
not the seconds of worker start-up. Ratio = runs/s with 2 workers / runs/s with 1.

Run: python -m pytest benchmarks/test_dask_scaling.py --benchmark-only -o addopts="" -s
"""

import io
import os
import time
from pathlib import Path

import pytest
from rich.console import Console

distributed = pytest.importorskip("distributed")

SEEDS = 24
TARGET = 1.7  # issue 7, on 2 idle cores
#: asserted with room for a shared, busy 2-core machine; the README records the measurement
ASSERTED = 1.3


def grid_suite(folder: Path) -> Path:
    path = folder / "grid.toml"
    path.write_text(f"""
[suite]
name = "dask_scaling"
seeds = {list(range(SEEDS))}

[train]
epochs = 40

[report]
results = "{folder / 'results'}"

[[datasets]]
name = "synthetic"
n_samples = 2000
dims = [64, 64]

[[fusions]]
name = "early"
hidden = 64

[[fusions]]
name = "early"
label = "early_wide"
hidden = 96
""")
    return path


def _warm() -> int:
    import mmbench.run  # noqa: F401 - imports torch and the pipeline once, before the clock
    return os.getpid()


def throughput(suite, registry, n_workers: int) -> tuple[float, int]:
    """Runs per second of the whole grid on a warmed LocalCluster of ``n_workers`` x 1 thread."""
    import dask

    from mmbench.dask_executor import run_suite_dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        client.run(_warm)
        started = time.perf_counter()
        outcome = run_suite_dask(suite, registry, address=cluster.scheduler_address, rerun=True,
                                 console=Console(file=io.StringIO()))
        wall = time.perf_counter() - started
    assert not outcome.failed, outcome.failed[:3]
    return len(outcome.ok) / wall, len(outcome.ok)


def test_two_workers_vs_one(benchmark, tmp_path, monkeypatch):
    from mmbench.registry import load_registry
    from mmbench.suite import load_suite

    monkeypatch.setenv("MMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry = load_registry()
    suite = load_suite(grid_suite(tmp_path), registry)
    assert len(suite.runs()) == 2 * SEEDS >= 40

    one, runs = throughput(suite, registry, 1)

    def two_workers():
        return throughput(suite, registry, 2)

    two, runs_two = benchmark.pedantic(two_workers, rounds=1, iterations=1)
    assert runs == runs_two == 2 * SEEDS
    ratio = two / one
    benchmark.extra_info.update(runs=runs, one_worker_runs_per_s=round(one, 3), two_workers_runs_per_s=round(two, 3),
                                ratio=round(ratio, 2), load_average=os.getloadavg()[0])
    print(f"\nP5 dask scaling: {runs} runs; 1 worker x 1 thread {one:.2f} runs/s, 2 workers x 1 thread "
          f"{two:.2f} runs/s: {ratio:.2f}x (target >= {TARGET}x; load average {os.getloadavg()[0]:.1f})")
    assert ratio >= ASSERTED
