"""The embedding store (measurements, not timed tests): seeds no longer multiply extraction,
and gathering a split's rows from a large store is fast and memory-bounded.

Run: python -m pytest benchmarks/test_store.py --benchmark-only -o addopts="" -s
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import fixtures_ham10000 as fx  # noqa: E402

#: images per lesion cycle 1..3 as in the real table: 7 classes x 360 lesions x 2 = 5,040
LESIONS_PER_CLASS = 360
#: a quarter of HAM10000's 600 x 450 pixels, to keep CI's time down
IMAGE_SIZE = (300, 225)

SUITE = """
[suite]
name = "{name}"
seeds = {seeds}
threads = 1

[[datasets]]
name = "ham10000"
root = "{root}"
tabular_columns = []

[[encoders]]
image = "color_histogram"

[[fusions]]
name = "unimodal"
modality = "image"
train = {{ epochs = 10 }}
"""


def _ham10000_like(root: Path) -> int:
    """The real csv layout (metadata + two image folders) with noisy JPEGs whose colour
    follows the class; returns the number of images."""
    from PIL import Image

    rows = fx.rows(LESIONS_PER_CLASS)
    fx.write_metadata(root / "HAM10000_metadata.csv", rows)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 60, (IMAGE_SIZE[1] + 64, IMAGE_SIZE[0] + 64, 3), dtype=np.uint8)
    for i, row in enumerate(rows):
        folder = root / ("HAM10000_images_part_1" if i < len(rows) // 2 else "HAM10000_images_part_2")
        folder.mkdir(parents=True, exist_ok=True)
        shade = fx.CLASSES.index(row["dx"])
        dx, dy = i % 64, (i // 64) % 64
        pixels = noise[dy:dy + IMAGE_SIZE[1], dx:dx + IMAGE_SIZE[0]] + np.array([25 * shade, 120, 80], np.uint8)
        Image.fromarray(pixels).save(folder / f"{row['image_id']}.jpg", quality=85)
    return len(rows)


def _run_suite(tmp_path: Path, root: Path, seeds: list[int]) -> tuple[float, list[dict]]:
    """`mmbench run` of the suite with ``seeds`` against an empty cache: wall seconds and
    the result records."""
    name = f"seeds{len(seeds)}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "suite.toml").write_text(SUITE.format(name=name, seeds=seeds, root=root))
    env = {**__import__("os").environ, "MMBENCH_CACHE": str(folder / "cache")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mmbench", "run", "suite.toml"], cwd=folder, env=env, check=True,
                   capture_output=True)
    wall = time.perf_counter() - started
    return wall, [json.loads(p.read_text()) for p in sorted((folder / "results" / name).glob("*.json"))]


def test_three_seeds_extract_once(benchmark, tmp_path):
    root = tmp_path / "ham10000"
    n_images = _ham10000_like(root)
    assert n_images >= 5000

    def measure():
        one, _ = _run_suite(tmp_path / "a", root, [0])
        three, results = _run_suite(tmp_path / "b", root, [0, 1, 2])
        return one, three, results

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, three, results = benchmark.pedantic(measure, rounds=1, iterations=1)
    assert [r["status"] for r in results] == ["ok"] * 3
    encoded = sum(r["extraction"]["image"]["rows_encoded"] for r in results)
    calls_per_sample = encoded / n_images
    benchmark.extra_info.update(one_seed_s=round(one, 1), three_seeds_s=round(three, 1),
                                ratio=round(three / one, 2), encoder_calls_per_sample=calls_per_sample)
    print(f"\nembedding store: {n_images} JPEGs {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, color_histogram + unimodal: "
          f"1-seed suite {one:.1f} s, 3-seed suite {three:.1f} s, ratio {three / one:.2f}; "
          f"encoder calls per sample across the 3 seeds: {calls_per_sample:.2f}")
    assert calls_per_sample == 1.0


GATHER = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    from mmbench.cache import EmbeddingCache
    cache, key, n = EmbeddingCache(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    ids = np.array([f"s{i}" for i in range(n)])
    split = np.random.default_rng(0).permutation(n)[: int(0.7 * n)]  # a 70% train split
    small = split[: n // 10]  # a tenth of the store
    page = resource.getpagesize() / 2**20
    rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page  # resident now, MiB
    out = {}
    before = rss()
    started, cpu = time.perf_counter(), time.process_time()
    rows = cache.gather(key, ids[small])
    out["small_cold_s"], out["small_cold_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
    assert rows.found.all()
    out["small_rss_growth_mb"] = rss() - before
    out["small_rows_mb"] = rows.encoded.vectors.nbytes / 2**20
    del rows
    started, cpu = time.perf_counter(), time.process_time()
    rows = cache.gather(key, ids[split])
    out["split_warm_s"], out["split_warm_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
    del rows
    started, cpu = time.perf_counter(), time.process_time()
    rows = cache.gather(key, ids)
    out["all_warm_s"], out["all_warm_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps(out))
""")


def test_gather_from_a_100k_by_512_store(benchmark, tmp_path):
    """A store of 100,000 x 512 float32 in 10 chunks (10 appends); each measurement in a
    fresh process: the first gather verifies the chunks' checksums (reading every chunk
    once), later gathers in the process do not re-hash unchanged files."""
    from mmbench.cache import EmbeddingCache, store_key
    from mmbench.data import Encoded

    n, dim = 100_000, 512
    cache = EmbeddingCache(tmp_path / "cache")
    key = store_key(dataset={"name": "bench"}, modality="image", encoder={"name": "bench"})
    rng = np.random.default_rng(0)
    for first in range(0, n, 10_000):
        ids = np.array([f"s{i}" for i in range(first, first + 10_000)])
        cache.append(key, ids, Encoded(rng.standard_normal((10_000, dim), dtype=np.float32)), 0.01, {})

    def gather():
        done = subprocess.run([sys.executable, "-c", GATHER, str(tmp_path / "cache"), key, str(n)],
                              check=True, capture_output=True, text=True)
        return json.loads(done.stdout)

    out = benchmark.pedantic(gather, rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, 3) for k, v in out.items()})
    print(f"\nstore gather, {n:,} x {dim} float32 in 10 chunks (fresh process): a 10% split "
          f"{out['small_cold_s']:.2f} s cold (verifies every chunk's checksum), RSS +{out['small_rss_growth_mb']:.0f} "
          f"MiB for {out['small_rows_mb']:.0f} MiB of rows; then a 70% split {out['split_warm_s']:.2f} s, "
          f"all 100,000 rows {out['all_warm_s']:.2f} s (process CPU seconds: {out['small_cold_cpu_s']:.2f}, "
          f"{out['split_warm_cpu_s']:.2f}, {out['all_warm_cpu_s']:.2f})")
