"""The sample store's faults: a writer killed during an append, two appenders at once, a
corrupt chunk, a cache mounted read-only; and an end-to-end re-run after a kill -9."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from mmbench.cache import CacheWarning, EmbeddingCache, store_key
from mmbench.data import Encoded, TokenSequence

KEY = store_key(dataset={"name": "d", "fingerprint": "f"}, modality="text", encoder={"name": "e"})
META = {"modality": "text", "encoder": {"name": "e"}}


def fresh(ids) -> Encoded:
    """What the encoder gives for ``ids``: a function of the id alone, with tokens."""
    numbers = np.array([int(i[1:]) for i in ids], dtype=np.float32)
    vectors = np.stack([numbers, numbers * 2, np.sqrt(numbers)], axis=1)
    values = np.repeat(vectors[:, None, :2], 4, axis=1)
    mask = np.arange(4)[None, :] < (1 + numbers % 4)[:, None]
    return Encoded(vectors, TokenSequence(values, mask))


def ids(start: int, stop: int) -> np.ndarray:
    return np.array([f"s{i}" for i in range(start, stop)])


def assert_rows(rows, asked) -> None:
    expected = fresh(asked)
    np.testing.assert_array_equal(rows.encoded.vectors, expected.vectors)
    np.testing.assert_array_equal(rows.encoded.tokens.values * rows.encoded.tokens.mask[..., None],
                                  expected.tokens.values * expected.tokens.mask[..., None])
    np.testing.assert_array_equal(rows.encoded.tokens.mask, expected.tokens.mask)


def strict_gather(cache: EmbeddingCache, asked):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a readable store warns about nothing
        return cache.gather(KEY, asked)


def test_gather_returns_the_rows_asked_in_their_order_and_says_which_are_missing(tmp_path):
    cache = EmbeddingCache(tmp_path)
    assert cache.append(KEY, ids(0, 50), fresh(ids(0, 50)), 0.5, META)
    assert cache.append(KEY, ids(30, 80), fresh(ids(30, 80)), 0.25, META)  # 30..49 held: only 50..79 added
    manifest = json.loads((cache.path(KEY) / "manifest.json").read_text())
    assert [c["n"] for c in manifest["chunks"]] == [50, 30] and manifest["shape"] == [80, 3]

    asked = np.array(["s70", "s3", "s99", "s49", "s50"])
    rows = strict_gather(cache, asked)
    assert rows.found.tolist() == [True, True, False, True, True]
    assert_rows(rows, asked[rows.found])
    assert rows.s_per_sample.tolist() == [0.25, 0.5, 0.5, 0.25]  # the cost measured for each row


def _append_then_die(root: str, at: str) -> None:
    """Append s50..s99 and SIGKILL this process at ``at``: after the chunk's first file is
    half written, or after all its files and before the manifest is replaced."""
    import mmbench.cache as cache_module

    def write_bytes(path, data):
        if at == "chunk" and path.name.endswith(".vectors.npy"):
            with open(path.parent / f".{path.name}.half.tmp", "wb") as handle:
                handle.write(data[: len(data) // 2])
            os.kill(os.getpid(), 9)
        return write_bytes_atomic(path, data)

    def write_text(path, text):
        if at == "manifest":
            os.kill(os.getpid(), 9)
        return write_text_atomic(path, text)

    write_bytes_atomic, write_text_atomic = cache_module.write_bytes_atomic, cache_module.write_text_atomic
    cache_module.write_bytes_atomic, cache_module.write_text_atomic = write_bytes, write_text
    EmbeddingCache(Path(root)).append(KEY, ids(50, 100), fresh(ids(50, 100)), 0.1, META)


@pytest.mark.parametrize("at", ["chunk", "manifest"])
def test_a_writer_killed_during_an_append_leaves_the_previous_state_readable(tmp_path, at):
    cache = EmbeddingCache(tmp_path)
    assert cache.append(KEY, ids(0, 50), fresh(ids(0, 50)), 0.5, META)
    writer = multiprocessing.get_context("spawn").Process(target=_append_then_die, args=(str(tmp_path), at))
    writer.start()
    writer.join(300)
    assert writer.exitcode == -9
    debris = len(list(cache.path(KEY).iterdir()))
    assert debris > 3  # the killed append's files are there

    rows = strict_gather(cache, ids(0, 100))
    assert rows.found.tolist() == [True] * 50 + [False] * 50  # the state before the append
    assert_rows(rows, ids(0, 50))

    assert cache.append(KEY, ids(50, 100), fresh(ids(50, 100)), 0.1, META)  # the re-run's append
    rows = strict_gather(cache, ids(0, 100))
    assert rows.found.all()
    assert_rows(rows, ids(0, 100))
    manifest = json.loads((cache.path(KEY) / "manifest.json").read_text())
    listed = {f"{c['name']}.{a}.npy" for c in manifest["chunks"] for a in c["files"]}
    assert {p.name for p in cache.path(KEY).iterdir()} == listed | {"manifest.json"}  # debris removed


def _append_many(root: str, start: int) -> None:
    cache = EmbeddingCache(Path(root))
    for first in range(start, start + 400, 20):  # 20 appends of 20 new ids, interleaved with the other
        assert cache.append(KEY, ids(first, first + 20), fresh(ids(first, first + 20)), 0.01, META)


def test_two_processes_appending_different_ids_end_with_the_union(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(tmp_path), start)) for start in (0, 400)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(300)
        assert writer.exitcode == 0
    rows = strict_gather(EmbeddingCache(tmp_path), ids(0, 800))
    assert rows.found.all()
    assert_rows(rows, ids(0, 800))  # each row equal to a fresh encode
    manifest = json.loads((EmbeddingCache(tmp_path).path(KEY) / "manifest.json").read_text())
    assert len(manifest["chunks"]) == 40 and manifest["shape"] == [800, 3]


@pytest.mark.parametrize("how", ["flip bytes", "truncate", "delete", "bad ids"])
def test_a_corrupt_chunk_is_reported_dropped_and_its_rows_recomputed(tmp_path, how):
    cache = EmbeddingCache(tmp_path)
    cache.append(KEY, ids(0, 50), fresh(ids(0, 50)), 0.5, META)
    cache.append(KEY, ids(50, 100), fresh(ids(50, 100)), 0.5, META)
    chunk = json.loads((cache.path(KEY) / "manifest.json").read_text())["chunks"][1]["name"]
    target = cache.path(KEY) / f"{chunk}.{'ids' if how == 'bad ids' else 'vectors'}.npy"
    data = bytearray(target.read_bytes())
    if how == "delete":
        target.unlink()
    else:
        data[-3] ^= 0xFF
        target.write_bytes(bytes(data[: len(data) // 2]) if how == "truncate" else bytes(data))

    with pytest.warns(CacheWarning, match=f"chunk {chunk} of embedding store {KEY}.*corrupt.*recomputing its rows"):
        rows = cache.gather(KEY, ids(0, 100))
    assert rows.found.tolist() == [True] * 50 + [False] * 50
    assert_rows(rows, ids(0, 50))
    assert not any(p.name.startswith(chunk) for p in cache.path(KEY).iterdir())  # dropped from the store

    cache.append(KEY, ids(50, 100), fresh(ids(50, 100)), 0.5, META)  # recomputed by the caller
    assert_rows(strict_gather(cache, ids(0, 100)), ids(0, 100))


def test_a_corrupt_manifest_drops_the_store_with_a_warning(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.append(KEY, ids(0, 50), fresh(ids(0, 50)), 0.5, META)
    (cache.path(KEY) / "manifest.json").write_text("{not json")
    with pytest.warns(CacheWarning, match=f"embedding store {KEY}.*corrupt"):
        rows = cache.gather(KEY, ids(0, 50))
    assert not rows.found.any()
    assert cache.append(KEY, ids(0, 50), fresh(ids(0, 50)), 0.5, META)
    assert_rows(strict_gather(cache, ids(0, 50)), ids(0, 50))


def test_a_read_only_cache_is_read_without_the_lock(tmp_path, monkeypatch):
    """A shared cache mounted read-only: opening a lock file for writing fails (EROFS);
    reads still hit, writes are a warning (root ignores file modes, so the mount's refusal
    is simulated where it happens)."""
    from mmbench.cache import entry_key

    cache = EmbeddingCache(tmp_path)
    cache.append(KEY, ids(0, 50), fresh(ids(0, 50)), 0.5, META)
    split_key = entry_key(dataset={"name": "d"}, ids=ids(0, 50), modality="text", encoder={"name": "e"})
    cache.put(split_key, fresh(ids(0, 50)), 0.5, META)
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert_rows(strict_gather(cache, ids(0, 50)), ids(0, 50))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hit = cache.get(split_key)
    assert hit is not None
    np.testing.assert_array_equal(hit.encoded.vectors, fresh(ids(0, 50)).vectors)
    with pytest.warns(CacheWarning, match="could not append"):
        assert not cache.append(KEY, ids(50, 60), fresh(ids(50, 60)), 0.5, META)


SUITE = """
[suite]
name = "store"
seeds = [0, 1]
threads = 1
[[datasets]]
name = "synthetic_raw"
n_samples = 120
image_size = 16
[[encoders]]
image = "color_histogram"
text = { name = "tfidf_svd", n_components = 8 }
tabular = "tabular"
[[fusions]]
name = "linear_probe"
train = { epochs = 3 }
"""

#: runs `mmbench run` and SIGKILLs itself when the store's first manifest is written
KILLED_RUN = textwrap.dedent("""
    import os, sys
    import mmbench.cache as cache_module
    write = cache_module.write_text_atomic
    def die_on_the_store_manifest(path, text):
        if '"layout": "samples"' in text:
            os.kill(os.getpid(), 9)
        return write(path, text)
    cache_module.write_text_atomic = die_on_the_store_manifest
    from mmbench.cli import main
    sys.exit(main(["run", "store.toml"]))
""")


def _metrics(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text())["metrics"] for p in sorted(folder.glob("*.json"))}


@pytest.mark.slow
def test_a_run_killed_during_its_append_reruns_to_identical_metrics(tmp_path):
    env = {**os.environ, "MMBENCH_CACHE": str(tmp_path / "cache")}
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    for folder in (killed, clean):
        folder.mkdir()
        (folder / "store.toml").write_text(SUITE)
    dead = subprocess.run([sys.executable, "-c", KILLED_RUN], cwd=killed, env=env, capture_output=True, timeout=300)
    assert dead.returncode == -9
    stores = [p for p in (tmp_path / "cache" / "embeddings").iterdir() if not (p / "manifest.json").exists()]
    assert stores and any(p.suffix == ".npy" for s in stores for p in s.iterdir())  # chunks without a manifest

    command = [sys.executable, "-m", "mmbench", "run", "store.toml"]
    again = subprocess.run(command, cwd=killed, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "corrupt" not in again.stderr
    uninterrupted = subprocess.run(command, cwd=clean, capture_output=True, text=True, timeout=300,
                                   env={**env, "MMBENCH_CACHE": str(tmp_path / "other-cache")})
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    quality = ("auroc", "accuracy", "f1")
    rerun, reference = _metrics(killed / "results" / "store"), _metrics(clean / "results" / "store")
    assert len(rerun) == 2 and rerun.keys() == reference.keys()
    for name in rerun:
        assert {k: rerun[name][k] for k in quality} == {k: reference[name][k] for k in quality}
