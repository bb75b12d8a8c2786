"""Records how much faster a cached extraction is than the first one (a measurement, not a
timed test): ``run.encode_splits`` on 1,500 texts with a deliberately slow, deterministic
encoder (real numpy work per item), first with an empty cache, then as cache hits.

Run: python -m pytest benchmarks/test_cache.py --benchmark-only -o addopts="" -s
"""

import shutil
import time
from types import SimpleNamespace

import numpy as np

from mmbench.data import DatasetTable
from mmbench.plugin import Encoder
from mmbench.run import encode_splits
from mmbench.splits import split_indices
from mmbench.suite import PluginConfig

N_SAMPLES, DIM, ROUNDS = 1500, 512, 16


class SlowHash(Encoder):
    """A character histogram pushed through ROUNDS seeded tanh layers, one item at a time:
    about a millisecond per item, like a small model, and the same vectors every time."""

    name = "slow_hash"

    def fit(self, modality, items):
        rng = np.random.default_rng(0)
        self.layers = [rng.standard_normal((DIM, DIM)).astype(np.float32) / np.sqrt(DIM) for _ in range(ROUNDS)]

    def encode(self, modality, items):
        out = np.empty((len(items), DIM), dtype=np.float32)
        for i, text in enumerate(items):
            x = np.bincount(np.frombuffer(text.encode(), dtype=np.uint8), minlength=DIM)[:DIM].astype(np.float32)
            for layer in self.layers:
                x = np.tanh(layer @ x)
            out[i] = x
        return out


class Registry:
    def get(self, kind, name):
        return SimpleNamespace(cls=SlowHash)


def _parts():
    rng = np.random.default_rng(0)
    words = np.array(["cat", "dog", "lesion", "benign", "malignant", "scan", "report", "left", "right"])
    texts = [" ".join(rng.choice(words, 30)) for _ in range(N_SAMPLES)]
    table = DatasetTable(ids=np.arange(N_SAMPLES), labels=rng.integers(0, 2, N_SAMPLES), task="binary",
                         classes=("a", "b"), modalities={"text": texts})
    return {name: table.subset(rows) for name, rows in split_indices(table, 0.2, 0.2, 0).items()}


def test_cache_hit_vs_first_extraction(benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_CACHE", str(tmp_path / "cache"))
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    parts = _parts()
    encoders = {"text": PluginConfig(kind="encoder", name="slow_hash", version="1", params={}, label="slow_hash")}
    dataset = {"name": "bench", "version": "1", "params": {}, "fingerprint": "bench"}

    def extract():
        return encode_splits(parts, encoders, Registry(), dataset)

    started = time.perf_counter()
    first, _, _, record = extract()
    first_s = time.perf_counter() - started
    assert record["text"]["cached"] is False

    hit = benchmark.pedantic(extract, rounds=10, iterations=1, warmup_rounds=1)
    assert hit[3]["text"]["cached"] is True
    for name in first:
        np.testing.assert_array_equal(hit[0][name]["text"], first[name]["text"])
    hit_s = benchmark.stats.stats.median
    ratio = first_s / hit_s
    benchmark.extra_info.update(first_s=round(first_s, 3), hit_s=round(hit_s, 5), ratio=round(ratio, 1))
    print(f"\nembedding cache: first extraction {first_s:.2f} s, cache hit {hit_s * 1000:.1f} ms "
          f"(median of 10), {ratio:.0f}x faster ({N_SAMPLES} samples x {DIM} dims)")
