"""coco_qa: COCO-QA's split files and COCO images found by id, as a multiclass dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fixtures_vqa import COCO_QA, make_coco_qa
from mmbench_datasets.coco_qa import CocoQa
from support import make

from mmbench.errors import UserError
from mmbench.splits import split_indices

SUITE = Path(__file__).resolve().parent.parent / "suites" / "datasets" / "coco_qa.toml"
ROWS = COCO_QA["train"] + COCO_QA["test"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_coco_qa(tmp_path_factory.mktemp("cocoqa"))


def test_questions_answers_images_groups_and_the_official_split(root):
    table = make(CocoQa, root=str(root)).load()
    assert list(table.ids[:2]) == ["train-000001", "train-000002"] and table.ids[-1] == "test-000004"
    assert table.classes == ("bench", "car", "cat", "red", "two")  # every answer seen, sorted
    assert [table.classes[k] for k in table.labels] == [a for _, a, _, _ in ROWS]
    assert table.modalities["text"] == [q for q, _, _, _ in ROWS]
    assert list(table.split) == ["train"] * 8 + ["test"] * 4
    assert list(table.groups) == [str(i) for _, _, i, _ in ROWS]  # one group per COCO image
    names = [Path(p).name for p in table.modalities["image"]]  # all three file-name variants
    assert names[0] == "COCO_train2014_000000000009.jpg" and names[5] == "000000000042.jpg"
    assert names[-1] == "000000000074.jpg" and names[-3] == "COCO_val2014_000000000061.jpg"
    assert all(Path(p).is_file() for p in table.modalities["image"])  # paths, decoded later
    assert "tabular" not in table.modalities and table.skipped == {}


def test_validation_is_carved_from_train_without_splitting_an_image(root):
    table = make(CocoQa, root=str(root)).load()
    for seed in range(5):
        rows = split_indices(table, val=0.3, test=0.2, seed=seed)
        assert sorted(rows["test"]) == list(range(8, 12))  # the official test split stays
        groups = {name: set(table.groups[index]) for name, index in rows.items()}
        assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
        assert len(rows["val"]) > 0


def test_the_question_type_is_opt_in_as_table_or_text(root):
    dataset = make(CocoQa, root=str(root), tabular_columns=["type"], template="{type}: {question}")
    assert dataset.raw_modalities() == ("image", "text", "tabular")
    assert make(CocoQa, root=str(root)).raw_modalities() == ("image", "text")
    table = dataset.load()
    assert isinstance(table.modalities["tabular"], pd.DataFrame)
    assert list(table.modalities["tabular"]["type"][:4]) == ["object", "number", "color", "location"]
    assert table.modalities["text"][1] == "number: how many dogs are on the grass ?"
    assert dataset.info() == {"text template": "{type}: {question}"}
    with pytest.raises(UserError, match="'age'.*only one is 'type'"):
        make(CocoQa, root=str(root), tabular_columns=["age"])
    with pytest.raises(UserError, match=r"\{answer\}.*not a column.*\{question\}"):
        make(CocoQa, root=str(root), template="{question} {answer}")


def test_types_txt_is_needed_only_when_used(tmp_path):
    root = make_coco_qa(tmp_path, with_types=False)
    assert len(make(CocoQa, root=str(root)).load()) == 12
    with pytest.raises(UserError, match="train/types.txt"):
        make(CocoQa, root=str(root), tabular_columns=["type"]).fingerprint()


def test_a_missing_image_stops_the_load_naming_the_sample_or_is_skipped_and_counted(tmp_path):
    root = make_coco_qa(tmp_path, skip_images=(25,))
    with pytest.raises(UserError, match=r"sample train-000004: no image file for COCO id 25.*000000000025\.jpg"):
        make(CocoQa, root=str(root)).load()
    table = make(CocoQa, root=str(root), on_bad_sample="skip").load()
    assert len(table) == 11 and list(table.skipped) == ["train-000004"]


def test_bad_lines_are_bad_samples_and_misaligned_files_an_error(tmp_path):
    root = make_coco_qa(tmp_path)
    answers = (root / "test" / "answers.txt").read_text().splitlines()
    (root / "test" / "answers.txt").write_text("\n".join(["", *answers[1:]]) + "\n")
    table = make(CocoQa, root=str(root), on_bad_sample="skip", tabular_columns=["type"]).load()
    assert table.skipped == {"test-000001": "empty answer (test/*.txt line 1)"}
    (root / "train" / "types.txt").write_text("0\n1\n7\n3\n0\n2\n0\n1\n")
    with pytest.raises(UserError, match="sample train-000003: question type '7'"):
        make(CocoQa, root=str(root), tabular_columns=["type"]).load()
    (root / "train" / "answers.txt").write_text("cat\ntwo\n")
    with pytest.raises(UserError, match="line counts differ.*train/answers.txt: 2"):
        make(CocoQa, root=str(root)).load()


def test_a_missing_root_says_what_was_looked_for_and_where_to_get_it(tmp_path):
    with pytest.raises(UserError) as info:
        make(CocoQa, root=str(tmp_path / "nowhere")).fingerprint()
    message = str(info.value)
    assert "not a folder" in message and "train/questions.txt" in message and "test/img_ids.txt" in message
    assert "cs.toronto.edu/~mren" in message and "cocodataset.org" in message


def test_fingerprint_follows_the_answers_and_the_images_not_the_folder(root, tmp_path):
    import shutil

    first = make(CocoQa, root=str(root)).fingerprint()
    copy = Path(shutil.copytree(root, tmp_path / "copy"))
    assert make(CocoQa, root=str(copy)).fingerprint() == first  # a moved copy is the same data
    (copy / "train" / "answers.txt").write_text((copy / "train" / "answers.txt").read_text().replace("bench", "park"))
    changed = make(CocoQa, root=str(copy)).fingerprint()
    assert changed != first
    image = next(copy.rglob("COCO_val2014_000000000072.jpg"))
    image.write_bytes(image.read_bytes() + b"\0")
    assert make(CocoQa, root=str(copy)).fingerprint() != changed


def test_datasets_info_and_the_suite_validate_on_the_fixture(root, run_cli, monkeypatch, tmp_path):
    result = run_cli("datasets", "info", "coco_qa", "--root", root)
    assert result.code == 0, result.err
    assert "train" in result.out and "test" in result.out and "{question}" in result.out
    (tmp_path / "cocoqa").symlink_to(root)
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    result = run_cli("validate", SUITE)
    assert result.code == 0, result.err
