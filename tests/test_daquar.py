"""daquar: alternating question / answer files and NYU-Depth images as a multilabel dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_vqa import DAQUAR, make_daquar
from mmbench_datasets.daquar import Daquar
from support import make

from mmbench.errors import UserError
from mmbench.splits import split_indices

SUITE = Path(__file__).resolve().parent.parent / "suites" / "datasets" / "daquar.toml"
ROWS = DAQUAR["train"] + DAQUAR["test"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_daquar(tmp_path_factory.mktemp("daquar"))


def test_comma_separated_answers_are_labels_and_the_question_names_the_image(root):
    table = make(Daquar, root=str(root)).load()
    assert table.task == "multilabel" and table.classes == ("2", "book", "chair", "lamp", "picture", "table")
    named = [{table.classes[j] for j in row.nonzero()[0]} for row in table.labels]
    assert named == [{a.strip() for a in answer.split(",")} for _, answer in ROWS]
    assert named[1] == {"lamp", "book"} and named[7] == {"table", "chair"}
    assert list(table.split) == ["train"] * 6 + ["test"] * 4  # the CRLF test file reads alike
    assert list(table.groups) == ["1", "1", "2", "2", "3", "3", "4", "4", "5", "5"]
    assert [Path(p).name for p in table.modalities["image"][:3]] == ["image1.png", "image1.png", "image2.png"]
    assert table.ids[0] == "train-00001" and table.ids[-1] == "test-00004"


def test_the_default_text_carries_no_image_id_and_raw_question_is_the_published_line(root):
    texts = make(Daquar, root=str(root)).load().modalities["text"]
    assert texts[0] == "what is on the right side of the table in the image ?"
    assert not any(any(ch.isdigit() for ch in t.split("image")[-1]) for t in texts)
    raw = make(Daquar, root=str(root), template="{raw_question}").load().modalities["text"]
    assert raw == [q for q, _ in ROWS]
    with pytest.raises(UserError, match=r"\{answer\}.*\{question\}, \{raw_question\}"):
        make(Daquar, root=str(root), template="{answer}")


def test_validation_is_carved_from_train_without_splitting_an_image(root):
    table = make(Daquar, root=str(root)).load()
    for seed in range(5):
        rows = split_indices(table, val=0.3, test=0.2, seed=seed)
        assert sorted(rows["test"]) == list(range(6, 10))
        groups = {name: set(table.groups[index]) for name, index in rows.items()}
        assert not groups["train"] & groups["val"] and len(rows["val"]) > 0


@pytest.mark.parametrize("name", ["qa.37.raw.reduced.{}.txt", "qa.37.raw.{}.txt"])
def test_the_reduced_subset_reads_either_published_name(tmp_path, name):
    root = make_daquar(tmp_path, subset="reduced")
    for split in ("train", "test"):
        (root / f"qa.37.raw.reduced.{split}.txt").rename(root / name.format(split))
    assert len(make(Daquar, root=str(root), subset="reduced").load()) == 10
    with pytest.raises(UserError, match=r"qa\.894\.raw\.train\.txt, qa\.894\.raw\.test\.txt"):
        make(Daquar, root=str(root)).fingerprint()  # subset = "all" wants the 894 files


def test_bad_pairs_are_named_and_a_missing_line_stops_the_load(tmp_path):
    root = make_daquar(tmp_path, skip_images=(3,))
    with pytest.raises(UserError, match=r"sample train-00005: no image file image3\.png"):
        make(Daquar, root=str(root)).load()
    table = make(Daquar, root=str(root), on_bad_sample="skip").load()
    assert sorted(table.skipped) == ["train-00005", "train-00006"] and len(table) == 8
    lines = (root / "qa.894.raw.test.txt").read_text().splitlines()
    (root / "qa.894.raw.test.txt").write_text("\n".join(lines[:-1]) + "\n")  # one answer lost
    with pytest.raises(UserError, match=r"qa\.894\.raw\.test\.txt has 7 non-empty lines.*alternate"):
        make(Daquar, root=str(root), on_bad_sample="skip").load()
    lines[6] = "what is on the wall ?"  # a question without its image
    (root / "qa.894.raw.test.txt").write_text("\n\n".join(lines) + "\n")  # blank lines between are fine
    skipped = make(Daquar, root=str(root), on_bad_sample="skip").load().skipped
    assert "the question names no image" in skipped["test-00004"]
    assert "qa.894.raw.test.txt line 13" in skipped["test-00004"]  # the line in the file as it is


def test_a_missing_root_says_what_was_looked_for_and_where_to_get_it(tmp_path):
    with pytest.raises(UserError) as info:
        make(Daquar, root=str(tmp_path)).fingerprint()
    message = str(info.value)
    assert "qa.894.raw.train.txt" in message and "visual-turing-challenge" in message


def test_fingerprint_follows_the_answers(tmp_path):
    root = make_daquar(tmp_path)
    first = make(Daquar, root=str(root)).fingerprint()
    assert make(Daquar, root=str(root), template="{raw_question}").fingerprint() != first
    path = root / "qa.894.raw.train.txt"
    path.write_text(path.read_text().replace("picture", "poster"))
    assert make(Daquar, root=str(root)).fingerprint() != first


def test_the_suite_validates_on_the_fixture(root, run_cli, monkeypatch, tmp_path):
    (tmp_path / "daquar").symlink_to(root)
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    result = run_cli("validate", SUITE)
    assert result.code == 0, result.err
