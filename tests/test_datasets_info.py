"""``mmbench datasets info``: a dataset as its loader reads it, before any run."""

from __future__ import annotations

import json

from mmbench.dataset_info import parse_settings


def test_settings_are_read_as_toml_values_or_plain_strings():
    assert parse_settings(["n=3", 'task="multiclass"', "flag=true", "root=/data/brset", "l=[1, 2]"]) == {
        "n": 3, "task": "multiclass", "flag": True, "root": "/data/brset", "l": [1, 2]}


def test_info_counts_classes_modalities_and_shows_an_example_text(run_cli):
    result = run_cli("datasets", "info", "synthetic_raw", "--set", "n_samples=40", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["n"] == 40 and summary["task"] == "binary"
    counts = summary["splits"]["(no official split)"]
    assert counts["n"] == 40 and counts["class_0"] + counts["class_1"] == 40
    assert summary["modalities"]["image"]["kind"] == "raw (ndarray)"
    assert summary["modalities"]["tabular"]["kind"].startswith("raw (table rows: age")
    assert " mm, patient aged " in summary["example_text"]
    assert summary["skipped"] == {"n": 0, "examples": {}}
    assert summary["modalities"]["tabular"]["missing"] > 0  # rows with a metadata value missing (5 %)


def test_info_shows_official_splits_and_vector_modalities(run_cli, tmp_path):
    rows = ["id,label,split,img_emb_0,img_emb_1"] + [
        f"s{i},{'yes' if i % 2 else 'no'},{('train', 'val', 'test')[i % 3]},{i},{-i}" for i in range(12)]
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    result = run_cli("datasets", "info", "embeddings_table", "--set", f"path={tmp_path / 'table.csv'}")
    assert result.code == 0, result.err
    assert "train" in result.out and "vectors (2-d)" in result.out


def test_unknown_parameters_and_datasets_are_user_errors(run_cli):
    result = run_cli("datasets", "info", "synthetic_raw", "--set", "n_sample=40")
    assert result.code == 2 and "n_sample" in result.err and "n_samples" in result.err
    assert run_cli("datasets", "info", "synthetic_rwa").code == 2
