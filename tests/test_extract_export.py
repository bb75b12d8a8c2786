"""``mmbench extract`` precomputes exactly what runs read, ``mmbench export`` writes it as
a table that the ``embeddings_table`` dataset reads back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmbench.cache import EmbeddingCache
from mmbench.registry import load_registry
from mmbench.suite import load_suite

#: two seeds, an alignment and a robustness sweep: of these only the seed changes what
#: is extracted
RAW_SUITE = """
[suite]
name = "extract"
seeds = [0, 1]
threads = 1
[[datasets]]
name = "synthetic_raw"
n_samples = 60
image_size = 8
[[encoders]]
image = "color_histogram"
text = { name = "tfidf_svd", n_components = 8 }
tabular = "tabular"
[[alignments]]
name = "noise"
[robustness]
missing_rate = [0.0, 0.3]
[[fusions]]
name = "linear_probe"
train = { epochs = 2 }
"""
#: the colour histograms' sample store, and the fitted text and tabular encoders' entries
#: per split seed x (train, val, test)
N_ENTRIES = 1 + 2 * 2 * 3


def _results(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _table_rows(out: str) -> list[list[str]]:
    """The body cells of a rich table in CLI output."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]


def _cache_state() -> dict[str, float]:
    return {e.key: (e.path / "manifest.json").stat().st_mtime_ns for e in EmbeddingCache().entries()}


def test_extract_then_run_reads_every_embedding_from_the_cache(write_suite, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(RAW_SUITE)
    extracted = run_cli("extract", suite)
    assert extracted.code == 0, extracted.err
    # encoder, modality, extractions, items (2 x 60 for split seeds of fitted encoders), computed, cached
    assert [row[1:7] for row in _table_rows(extracted.out)] == [
        ["color_histogram", "image", "1", "60", "60", "0"],  # one pass for both seeds
        ["tabular", "tabular", "2", "120", "120", "0"],
        ["tfidf_svd(n_components=8)", "text", "2", "120", "120", "0"]]
    assert len(_cache_state()) == N_ENTRIES

    assert run_cli("run", suite).code == 0
    results = _results(tmp_path / "results" / "extract")
    assert len(results) == 2 * 2  # seeds x robustness
    for result in results:
        assert result["status"] == "ok", result["error"]
        assert {m: r["cached"] for m, r in result["extraction"].items()} == \
            {"image": True, "text": True, "tabular": True}
        assert result["metrics"]["extract_s_per_sample"] == 0
    assert len(_cache_state()) == N_ENTRIES  # the runs added nothing


def test_a_second_extract_is_all_cached_and_rewrites_nothing(write_suite, tmp_path):
    from mmbench.extract import extract_suite

    registry = load_registry()
    suite = load_suite(write_suite(RAW_SUITE), registry)
    first = extract_suite(suite, registry)
    assert len(first.plan.work) == 1 + 2 * 2 and not first.failures  # the store; fitted ones per split seed
    before = _cache_state()
    second = extract_suite(suite, registry)
    assert not second.failures
    assert [r.computed for r in second.rows] == [0] * 5
    assert [r.s_per_sample for r in second.rows] == pytest.approx([r.s_per_sample for r in first.rows])  # stored
    assert _cache_state() == before


def test_a_fixed_split_seed_extracts_once_for_every_seed(write_suite):
    from mmbench.extract import plan

    registry = load_registry()
    suite = load_suite(write_suite(RAW_SUITE + "[split]\nseed = 7\n"), registry)
    assert len(suite.runs()) == 4
    assert len(plan(suite, registry).work) == 3  # one per modality


def test_runs_of_raw_input_fusions_are_skipped_and_said_so(write_suite, run_cli, use_plugins):
    use_plugins("mmbench,faulty_fusions,raw_text_dataset,contract_probes")
    suite = write_suite("""
        [suite]
        name = "raw"
        [[datasets]]
        name = "words_and_vectors"
        [[encoders]]
        text = "text_length"
        [[fusions]]
        name = "raw_probe"
        """)
    result = run_cli("extract", suite)
    assert result.code == 0, result.err
    assert "skipped 1 run(s) whose fusion consumes raw inputs" in result.out
    assert EmbeddingCache().entries() == []

    with_prior = write_suite(suite.read_text() + '[[fusions]]\nname = "prior"\n', "prior.toml")
    assert run_cli("extract", with_prior).code == 0
    assert len(EmbeddingCache().entries()) == 3  # the text of each split, for the prior's run


def test_a_failing_extraction_is_a_user_error_after_the_others(write_suite, run_cli, use_plugins):
    use_plugins("mmbench,faulty_fusions,raw_text_dataset,cluster_faults")
    suite = write_suite("""
        [suite]
        name = "one_fails"
        [[datasets]]
        name = "words_and_vectors"
        [[encoders]]
        text = "fails_to_encode"
        [[encoders]]
        text = "text_length"
        [[fusions]]
        name = "prior"
        """)
    result = run_cli("extract", suite)
    assert result.code == 2
    assert "1 extraction(s) failed (the others are cached)" in result.err
    assert "RuntimeError: this encoder cannot encode anything" in result.err
    # text_length's vectors are extracted after the failure
    assert {e.manifest["encoder"]["name"] for e in EmbeddingCache().entries()} == {"text_length"}
    result = run_cli("extract", suite, "--device", "tpu")
    assert result.code == 2 and "--device 'tpu'" in result.err


@pytest.fixture
def exported(write_suite, run_cli, tmp_path):
    """The raw suite's seed-1 embeddings exported as CSV and Parquet."""
    suite = write_suite(RAW_SUITE)
    paths = {}
    for suffix in ("csv", "parquet"):
        paths[suffix] = tmp_path / f"emb.{suffix}"
        result = run_cli("export", suite, "--out", paths[suffix], "--seed", "1")
        assert result.code == 0, result.err
    return suite, paths


def test_export_writes_the_cached_vectors_of_the_chosen_seed(exported):
    from mmbench.export import choose
    from mmbench.run import encode_splits, load_and_split

    suite_path, paths = exported
    registry = load_registry()
    suite = load_suite(suite_path, registry)
    spec = choose(suite, None, None, 1)
    table, parts = load_and_split(spec, registry)
    dataset = {**spec.dataset.identity(), "fingerprint": spec.dataset_fingerprint}
    features, _, _, extraction = encode_splits(parts, spec.encoders, registry, dataset)
    assert all(record["cached"] for record in extraction.values())  # export filled the cache

    for frame in (pd.read_csv(paths["csv"], dtype={"id": str}), pd.read_parquet(paths["parquet"])):
        dims = {m: features["train"][m].shape[1] for m in ("image", "text", "tabular")}
        assert list(frame.columns) == ["id", "label", "split",
                                       *[f"img_emb_{i}" for i in range(dims["image"])],
                                       *[f"text_emb_{i}" for i in range(dims["text"])],
                                       *[f"tabular_emb_{i}" for i in range(dims["tabular"])]]
        assert list(frame["id"]) == list(table.ids)  # the dataset's order
        for name, part in parts.items():
            rows = frame.set_index("id").loc[part.ids]
            assert set(rows["split"]) == {name}
            assert list(rows["label"]) == [table.classes[i] for i in part.labels]
            for modality, prefix in (("image", "img_emb"), ("text", "text_emb"), ("tabular", "tabular_emb")):
                values = rows[[f"{prefix}_{i}" for i in range(dims[modality])]].to_numpy().astype(np.float32)
                np.testing.assert_array_equal(values, features[name][modality])
    assert pd.read_parquet(paths["parquet"])["img_emb_0"].dtype == np.float32


def test_export_round_trips_through_embeddings_table_with_its_split(exported, write_suite, run_cli,
                                                                     tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, paths = exported
    exported_split = pd.read_parquet(paths["parquet"]).set_index("id")["split"]
    for suffix, path in paths.items():
        suite = write_suite(f"""
            [suite]
            name = "back_{suffix}"
            seeds = [0]
            [[datasets]]
            name = "embeddings_table"
            path = "{path}"
            [[encoders]]
            image = "color_histogram"
            [[fusions]]
            name = "linear_probe"
            train = {{ epochs = 2 }}
            """, f"{suffix}.toml")
        assert run_cli("run", suite).code == 0
        (result,) = _results(tmp_path / "results" / f"back_{suffix}")
        assert result["status"] == "ok", result["error"]
        assert result["extraction"] == {}  # vectors: no encoder applied
        counts = exported_split.value_counts()
        # the official split of seed 1, not a seed-0 split of the suite's fractions
        assert result["data"]["n"] == {name: int(counts[name]) for name in ("train", "val", "test")}
        columns = pd.read_parquet(paths["parquet"]).columns
        assert result["data"]["dims"] == {m: sum(c.startswith(f"{prefix}_") for c in columns) for m, prefix in
                                          (("image", "img_emb"), ("tabular", "tabular_emb"), ("text", "text_emb"))}


def test_export_needs_a_choice_when_the_suite_has_several_and_names_them(write_suite, run_cli, tmp_path):
    suite = write_suite(RAW_SUITE.replace("[[alignments]]", """
[[encoders]]
image = "hog"
text = { name = "tfidf_svd", n_components = 8 }
tabular = "tabular"
[[alignments]]"""))
    out = tmp_path / "e.csv"
    result = run_cli("export", suite, "--out", out)
    assert result.code == 2
    assert "pick one with --encoder" in result.err
    assert "'color_histogram+tabular+tfidf_svd(n_components=8)'" in result.err and "'hog+" in result.err
    result = run_cli("export", suite, "--out", out, "--encoder", "hogg")
    assert result.code == 2 and "--encoder 'hogg'" in result.err
    result = run_cli("export", suite, "--out", out, "--dataset", "mnist")
    assert result.code == 2 and "synthetic_raw(image_size=8, n_samples=60)" in result.err
    result = run_cli("export", suite, "--out", tmp_path / "e.xlsx")
    assert result.code == 2 and ".csv, .parquet" in result.err
    assert not out.exists() and EmbeddingCache().entries() == []  # nothing extracted for a bad choice


def test_a_dry_run_says_how_many_items_each_encoder_will_encode(write_suite, run_cli):
    suite = write_suite(RAW_SUITE)
    before = run_cli("run", suite, "--dry-run")
    assert before.code == 0, before.err
    # both seeds: one pass of the colour histograms, the fitted encoders once per split seed
    assert "| color_histogram: 60 image items to encode, 0 cached" in before.out
    assert "| tfidf_svd(n_components=8): 120 text items to encode, 0 cached" in before.out
    assert "| tabular: 120 tabular items to encode, 0 cached" in before.out
    assert run_cli("extract", suite).code == 0
    after = run_cli("run", suite, "--dry-run")
    assert "| color_histogram: 0 image items to encode, 60 cached" in after.out
    assert "| tfidf_svd(n_components=8): 0 text items to encode, 120 cached" in after.out
