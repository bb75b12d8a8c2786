"""PairDx loader: the record's table (one file with a split column, or one file per
split), class-name spellings, configured column names, groups by case report, bad
samples, the missing-root message and the suite."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from fixtures_tables import PAIRDX_CLASSES, build_pairdx, pairdx_rows
from mmbench_datasets.pairdx import PairDx
from support import make

from mmbench.errors import UserError

SUITE = Path(__file__).resolve().parents[1] / "suites" / "datasets" / "pairdx.toml"


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    return build_pairdx(tmp_path_factory.mktemp("pairdx") / "pairdx", "single")


def load(root: Path, **params):
    return make(PairDx, root=str(root), **params).load()


def test_six_classes_captions_images_and_the_official_split(single):
    table = load(single)
    assert table.classes == PAIRDX_CLASSES and table.task == "multiclass"
    assert len(table) == 48 and sorted(set(table.labels.tolist())) == list(range(6))
    rows = pairdx_rows()
    # "Medical Photograph" and "medical_photograph" are one class
    photographs = [i for i, r in enumerate(rows) if r["label"] in ("Medical Photograph", "medical_photograph")]
    assert {table.classes[table.labels[i]] for i in photographs} == {"medical_photograph"}
    assert table.modalities["text"][0] == rows[0]["caption"]
    assert table.modalities["image"][0] == str(single / "images" / rows[0]["image"])
    assert [table.split.tolist().count(s) for s in ("train", "val", "test")] == [24, 12, 12]
    assert "tabular" not in table.modalities and make(PairDx, root=str(single)).raw_modalities() == ("image", "text")


def test_groups_are_case_reports_and_no_case_crosses_the_official_split(single):
    table = load(single)
    owner = {}
    for group, split in zip(table.groups, table.split):
        assert owner.setdefault(group, split) == split
    assert len(owner) == 24


def test_one_table_per_split_reads_the_split_from_the_file(tmp_path):
    table = load(build_pairdx(tmp_path / "pairdx", "split_files"))
    assert len(table) == 48 and [table.split.tolist().count(s) for s in ("train", "val", "test")] == [24, 12, 12]
    assert table.ids[0] == "train/0" and len(set(table.ids)) == 48


def test_configured_file_and_column_names(tmp_path):
    root = tmp_path / "record"
    rows = [{"File": f"figs/{r['image']}", "Caption text": r["caption"], "Modality": r["label"],
             "age": str(40 + n % 30)} for n, r in enumerate(pairdx_rows())]
    build_pairdx(root)  # for the images
    (root / "figs").mkdir()
    for r in pairdx_rows():
        (root / "images" / r["image"]).rename(root / "figs" / r["image"])
    (root / "pairdx.csv").unlink()
    with open(root / "PairDx_dataset.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = load(root, csv="PairDx_dataset.csv", image_column="File", caption_column="Caption text",
                 label_column="Modality", tabular_columns=["age"])
    assert len(table) == 48 and table.split is None and table.groups is None
    assert table.modalities["tabular"]["age"].dtype.kind in "if"
    with pytest.raises(UserError, match="no column 'Caption' .*caption_column"):
        load(root, csv="PairDx_dataset.csv", image_column="File", caption_column="Caption", label_column="Modality")


def test_class_numbers_need_the_class_order(tmp_path):
    rows = pairdx_rows()
    for r in rows:
        r["label"] = str(PAIRDX_CLASSES.index(r["label"].lower().replace(" ", "_").replace("-", "_")))
    root = build_pairdx(tmp_path / "numbers", rows=rows)
    with pytest.raises(UserError, match="class numbers; set classes"):
        load(root)
    table = load(root, classes=list(PAIRDX_CLASSES))
    assert table.labels[:8].tolist() == [0] * 8 and table.classes == PAIRDX_CLASSES


def test_bad_pairs_stop_the_load_naming_them_or_are_skipped_and_counted(tmp_path):
    rows = pairdx_rows()
    rows[3]["caption"] = "  "
    rows[10]["label"] = "pathology"  # one of MultiCaRe's classes PairDx left out
    root = build_pairdx(tmp_path / "bad", rows=rows)
    (root / "images" / rows[20]["image"]).unlink()
    with pytest.raises(UserError, match="sample 3: empty text"):
        load(root)
    table = load(root, on_bad_sample="skip")
    assert sorted(table.skipped, key=int) == ["3", "10", "20"] and len(table) == 45
    assert "'pathology'" in table.skipped["10"] and "not found" in table.skipped["20"]


def test_missing_root_says_what_it_looked_for_and_where_to_get_it(tmp_path):
    with pytest.raises(UserError) as error:
        make(PairDx, root=str(tmp_path / "nowhere")).fingerprint()
    assert "pairdx.csv" in str(error.value) and "zenodo.org/records/17452236" in str(error.value)


def test_datasets_info_and_suite_validation(single, run_cli, monkeypatch):
    result = run_cli("datasets", "info", "pairdx", "--set", f"root={single}", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["splits"]["train"]["n"] == 24 and summary["groups"] == 24
    assert summary["example_text"].startswith("Figure 1: chart")
    monkeypatch.setenv("MMBENCH_DATA", str(single.parent))
    result = run_cli("validate", SUITE)
    assert result.code == 0, result.err + result.out
