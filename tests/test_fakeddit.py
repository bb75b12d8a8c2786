"""Fakeddit loader: the official split from the file names, 2/3/6-way labels, the text
column, leak-free tabular defaults, posts without an image, bad samples, the layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures_social import FAKEDDIT_SPLITS, build_fakeddit, write_image
from support import make

from mmbench.errors import UserError
from mmbench_datasets.fakeddit import CLASSES, DEFAULT_TABULAR, Fakeddit


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The v2.0 layout: multimodal_only_samples/, all_samples/, public_image_set/, with
    three bad posts in train."""
    return build_fakeddit(tmp_path_factory.mktemp("fakeddit"), all_samples=True, bad=True)


def load(root: Path, **params):
    dataset = make(Fakeddit, root=str(root), on_bad_sample="skip", **params)
    return dataset, dataset.load()


def test_the_official_split_comes_from_the_file_names(root):
    _, table = load(root)
    counts = {s: int((table.split == s).sum()) for s in ("train", "val", "test")}
    assert counts == {"train": FAKEDDIT_SPLITS["train"], "val": FAKEDDIT_SPLITS["validate"],
                      "test": FAKEDDIT_SPLITS["test_public"]}
    assert all(i.startswith("te") for i in table.ids[table.split == "test"])
    assert all(i.startswith("va") for i in table.ids[table.split == "val"])


@pytest.mark.parametrize("task, kind", [("2_way", "binary"), ("3_way", "multiclass"), ("6_way", "multiclass")])
def test_each_task_reads_its_label_column(root, task, kind):
    dataset, table = load(root, task=task)
    assert dataset.task_kind() == kind == table.task and table.classes == CLASSES[task]
    keep = table.ids != "badlabel"  # only its 2_way_label is out of range
    assert keep.all() == (task == "2_way")
    six = np.array([int(i[2:5]) % 6 for i in table.ids[keep]])  # the fixture's 6-way class: row number mod 6
    expected = {"2_way": (six == 0).astype(int), "3_way": np.where(six == 0, 0, 1 + six % 2), "6_way": six}[task]
    assert np.array_equal(table.labels[keep], expected)
    assert CLASSES["2_way"][1] == "true"  # the authors' encoding: 2_way_label 1 = true, 0 = fake


def test_text_is_clean_title_by_default_or_the_title(root):
    dataset, table = load(root)
    assert table.modalities["text"][1] == "odd story number 1" and dataset.info()["text template"] == "{clean_title}"
    dataset, table = load(root, text="title")
    assert table.modalities["text"][1] == "Story number 1!" and dataset.info()["text template"] == "{title}"


def test_tabular_leaves_out_the_columns_the_label_follows(root):
    _, table = load(root)
    frame = table.modalities["tabular"]
    assert list(frame.columns) == DEFAULT_TABULAR
    assert not {"subreddit", "author", "domain"} & set(DEFAULT_TABULAR)
    assert frame["num_comments"].isna().any()  # missing values stay missing for the tabular encoder
    _, table = load(root, tabular_columns=["score", "created_utc"])
    assert list(table.modalities["tabular"].columns) == ["score", "created_utc"]
    dataset, table = load(root, tabular_columns=[])
    assert "tabular" not in table.modalities and dataset.raw_modalities() == ("image", "text")
    with pytest.raises(UserError, match="no column.*'karma'"):
        load(root, tabular_columns=["karma"])


def test_posts_without_an_image_are_masked_or_skipped(root):
    _, table = load(root, samples="all")
    missing = ~table.masks["image"]
    assert missing.sum() == 2 * len(FAKEDDIT_SPLITS)
    assert all(i.endswith("n") for i in table.ids[missing])
    assert all(table.modalities["image"][k] is None for k in np.flatnonzero(missing))
    _, skipped = load(root, samples="all", no_image="skip")
    assert "image" not in skipped.masks and len(skipped) == len(table) - missing.sum()
    assert sum("hasImage = False" in why for why in skipped.skipped.values()) == missing.sum()
    _, multimodal = load(root)
    assert "image" not in multimodal.masks
    assert all(Path(p).is_file() and p.endswith(f"public_image_set/{i}.jpg")
               for i, p in zip(multimodal.ids, multimodal.modalities["image"]))


def test_bad_posts_stop_the_load_naming_them_or_are_counted(root):
    with pytest.raises(UserError, match="sample badlabel: 2_way_label 7 .*multimodal_train.tsv"):
        make(Fakeddit, root=str(root)).load()
    _, table = load(root)
    assert set(table.skipped) == {"badlabel", "noimage", "notitle"}
    assert "noimage.jpg is missing" in table.skipped["noimage"] and "empty clean_title" in table.skipped["notitle"]


def test_flat_layout_with_downloaded_images_and_the_fingerprint(tmp_path):
    build_fakeddit(tmp_path, nested=False, image_folder="images")
    dataset, table = load(tmp_path)
    assert len(table) == sum(FAKEDDIT_SPLITS.values()) and table.modalities["image"][0].endswith("/images/tr000x.jpg")
    before = dataset.fingerprint()
    write_image(tmp_path / "images" / "extra.jpg", (1, 2, 3))
    added_image = dataset.fingerprint()
    with (tmp_path / "multimodal_test_public.tsv").open("a") as out:
        out.write("\n")
    assert len({before, added_image, dataset.fingerprint()}) == 3
    assert make(Fakeddit, root=str(tmp_path), image_dir="images").fingerprint() != before  # params count too


def test_a_missing_root_says_what_and_where(tmp_path):
    with pytest.raises(UserError) as missing:
        make(Fakeddit, root=str(tmp_path)).fingerprint()
    message = str(missing.value)
    assert "multimodal_only_samples/multimodal_train.tsv" in message and "entitize/Fakeddit" in message
    with pytest.raises(UserError, match="all_samples/all_validate.tsv"):
        make(Fakeddit, root=str(tmp_path), samples="all").fingerprint()
    with pytest.raises(UserError, match="image_dir"):
        make(Fakeddit, root=str(build_fakeddit(tmp_path)), image_dir="pics").load()


def test_the_suite_validates_on_a_copy_of_the_layout(run_cli, monkeypatch, root, tmp_path):
    (tmp_path / "fakeddit").symlink_to(root, target_is_directory=True)
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    suite = Path(__file__).resolve().parents[1] / "suites" / "datasets" / "fakeddit.toml"
    result = run_cli("validate", suite)
    assert result.code == 0, result.err + result.out
