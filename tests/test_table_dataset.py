"""The generic ``table`` loader: a user's CSV / Parquet table read by the column names a
suite gives, the bad-sample policy, the official split, groups, and a run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures_tables import build_table, table_rows
from mmbench_datasets.table import Table
from support import make

from mmbench.errors import UserError
from mmbench.splits import split_indices

SUITE = Path(__file__).resolve().parents[1] / "suites" / "datasets" / "table.toml"
FULL = {"task": "binary", "split_column": "split", "group_column": "patient", "image_column": "img",
        "text_columns": ["title", "body"], "tabular_columns": ["age", "sex"]}


def load(path: Path, **params):
    return make(Table, path=str(path), **params).load()


def test_columns_become_labels_modalities_split_and_groups(tmp_path):
    path = build_table(tmp_path)
    table = load(path, **FULL)
    assert table.classes == ("no", "yes") and table.labels.tolist() == [(i // 2) % 2 for i in range(24)]
    assert table.ids[0] == "000"  # ids stay text: leading zeros kept
    assert table.modalities["image"][0] == str(tmp_path / "pics" / "000.png")  # relative to the table's folder
    assert table.modalities["text"][3] == "Visit 3. note about redness"
    assert table.modalities["tabular"]["age"].dtype.kind in "if" and list(table.modalities["tabular"]) == ["age", "sex"]
    assert set(table.split) == {"train", "val", "test"}  # "validation" reads as val
    assert table.groups[0] == table.groups[1] == "P000"


def test_parquet_absolute_image_paths_and_a_template(tmp_path):
    rows = table_rows(8)
    for row in rows:
        row["img"] = str(tmp_path / "pics" / Path(row["img"]).name)
    path = build_table(tmp_path, rows, name="samples.parquet")
    table = load(path, task="binary", image_column="img", text_template="{title} ({sex}, {age} years)")
    assert table.modalities["image"][1] == rows[1]["img"]
    assert table.modalities["text"][0] == "Visit 0 (M, 30 years)"
    assert table.split is None and table.groups is None
    assert make(Table, path=str(path), image_column="img", text_template="{title}").info() == {"text template": "{title}"}


def test_multiclass_order_follows_classes_and_multilabel_reads_joined_names(tmp_path):
    rows = [{"id": str(i), "label": ("b", "a", "c")[i % 3], "tags": ("x|y", "y", "")[i % 3], "t": f"text {i}"}
            for i in range(9)]
    path = build_table(tmp_path, rows)
    table = load(path, task="multiclass", classes=["c", "b", "a"], text_columns=["t"])
    assert table.classes == ("c", "b", "a") and table.labels[:3].tolist() == [1, 2, 0]
    multi = load(path, task="multilabel", label_column="tags", text_columns=["t"], on_bad_sample="skip")
    assert multi.classes == ("x", "y") and multi.labels[:2].tolist() == [[1, 1], [0, 1]]
    assert len(multi.skipped) == 3 and all("no label" in reason for reason in multi.skipped.values())


def test_bad_rows_stop_the_load_naming_them_or_are_skipped_and_counted(tmp_path):
    rows = table_rows(10)
    rows[2]["img"] = "pics/gone.png"
    rows[4]["label"] = "maybe"
    rows[6]["title"], rows[6]["body"] = "", ""
    rows[8]["split"] = "holdout"
    path = build_table(tmp_path, rows)
    (tmp_path / "pics" / "gone.png").unlink()
    with pytest.raises(UserError, match="sample 002: image file 'pics/gone.png' not found"):
        load(path, **FULL, classes=["no", "yes"])
    table = load(path, **FULL, classes=["no", "yes"], on_bad_sample="skip")
    assert sorted(table.skipped) == ["002", "004", "006", "008"]
    assert "'maybe'" in table.skipped["004"] and "empty text" in table.skipped["006"]
    assert "holdout" in table.skipped["008"] and len(table) == 6


def test_wrong_column_names_and_a_binary_task_with_three_classes_are_user_errors(tmp_path):
    path = build_table(tmp_path)
    with pytest.raises(UserError, match="no column 'caption' .*text_columns.*found columns"):
        load(path, text_columns=["caption"])
    with pytest.raises(UserError, match="needs 2 classes"):
        load(path, label_column="sex", task="binary", classes=["F", "M", "X"], text_columns=["title"])
    with pytest.raises(UserError, match="at least one modality"):
        make(Table, path=str(path))
    with pytest.raises(UserError, match="is not a file"):
        make(Table, path=str(tmp_path / "absent.csv"), text_columns=["t"]).fingerprint()


def test_groups_never_cross_the_runners_split(tmp_path):
    table = load(build_table(tmp_path), task="binary", group_column="patient", text_columns=["body"])
    parts = split_indices(table, 0.2, 0.25, seed=3)
    owner = {}
    for name, rows in parts.items():
        for group in table.groups[rows]:
            assert owner.setdefault(group, name) == name
    assert sum(len(r) for r in parts.values()) == len(table)


def test_fingerprint_changes_with_the_table_and_an_image(tmp_path):
    path = build_table(tmp_path)
    dataset = make(Table, path=str(path), **FULL)
    before = dataset.fingerprint()
    (tmp_path / "pics" / "005.png").write_bytes((tmp_path / "pics" / "005.png").read_bytes() + b"\0")
    assert dataset.fingerprint() != before


def test_suite_validates_and_a_tiny_run_flows_end_to_end(tmp_path, run_cli, monkeypatch, write_suite):
    build_table(tmp_path / "data" / "table")
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path / "data"))
    result = run_cli("validate", SUITE)
    assert result.code == 0, result.out + result.err
    monkeypatch.chdir(tmp_path)
    suite = write_suite("""
        [suite]
        name = "table_tiny"
        seeds = [0]
        threads = 1

        [[datasets]]
        name = "table"
        path = "$MMBENCH_DATA/table/samples.csv"
        task = "binary"
        split_column = "split"
        group_column = "patient"
        image_column = "img"
        text_columns = ["title", "body"]
        tabular_columns = ["age", "sex"]

        [[encoders]]
        image = { name = "color_histogram", bins = 4 }
        text = { name = "tfidf_svd", n_components = 4 }
        tabular = "tabular"

        [[fusions]]
        name = "early"
        train = { epochs = 2, batch_size = 8 }
        """)
    result = run_cli("run", suite)
    assert result.code == 0, result.out + result.err
    [path] = sorted((tmp_path / "results" / "table_tiny").glob("*.json"))
    run = json.loads(path.read_text())
    assert run["status"] == "ok", run.get("error")
    assert run["data"]["n"] == {"train": 16, "val": 4, "test": 4}  # the official split, as given
    assert set(run["data"]["dims"]) == {"image", "text", "tabular"} and np.isfinite(run["metrics"]["auroc"])
