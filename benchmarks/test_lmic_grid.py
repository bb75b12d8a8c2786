"""Issue 6: Restrepo et al.'s whole grid (Tables 1-3) on ready embeddings, 2 cores, one seed.

3 datasets at their real sizes (BRSET 16,266 samples binary and ~20% positive; HAM10000
10,015 samples, 7 imbalanced classes; SatelliteBench 1,248 samples binary) x 2 embedding
shapes (DINOv2-base 768-d image + LLaMA-2-7B 4,096-d text; CLIP ViT-B/32 512 + 512) x
{early, late_joint} with Restrepo et al.'s protocol (AdamW lr 1e-3, batch 64, 30 epochs) = 12 runs
through `mmbench run --workers 2`. The vectors come from the ``synthetic`` dataset (generated
in the run, no extraction), so what is timed is what follows extraction in the paper: split,
training, inference, metrics, result files. Target: the whole grid in <= 60 s.

Beside the wall time the benchmark reports how much of it the runs spent training and
predicting (their own ``train_s_total`` and inference time, from the result files): the
rest is the harness (process start, imports, data generation, split, metrics, files).

Run: python -m pytest benchmarks/test_lmic_grid.py --benchmark-only -o addopts="" -s
"""

import json
import time
from pathlib import Path

from mmbench.cli import main

TARGET_S = 60.0
#: asserted: wall <= this x the runs' own training + inference per worker, a ratio measured
#: in one run (load slows both sides); serial workers would give >= 2 plus the harness's share.
#: A wall-clock bound (120 s) failed on a loaded CI machine while the code was unchanged.
ASSERTED_RATIO = 2.2
SHAPES = {"dinov2_llama2": [768, 4096], "clip_vit_b32": [512, 512]}
DATASETS = {
    "brset": 'n_samples = 16266\ntask = "binary"\nimbalance = 4.0',
    "ham10000": 'n_samples = 10015\ntask = "multiclass"\nn_classes = 7\nimbalance = 10.0',
    "satellitebench": 'n_samples = 1248\ntask = "binary"',
}


def grid_suite(folder: Path) -> Path:
    datasets = "".join(f"""
[[datasets]]
name = "synthetic"
label = "{dataset}_{shape}"
{settings}
dims = {dims}
signal = [0.05, 0.05]
""" for dataset, settings in DATASETS.items() for shape, dims in SHAPES.items())
    path = folder / "lmic_grid.toml"
    path.write_text(f"""
[suite]
name = "lmic_grid"
seeds = [0]

[split]
val = 0.1
test = 0.2

[report]
results = "{folder / 'results'}"
output = "{folder / 'leaderboard'}"
columns = ["f1", "best_epoch", "train_s_total"]
{datasets}
[[fusions]]
name = "early"

[[fusions]]
name = "late_joint"
""")
    return path


def test_lmic_shaped_grid_on_two_cores(benchmark, tmp_path):
    suite = grid_suite(tmp_path)

    def run_grid():
        return main(["run", str(suite), "--workers", "2", "--rerun"])

    started = time.perf_counter()
    code = benchmark.pedantic(run_grid, rounds=1, iterations=1)
    wall = time.perf_counter() - started
    assert code == 0

    results = [json.loads(p.read_text()) for p in (tmp_path / "results" / "lmic_grid").glob("*.json")]
    assert len(results) == len(DATASETS) * len(SHAPES) * 2
    assert all(r["metrics"]["best_epoch"] <= 30 for r in results)
    model_s = sum(r["metrics"]["train_s_total"] + r["metrics"]["infer_s_test_pass"] for r in results)
    benchmark.extra_info.update(runs=len(results), wall_s=round(wall, 1), model_s=round(model_s, 1))
    ratio = wall / (model_s / 2)
    print(f"\nlmic_cpu-shaped grid: {len(results)} runs in {wall:.1f} s wall on 2 workers (target <= "
          f"{TARGET_S:.0f} s); the runs' own training + inference: {model_s:.1f} s in all "
          f"({model_s / 2:.1f} s per worker); wall / per-worker time {ratio:.2f} (asserted <= {ASSERTED_RATIO})")
    assert ratio <= ASSERTED_RATIO
