"""embeddings_table: the papers' CSV / Parquet tables of precomputed vectors as a dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mmbench_datasets.embeddings_table import EmbeddingsTable
from support import make

from mmbench.errors import UserError
from mmbench.splits import split_indices

RNG = np.random.default_rng(0)
N = 12
IMAGE = RNG.standard_normal((N, 4)).astype(np.float32)
TEXT = RNG.standard_normal((N, 3)).astype(np.float32)


def _authors_frame() -> pd.DataFrame:
    """The authors' layout: image_<i>, text_<i>, numeric labels, metadata, no split."""
    frame = pd.DataFrame({"id": [f"{i:03d}" for i in range(N)], "label": [0, 1] * (N // 2),
                          "age": np.arange(N) + 30})
    for name, block in (("image", IMAGE), ("text", TEXT)):
        frame = pd.concat([frame, pd.DataFrame(block, columns=[f"{name}_{i}" for i in range(block.shape[1])])],
                          axis=1)
    return frame


def _write(frame: pd.DataFrame, path) -> str:
    if str(path).endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


def test_the_authors_image_text_csv_layout_parses(tmp_path):
    path = _write(_authors_frame(), tmp_path / "brset_embeddings.csv")
    table = make(EmbeddingsTable, path=path).load()
    assert list(table.ids) == [f"{i:03d}" for i in range(N)]  # text ids keep their zeros
    assert table.classes == ("0", "1") and list(table.labels) == [0, 1] * (N // 2)
    assert sorted(table.modalities) == ["image", "text"]  # the metadata column is not a modality
    np.testing.assert_array_equal(table.modalities["image"], IMAGE)
    np.testing.assert_array_equal(table.modalities["text"], TEXT)
    assert table.split is None  # no split column: the runner splits with the run's seed


def test_img_emb_layout_with_an_official_split_classes_order_and_parquet(tmp_path):
    frame = pd.DataFrame({"label": ["cat", "dog", "eel"] * 4,
                          "split": ["train"] * 6 + ["Validation"] * 2 + ["test"] * 4})
    frame = pd.concat([frame, pd.DataFrame(IMAGE, columns=[f"img_emb_{i}" for i in range(4)]),
                       pd.DataFrame(TEXT[:, :2], columns=["clin_emb_1", "clin_emb_0"])], axis=1)
    path = _write(frame, tmp_path / "t.parquet")
    table = make(EmbeddingsTable, path=path, task="multiclass", classes=["eel", "dog", "cat"]).load()
    assert list(table.ids) == [str(i) for i in range(N)]  # no id column: row numbers
    assert table.classes == ("eel", "dog", "cat") and list(table.labels[:3]) == [2, 1, 0]
    np.testing.assert_array_equal(table.modalities["image"], IMAGE)
    np.testing.assert_array_equal(table.modalities["clin"], TEXT[:, [1, 0]])  # by index, not file order
    rows = split_indices(table, val=0.3, test=0.3, seed=5)  # the suite's fractions do not apply
    assert {name: list(index) for name, index in rows.items()} == {
        "train": list(range(6)), "val": [6, 7], "test": list(range(8, 12))}


def test_explicit_modalities_name_the_prefixes(tmp_path):
    frame = _authors_frame().rename(columns=lambda c: c.replace("image_", "vit_").replace("text_", "bert_"))
    path = _write(frame, tmp_path / "t.csv")
    table = make(EmbeddingsTable, path=path, modalities=["vit=image", "bert=text"]).load()
    np.testing.assert_array_equal(table.modalities["image"], IMAGE)
    np.testing.assert_array_equal(table.modalities["text"], TEXT)


def test_multilabel_reads_one_0_1_column_per_label(tmp_path):
    frame = _authors_frame().drop(columns="label")
    frame["label:edema"] = [1, 0] * (N // 2)
    frame["label:atelectasis"] = 1
    table = make(EmbeddingsTable, path=_write(frame, tmp_path / "t.csv"), task="multilabel").load()
    assert table.classes == ("atelectasis", "edema")
    assert table.labels.tolist()[:2] == [[1, 1], [1, 0]]


def test_fingerprint_follows_the_content_and_the_parameters(tmp_path):
    path = _write(_authors_frame(), tmp_path / "t.csv")
    first = make(EmbeddingsTable, path=path).fingerprint()
    assert make(EmbeddingsTable, path=path).fingerprint() == first
    assert make(EmbeddingsTable, path=path, layout="image_text").fingerprint() != first
    frame = _authors_frame()
    frame.loc[3, "image_0"] += 1.0
    _write(frame, path)
    assert make(EmbeddingsTable, path=path).fingerprint() != first


def _error(tmp_path, frame: pd.DataFrame, **params) -> str:
    path = _write(frame, tmp_path / "bad.csv")
    with pytest.raises(UserError) as info:
        make(EmbeddingsTable, path=path, **params).load()
    return str(info.value)


def test_missing_columns_are_named_with_what_was_found(tmp_path):
    message = _error(tmp_path, _authors_frame().drop(columns="label"))
    assert "no label column 'label'" in message and "'image_0'" in message and "'age'" in message
    message = _error(tmp_path, _authors_frame()[["id", "label", "age"]])
    assert "no embedding columns like image_0.. and text_0.." in message and "'age'" in message
    message = _error(tmp_path, _authors_frame(), split_column="fold")
    assert "no split column 'fold'" in message
    message = _error(tmp_path, _authors_frame().drop(columns="image_2"))
    assert "modality 'image'" in message and "lacks '2'" in message


def test_bad_values_name_the_column_and_the_sample(tmp_path):
    frame = _authors_frame().astype({"text_1": object})
    frame.loc[4, "text_1"] = "n/a?"
    message = _error(tmp_path, frame)
    assert "column 'text_1'" in message and "'n/a?'" in message and "sample '004'" in message
    frame = _authors_frame()
    frame.loc[[2, 5], "image_3"] = np.nan
    message = _error(tmp_path, frame)
    assert "2 samples have empty, NaN or infinite image values" in message and "'002', '005'" in message
    frame = _authors_frame()
    frame.loc[1, "label"] = 2
    assert "task = 'binary' needs 2 classes, found 3" in _error(tmp_path, frame)
    frame = _authors_frame()
    frame["split"] = ["train"] * 8 + ["holdout"] * 4
    assert "holds 'holdout'" in _error(tmp_path, frame)
    frame = _authors_frame()
    frame["split"] = "train"
    assert "no 'test' rows" in _error(tmp_path, frame)
    frame = _authors_frame()
    frame.loc[1, "id"] = "000"
    assert "repeated: '000'" in _error(tmp_path, frame)


def test_a_suite_reports_a_missing_file_before_running(write_suite, run_cli, tmp_path):
    suite = write_suite(f"""
        [suite]
        name = "vectors"
        [[datasets]]
        name = "embeddings_table"
        path = "{tmp_path / 'nowhere.parquet'}"
        [[fusions]]
        name = "linear_probe"
        """)
    result = run_cli("validate", suite)
    assert result.code == 2
    assert "path" in result.err and "nowhere.parquet" in result.err and "does not exist" in result.err


def test_the_starting_suite_validates_on_a_table_in_the_expected_place(run_cli, monkeypatch, tmp_path):
    folder = tmp_path / "embeddings"
    folder.mkdir()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": [f"s{i}" for i in range(40)], "label": ["neg", "pos"] * 20,
                          **{f"img_emb_{j}": rng.standard_normal(40) for j in range(4)},
                          **{f"text_emb_{j}": rng.standard_normal(40) for j in range(4)}})
    frame.to_parquet(folder / "embeddings.parquet")
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    suite = Path(__file__).resolve().parents[1] / "suites" / "datasets" / "embeddings_table.toml"
    result = run_cli("validate", suite)
    assert result.code == 0, result.err
    assert "18 runs" in result.out
