"""MVSA-Single / -Multiple loaders: Balaji's label rule, the annotator majority, mixed
encodings, duplicate groups, bad samples, the missing-root message and the suites."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures_social import MVSA_MULTIPLE_CASES, MVSA_SINGLE_CASES, build_mvsa_multiple, build_mvsa_single
from support import make

from mmbench.errors import UserError
from mmbench.splits import split_indices
from mmbench_datasets.mvsa import CLASSES, MvsaMultiple, MvsaSingle


@pytest.fixture(scope="module")
def single_root(tmp_path_factory):
    """The parent of MVSA_Single/ (the archive unpacked in place), with three bad samples."""
    root = tmp_path_factory.mktemp("mvsa-single")
    build_mvsa_single(root, bad=True)
    return root


@pytest.fixture(scope="module")
def single(single_root):
    dataset = make(MvsaSingle, root=str(single_root), on_bad_sample="skip")
    return dataset, dataset.load()


@pytest.fixture(scope="module")
def multiple(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvsa-multiple")
    build_mvsa_multiple(root)
    dataset = make(MvsaMultiple, root=str(root))
    return dataset, dataset.load()


def _label_of(table, sample_id):
    return CLASSES[int(table.labels[list(table.ids).index(sample_id)])]


def test_single_keeps_agreement_takes_non_neutral_and_drops_conflicts(single):
    dataset, table = single
    for sample_id, (_, _, expected) in MVSA_SINGLE_CASES.items():
        if expected is None:
            assert sample_id not in table.ids
        else:
            assert _label_of(table, sample_id) == expected, sample_id
    assert table.task == "multiclass" and table.classes == CLASSES
    assert dataset.info()["dropped by the label rule"] == "1 positive vs negative"
    assert len(table) == len(MVSA_SINGLE_CASES) - 1 + 24


def test_multiple_takes_two_of_three_per_modality_then_the_rule(multiple):
    dataset, table = multiple
    for sample_id, (_, expected) in MVSA_MULTIPLE_CASES.items():
        if expected is None:
            assert sample_id not in table.ids
        else:
            assert _label_of(table, sample_id) == expected, sample_id
    assert dataset.info()["dropped by the label rule"] == "1 positive vs negative, 1 without a 2-of-3 majority"
    assert len(table) == 3 + 24


def test_texts_in_mixed_encodings_and_images_as_paths(single):
    _, table = single
    texts = dict(zip(table.ids, table.modalities["text"]))
    assert texts["1"] == "Sunny day at the beach \U0001F600"  # UTF-8
    assert texts["2"] == "Café closed – so sad"  # Windows-1252
    assert texts["4"] == "Terrible traffic again"  # UTF-8 with BOM, BOM gone
    images = table.modalities["image"]
    assert all(isinstance(p, str) and p.endswith(f"/data/{i}.jpg") for i, p in zip(table.ids, images))


def test_retweets_share_a_group_and_no_group_crosses_splits(single):
    _, table = single
    groups = dict(zip(table.ids, table.groups))
    assert groups["6"] == groups["7"]  # "RT @someone: Great news ..." and "Great news ..."
    assert len(set(table.groups)) == len(table) - 1
    for seed in range(3):
        parts = split_indices(table, 0.2, 0.2, seed)
        owners = {}
        for name, rows in parts.items():
            for group in set(table.groups[rows]):
                assert owners.setdefault(group, name) == name
    assert make(MvsaSingle, root=str(table.modalities["image"][0]).rsplit("/data/", 1)[0],
                on_bad_sample="skip", group_duplicates=False).load().groups is None


def test_bad_samples_stop_the_load_naming_them_or_are_counted(single_root, single):
    with pytest.raises(UserError, match="sample 901: image .*901.jpg is missing.*on_bad_sample"):
        make(MvsaSingle, root=str(single_root)).load()
    _, table = single
    assert set(table.skipped) == {"901", "902", "903"}
    assert "empty" in table.skipped["902"] and "happy,positive" in table.skipped["903"]


def test_root_may_be_the_archive_folder_or_its_parent_with_one_fingerprint(single_root):
    inside = make(MvsaSingle, root=str(single_root / "MVSA_Single"), on_bad_sample="skip")
    parent = make(MvsaSingle, root=str(single_root), on_bad_sample="skip")
    assert inside.fingerprint() == parent.fingerprint()
    assert len(inside.load()) == len(parent.load())


def test_fingerprint_follows_the_label_file_and_the_data_folder(tmp_path):
    folder = build_mvsa_single(tmp_path, n_regular=3)
    dataset = make(MvsaSingle, root=str(folder))
    before = dataset.fingerprint()
    label_file = folder / "labelResultAll.txt"
    label_file.write_bytes(label_file.read_bytes().replace(b"5\tneutral,neutral", b"5\tneutral,positive"))
    relabelled = dataset.fingerprint()
    (folder / "data" / "101.txt").write_bytes(b"a different, longer tweet text")
    assert len({before, relabelled, dataset.fingerprint()}) == 3


def test_a_missing_root_or_data_folder_says_what_and_where(tmp_path):
    with pytest.raises(UserError) as missing:
        make(MvsaSingle, root=str(tmp_path / "nowhere")).fingerprint()
    message = str(missing.value)
    assert "labelResultAll.txt" in message and "mcrlab.net" in message and "MVSA_Single/" in message
    (tmp_path / "labelResultAll.txt").write_text("ID\ttext,image\n1\tpositive,positive\n")
    with pytest.raises(UserError, match="data/"):
        make(MvsaMultiple, root=str(tmp_path)).load()


def test_datasets_info_shows_the_rule_and_what_it_dropped(run_cli, single_root):
    result = run_cli("datasets", "info", "mvsa_single", "--root", single_root, "--set", "on_bad_sample=skip",
                     "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["skipped"]["n"] == 3 and summary["info"]["dropped by the label rule"] == "1 positive vs negative"
    assert summary["modalities"]["image"]["kind"] == "raw (str)"


@pytest.mark.parametrize("name", ["mvsa_single", "mvsa_multiple"])
def test_the_suites_validate_on_a_copy_of_the_layout(run_cli, monkeypatch, tmp_path, name):
    (build_mvsa_single if name == "mvsa_single" else build_mvsa_multiple)(tmp_path / name, n_regular=3)
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    suite = Path(__file__).resolve().parents[1] / "suites" / "datasets" / f"{name}.toml"
    result = run_cli("validate", suite)
    assert result.code == 0, result.err + result.out


def test_a_run_on_mvsa_single_counts_skipped_samples(run_cli, monkeypatch, single_root, tmp_path):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(single_root, tmp_path / "data")
    (tmp_path / "s.toml").write_text(f"""
[suite]
name = "mvsa"
seeds = [0]
threads = 1

[split]
val = 0.2
test = 0.2

[[datasets]]
name = "mvsa_single"
root = "{tmp_path / 'data'}"
on_bad_sample = "skip"

[[encoders]]
image = "color_histogram"
text = {{ name = "tfidf_svd", n_components = 8 }}

[[fusions]]
name = "late_voting"
rule = "min_loss"
train = {{ epochs = 2 }}
""")
    result = run_cli("run", "s.toml")
    assert result.code == 0, result.err
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "results" / "mvsa").glob("*.json")]
    assert record["status"] == "ok"
    assert record["data"]["skipped"]["n"] == 3
    assert sum(record["data"]["n"].values()) == 30
    assert 0.0 <= record["metrics"]["accuracy"] <= 1.0 and np.isfinite(record["metrics"]["f1"])
