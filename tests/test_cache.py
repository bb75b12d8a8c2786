"""The embedding cache: hits, misses on every key part, corrupt entries, tokens, location,
concurrent writers, ``mmbench cache`` and the extraction record of a run. The sample
store's own faults (kill -9, concurrent appenders, corrupt chunks) are in test_store.py."""

from __future__ import annotations

import json
import multiprocessing
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

from mmbench.cache import FORMAT_VERSION, CacheWarning, EmbeddingCache, cache_root, entry_key, store_key
from mmbench.params import Param
from mmbench.cli import main
from mmbench.data import DatasetTable, Encoded, TokenSequence
from mmbench.plugin import Encoder
from mmbench.run import encode_splits
from mmbench.splits import split_indices
from mmbench.suite import PluginConfig

DATASET = {"name": "words", "version": "1", "params": {"n": 60}, "fingerprint": "abc"}


class Counting(Encoder):
    """(length, vowels, scale) per text; counts its fit and encode calls."""

    name = "counting"
    parameters = (Param("scale", float, 1.0, "multiplies the length column"),)
    calls: ClassVar[list[tuple[str, str, int]]] = []

    def fit(self, modality, items):
        Counting.calls.append(("fit", modality, len(items)))
        self.scale = self.params["scale"]

    def encode(self, modality, items):
        Counting.calls.append(("encode", modality, len(items)))
        return np.array([[len(t) * self.scale, sum(c in "aeiou" for c in t), 1.0] for t in items])


class FittedCounting(Counting):
    """Vectors depend on the train split: divided by the longest train text."""

    name = "fitted_counting"
    fitted = True

    def fit(self, modality, items):
        super().fit(modality, items)
        self.longest = max(len(t) for t in items)

    def encode(self, modality, items):
        return super().encode(modality, items) / self.longest


class WithTokens(Counting):
    """Also returns one token vector per character (up to 5), masked beyond the text."""

    name = "with_tokens"

    def encode(self, modality, items):
        vectors = super().encode(modality, items)
        values = np.zeros((len(items), 5, 2), dtype=np.float32)
        mask = np.zeros((len(items), 5), dtype=bool)
        for i, text in enumerate(items):
            for j, char in enumerate(text[:5]):
                values[i, j] = (ord(char), j)
                mask[i, j] = True
        return Encoded(vectors, TokenSequence(values, mask))


class Registry:
    classes: ClassVar[dict[str, type]] = {cls.name: cls for cls in (Counting, FittedCounting, WithTokens)}

    def get(self, kind, name):
        return SimpleNamespace(cls=self.classes[name])


@pytest.fixture(autouse=True)
def _reset_calls():
    Counting.calls.clear()


def table(n: int = 60, modality: str = "text") -> DatasetTable:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    texts = [" ".join(["word"] * int(k)) + ("aeiou" if y else "") for k, y in zip(rng.integers(1, 9, n), labels)]
    return DatasetTable(ids=[f"s{i}" for i in range(n)], labels=labels, task="binary", classes=("a", "b"),
                        modalities={modality: texts})


def parts(seed: int = 0, data: DatasetTable | None = None) -> dict[str, DatasetTable]:
    data = data or table()
    return {name: data.subset(rows) for name, rows in split_indices(data, 0.2, 0.2, seed).items()}


def config(name: str = "counting", **params) -> PluginConfig:
    return PluginConfig(kind="encoder", name=name, version="1", params=params, label=name)


def extract(split=None, encoder=None, dataset=None, modality="text"):
    split = split or parts()
    encoder = encoder or config()
    return encode_splits(split, {modality: encoder}, Registry(), dataset or DATASET)


def encodes() -> int:
    return sum(call[0] == "encode" for call in Counting.calls)


def entry_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "embeddings").rglob("*") if p.is_file())


def encoded_items() -> int:
    return sum(call[2] for call in Counting.calls if call[0] == "encode")


def test_second_extraction_is_a_hit_and_does_not_encode(_private_embedding_cache):
    features, _, extract_s, record = extract()
    assert encodes() == 3 and extract_s > 0  # split by split, as without a store
    assert record["text"]["cached"] is False and record["text"]["s_per_sample"] > 0
    assert record["text"]["layout"] == "samples" and record["text"]["rows_encoded"] == 60
    assert len(list((_private_embedding_cache / "embeddings").iterdir())) == 1  # one store for every split

    Counting.calls.clear()
    again, _, extract_again, record_again = extract()
    assert Counting.calls == []  # neither fitted nor encoded
    assert extract_again == 0.0
    assert record_again["text"]["cached"] is True and record_again["text"]["rows_cached"] == 60
    assert record_again["text"]["s_per_sample"] == pytest.approx(record["text"]["s_per_sample"])
    assert all(s["cached"] for s in record_again["text"]["splits"].values())
    for name in features:
        np.testing.assert_array_equal(again[name]["text"], features[name]["text"])
        assert again[name]["text"].dtype == np.float32


def test_every_seed_after_the_first_encodes_nothing_and_gets_the_rows_a_fresh_encode_gives():
    fresh = {seed: extract(split=parts(seed=seed), dataset={**DATASET, "params": {"n": 60, "alone": seed}})[0]
             for seed in (0, 1, 2)}  # each seed alone in its own store
    Counting.calls.clear()
    for seed in (0, 1, 2):
        features, _, _, record = extract(split=parts(seed=seed))
        assert record["text"]["cached"] is (seed > 0)
        for name in features:
            np.testing.assert_array_equal(features[name]["text"], fresh[seed][name]["text"])
    assert encoded_items() == 60  # one encoder call per sample across the three seeds


def test_a_grown_dataset_encodes_only_its_new_samples_and_an_edited_one_only_what_changed():
    grown = table(75)
    first = grown.subset(np.arange(60))  # the dataset before 15 samples were added
    extract(split=parts(data=first), dataset={**DATASET, "fingerprint": "60 samples"})
    Counting.calls.clear()

    features, _, _, record = extract(split=parts(seed=1, data=grown), dataset={**DATASET, "fingerprint": "75 samples"})
    assert encoded_items() == 15 and record["text"]["rows_encoded"] == 15 and record["text"]["rows_cached"] == 60

    edited = table(75)
    edited.modalities["text"][3] = "a caption rewritten since"  # sample s3, in the store since the first run
    Counting.calls.clear()
    features, _, _, record = extract(split=parts(seed=1, data=edited), dataset={**DATASET, "fingerprint": "edited"})
    assert encoded_items() == 1 and record["text"]["rows_encoded"] == 1
    # every row is what a fresh encode of the edited dataset gives, the edited one included
    Counting.calls.clear()
    alone = extract(split=parts(seed=1, data=edited), dataset={**DATASET, "params": {"n": 75, "alone": True}})[0]
    for name in features:
        np.testing.assert_array_equal(features[name]["text"], alone[name]["text"])


def test_an_image_rewritten_in_place_is_encoded_again(tmp_path):
    paths = []
    for i in range(20):
        paths.append(str(tmp_path / f"{i}.txt"))
        Path(paths[-1]).write_text("x" * i)
    data = DatasetTable(ids=[f"s{i}" for i in range(20)], labels=np.arange(20) % 2, task="binary",
                        classes=("a", "b"), modalities={"image": paths})
    split = parts(data=data)
    extract(split=split, modality="image")
    Counting.calls.clear()
    extract(split=split, modality="image")
    assert encoded_items() == 0

    rewritten = Path(paths[7])
    rewritten.write_text("y" * 99)  # the same path, a new file
    Counting.calls.clear()
    extract(split=split, modality="image")
    assert encoded_items() == 1


@pytest.mark.parametrize(("change", "encoded"), [
    ("dataset params", 60), ("dataset fingerprint, same items", 0), ("dataset fingerprint, fitted encoder", 60),
    ("encoder params", 60), ("encoder version", 60), ("modality", 60), ("split seed", 0),
    ("split seed, fitted encoder", 60)])
def test_any_changed_key_part_is_a_miss_and_a_new_split_is_not(change, encoded):
    extract(encoder=config("fitted_counting") if "fitted" in change else None)
    Counting.calls.clear()
    if change == "dataset params":
        extract(dataset={**DATASET, "params": {"n": 61}})
    elif change.startswith("dataset fingerprint"):  # a store is addressed by item, not by the fingerprint
        extract(dataset={**DATASET, "fingerprint": "abd"}, encoder=config("fitted_counting") if "fitted" in change else None)
    elif change == "encoder params":
        extract(encoder=config(scale=2.0))
    elif change == "encoder version":
        extract(encoder=PluginConfig(kind="encoder", name="counting", version="2", params={}, label="c"))
    elif change.startswith("split seed"):
        extract(split=parts(seed=1), encoder=config("fitted_counting") if "fitted" in change else None)
    else:
        extract(split=parts(data=table(modality="caption")), modality="caption")
    assert encoded_items() == encoded


def test_a_fitted_encoder_refits_per_train_split_and_a_plain_one_encodes_nothing_new():
    data = table()
    rows = np.arange(len(data))
    same_eval = {"val": data.subset(rows[40:50]), "test": data.subset(rows[50:])}
    first = {"train": data.subset(rows[:40]), **same_eval}
    second = {"train": data.subset(rows[5:40]), **same_eval}

    fitted = config("fitted_counting")
    extract(first, fitted)
    Counting.calls.clear()
    extract(second, fitted)
    assert encodes() == 3  # val and test too: their vectors depend on the train split
    assert [c for c in Counting.calls if c[0] == "fit"] == [("fit", "text", 35)]  # fitted on the new train split

    extract(first, config())
    Counting.calls.clear()
    _, _, _, record = extract(second, config())
    assert Counting.calls == []  # every id is in the store already
    assert {n: s["cached"] for n, s in record["text"]["splits"].items()} == {
        "train": True, "val": True, "test": True}


def test_key_covers_every_part():
    base = {"dataset": DATASET, "ids": ["a", "b"], "modality": "text", "encoder": {"name": "e", "fingerprint": "1"}}
    keys = {entry_key(**base), entry_key(**{**base, "ids": ["b", "a"]}),
            entry_key(**{**base, "modality": "image"}), entry_key(**{**base, "encoder": {"name": "e", "fingerprint": "2"}}),
            entry_key(**{**base, "dataset": {**DATASET, "fingerprint": "x"}}), entry_key(**base, train_ids=["a"])}
    assert len(keys) == 6
    assert entry_key(**base) == entry_key(**base)
    store = {"dataset": DATASET, "modality": "text", "encoder": {"name": "e", "fingerprint": "1"}}
    stores = {store_key(**store), store_key(**{**store, "modality": "image"}),
              store_key(**{**store, "encoder": {"name": "e", "fingerprint": "2"}}),
              store_key(**{**store, "dataset": {**DATASET, "params": {"n": 61}}})}
    assert len(stores) == 4 and not stores & keys
    # a grown or edited dataset keeps its store: its rows are addressed by sample id and item digest
    assert store_key(**{**store, "dataset": {**DATASET, "fingerprint": "x"}}) == store_key(**store)


def _corrupt(folder: Path, how: str) -> None:
    vectors = folder / "vectors.npy"
    if how == "truncate":
        vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])
    elif how == "flip bytes":
        data = bytearray(vectors.read_bytes())
        data[-5] ^= 0xFF
        vectors.write_bytes(bytes(data))
    elif how == "bad header":
        data = bytearray(vectors.read_bytes())
        data[:6] = b"NOTNPY"
        vectors.write_bytes(bytes(data))
    else:
        (folder / "manifest.json").unlink()


@pytest.mark.parametrize("how", ["truncate", "flip bytes", "bad header", "delete manifest"])
def test_a_corrupt_split_entry_is_reported_and_recomputed(_private_embedding_cache, how):
    fitted = config("fitted_counting")
    features, _, _, record = extract(encoder=fitted)
    key = record["text"]["splits"]["test"]["key"]
    _corrupt(_private_embedding_cache / "embeddings" / key, how)

    Counting.calls.clear()
    with pytest.warns(CacheWarning, match=f"{key}.*corrupt"):
        again, _, extract_s, record = extract(encoder=fitted)
    assert encodes() == 1 and extract_s > 0  # only the test split is recomputed
    assert record["text"]["splits"]["test"]["cached"] is False and record["text"]["cached"] is False
    for name in features:
        np.testing.assert_array_equal(again[name]["text"], features[name]["text"])

    Counting.calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extract(encoder=fitted)  # the rewritten entry is valid again
    assert Counting.calls == []


def test_token_sequences_round_trip():
    _, sequences, _, _ = extract(encoder=config("with_tokens"))
    Counting.calls.clear()
    _, cached, _, record = extract(encoder=config("with_tokens"))
    assert Counting.calls == [] and record["text"]["cached"]
    for name in sequences:
        np.testing.assert_array_equal(cached[name]["text"].values, sequences[name]["text"].values)
        np.testing.assert_array_equal(cached[name]["text"].mask, sequences[name]["text"].mask)
        assert cached[name]["text"].mask.dtype == bool


def test_arrays_are_npy_without_pickles_and_the_manifest_describes_them(_private_embedding_cache):
    extract(encoder=config("with_tokens"))
    folder = next((_private_embedding_cache / "embeddings").iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["key"] == folder.name and manifest["layout"] == "samples"
    assert manifest["encoder"] == {"name": "with_tokens", "version": "1", "fingerprint": WithTokens().fingerprint()}
    assert manifest["dtype"] == "float32" and manifest["shape"] == [60, 3] and manifest["created"]
    (chunk,) = manifest["chunks"]  # one run, one chunk
    assert chunk["n"] == 60 and chunk["extract_s_per_sample"] > 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json"] + [f"{chunk['name']}.{a}.npy" for a in ("ids", "vectors", "token_values", "token_mask")])
    for name, info in chunk["files"].items():
        array = np.load(folder / f"{chunk['name']}.{name}.npy", allow_pickle=False)
        assert list(array.shape) == info["shape"] and len(info["sha256"]) == 64
    rows = np.load(folder / f"{chunk['name']}.ids.npy")  # each row's address: sample id @ item digest
    assert {str(row).split("@")[0] for row in rows} == {f"s{i}" for i in range(60)}

    extract(encoder=config("fitted_counting"))  # a fitted encoder: one entry per split, as before
    splits = [f for f in (_private_embedding_cache / "embeddings").iterdir() if f != folder]
    assert len(splits) == 3 and all(sorted(p.name for p in f.iterdir()) == ["manifest.json", "vectors.npy"]
                                    for f in splits)


def test_location_is_mmbench_cache_and_nothing_is_written_elsewhere(tmp_path, monkeypatch):
    home, xdg, chosen = tmp_path / "home", tmp_path / "xdg", tmp_path / "chosen"
    for folder in (home, xdg):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    monkeypatch.setenv("MMBENCH_CACHE", str(chosen))
    extract()
    assert len(entry_files(chosen)) == 3  # the store's manifest, its chunk's ids and vectors
    assert list(home.rglob("*")) == [] and list(xdg.rglob("*")) == []
    package = Path(__import__("mmbench").__file__).parent
    assert not any(p.name in ("embeddings", "locks") for p in package.iterdir())

    monkeypatch.delenv("MMBENCH_CACHE")
    assert cache_root() == xdg / "mmbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == home / ".cache" / "mmbench"


def _write_many(root: str, key: str, seed: int) -> None:
    cache = EmbeddingCache(Path(root))
    vectors = np.arange(20000, dtype=np.float32).reshape(1000, 20)
    for _ in range(15):
        assert cache.put(key, Encoded(vectors), 0.001 * (seed + 1), {"modality": "text"})


def test_concurrent_writers_leave_one_valid_entry(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(tmp_path), "k" * 32, seed)) for seed in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(300)
        assert writer.exitcode == 0
    cache = EmbeddingCache(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hit = cache.get("k" * 32)
    assert hit is not None and hit.encoded.vectors.shape == (1000, 20)
    assert [e.key for e in cache.entries()] == ["k" * 32]
    assert sorted(p.name for p in (tmp_path / "embeddings" / ("k" * 32)).iterdir()) == ["manifest.json",
                                                                                         "vectors.npy"]


def test_cli_cache_ls_du_rm(_private_embedding_cache, run_cli):
    empty = run_cli("cache", "ls")
    assert empty.code == 0 and "0 entries" in empty.out
    _, _, _, record = extract(encoder=config("fitted_counting"))  # one entry per split
    _, _, _, store = extract(encoder=config("with_tokens"))  # one store
    keys = {name: s["key"] for name, s in record["text"]["splits"].items()}
    store_key = store["text"]["splits"]["train"]["key"]

    listed = run_cli("cache", "ls")
    assert listed.code == 0 and "4 entries" in listed.out and str(_private_embedding_cache) in listed.out
    for key in [*keys.values(), store_key]:
        assert key in listed.out
    assert "fitted_counting" in listed.out and "with_tokens" in listed.out and "text" in listed.out
    n_test = len(parts()["test"])
    assert f"{n_test}x3" in listed.out and "60x3" in listed.out  # a split; the store's every sample

    size = run_cli("cache", "du")
    assert size.code == 0 and "in 4 entries" in size.out and "KiB" in size.out

    removed = run_cli("cache", "rm", keys["test"], keys["val"][:10])
    assert removed.code == 0 and "removed 2 entries" in removed.out
    remaining = {e.key for e in EmbeddingCache().entries()}
    assert remaining == {keys["train"], store_key}

    unknown = run_cli("cache", "rm", "nosuchkey")
    assert unknown.code == 2 and "nosuchkey" in unknown.err

    kept = run_cli("cache", "rm", "--older-than", "1")
    assert kept.code == 0 and "removed 0 entries" in kept.out and len(EmbeddingCache().entries()) == 2
    old = EmbeddingCache().path(keys["train"]) / "manifest.json"
    manifest = json.loads(old.read_text())
    old.write_text(json.dumps({**manifest, "created": "2020-01-01T00:00:00+00:00"}))
    aged = run_cli("cache", "rm", "--older-than", "1")
    assert "removed 1 entries" in aged.out and keys["train"] not in {e.key for e in EmbeddingCache().entries()}

    store_manifest = EmbeddingCache().path(store_key) / "manifest.json"
    created_long_ago = {**json.loads(store_manifest.read_text()), "created": "2020-01-01T00:00:00+00:00"}
    store_manifest.write_text(json.dumps(created_long_ago))  # but appended to today: in use
    assert "removed 0 entries" in run_cli("cache", "rm", "--older-than", "1").out
    store_manifest.write_text(json.dumps({**json.loads(store_manifest.read_text()), "format_version": 1}))
    assert "old format 1, unused" in run_cli("cache", "ls").out  # from before the stores: never read

    everything = run_cli("cache", "rm")
    assert everything.code == 0 and "removed 1 entries" in everything.out
    assert EmbeddingCache().entries() == []


RAW_SUITE = """
[suite]
name = "raw"
[[datasets]]
name = "words_and_vectors"
[[encoders]]
text = "text_length"
[[fusions]]
name = "prior"
"""


def test_a_run_records_extraction_cost_and_a_cached_rerun_keeps_it(tmp_path, monkeypatch, use_plugins):
    monkeypatch.chdir(tmp_path)
    use_plugins("mmbench,faulty_fusions,raw_text_dataset")
    suite = tmp_path / "raw.toml"
    suite.write_text(RAW_SUITE)

    def result() -> dict:
        (path,) = (tmp_path / "results" / "raw").glob("*.json")
        return json.loads(path.read_text())

    assert main(["run", str(suite)]) == 0
    first = result()
    assert first["status"] == "ok", first["error"]
    text = first["extraction"]["text"]
    assert text["cached"] is False and text["encoder"] == "text_length" and text["s_per_sample"] > 0
    assert first["metrics"]["extract_s_per_sample"] > 0
    assert "tabular" not in first["extraction"]  # vectors already: nothing extracted

    assert main(["run", str(suite), "--rerun"]) == 0
    second = result()
    assert second["extraction"]["text"]["cached"] is True
    assert second["metrics"]["extract_s_per_sample"] == 0
    assert second["extraction"]["text"]["s_per_sample"] == pytest.approx(text["s_per_sample"])
    assert second["metrics"]["auroc"] == first["metrics"]["auroc"]
