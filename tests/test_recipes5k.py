"""recipes5k: annotation lists, ingredient lines and dish folders as a multiclass dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_vqa import RECIPES, RECIPES_CLASSES, RECIPES_INGREDIENTS, make_recipes5k
from mmbench_datasets.recipes5k import Recipes5k
from support import make

from mmbench.errors import UserError
from mmbench.splits import split_indices

SUITE = Path(__file__).resolve().parent.parent / "suites" / "datasets" / "recipes5k.toml"
ROWS = RECIPES["train"] + RECIPES["val"] + RECIPES["test"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_recipes5k(tmp_path_factory.mktemp("recipes5k"))


def test_dish_folder_is_the_class_and_the_labels_file_picks_the_ingredients(root):
    table = make(Recipes5k, root=str(root)).load()
    assert table.classes == RECIPES_CLASSES and table.groups is None
    assert [table.classes[k] for k in table.labels] == [n.removeprefix("images/").split("/")[0] for n, _ in ROWS]
    # {split}_labels.txt indexes ingredient lines, not classes
    assert table.modalities["text"] == [RECIPES_INGREDIENTS[i].replace(",", ", ") for _, i in ROWS]
    assert table.ids[6] == "apple_pie/2_crumble_apple_pie.jpg"  # a leading images/ is tolerated
    assert all(Path(p).is_file() for p in table.modalities["image"])
    assert list(table.split) == ["train"] * 6 + ["val"] * 3 + ["test"] * 3


def test_the_official_three_way_split_is_used_as_is(root):
    table = make(Recipes5k, root=str(root)).load()
    rows = split_indices(table, val=0.4, test=0.4, seed=3)
    assert {k: sorted(v) for k, v in rows.items()} == {
        "train": list(range(6)), "val": [6, 7, 8], "test": [9, 10, 11]}


def test_simplified_ingredients_and_a_template(root):
    dataset = make(Recipes5k, root=str(root), ingredients="simplified", template="Ingredients: {ingredients}.")
    table = dataset.load()
    assert table.modalities["text"][1] == "Ingredients: apples, sugar, butter, flour."  # "brown sugar" -> "sugar"
    assert dataset.info()["text template"] == "Ingredients: {ingredients}."
    with pytest.raises(UserError, match=r"\{dish\}"):
        make(Recipes5k, root=str(root), template="{dish}")


def test_bad_samples_are_named_or_skipped_and_counted(tmp_path):
    root = make_recipes5k(tmp_path, skip_images=("pizza/2_veggie_pizza.jpg",))
    with pytest.raises(UserError, match=r"sample pizza/2_veggie_pizza\.jpg: image file .* does not exist"):
        make(Recipes5k, root=str(root)).load()
    notes = root / "annotations"
    (notes / "test_labels.txt").write_text("9\n99\nx\n")
    (notes / "test_images.txt").write_text("apple_pie/3_apple_pie.jpg\npizza/3_white_pizza.jpg\nramen/1.jpg\n")
    (notes / "val_images.txt").write_text("apple_pie/0_apple_pie_hostedLargeUrl.jpg\npizza/2_veggie_pizza.jpg\n"
                                          "sushi/2_maki.jpg\n")
    table = make(Recipes5k, root=str(root), on_bad_sample="skip").load()
    assert "listed in train and again in val" in table.skipped["apple_pie/0_apple_pie_hostedLargeUrl.jpg"]
    assert "does not exist" in table.skipped["pizza/2_veggie_pizza.jpg"]
    assert "label '99'" in table.skipped["pizza/3_white_pizza.jpg"]
    assert "folder 'ramen'" in table.skipped["ramen/1.jpg"]
    assert len(table) == 12 - 4 and len(table.skipped) == 4
    (notes / "test_labels.txt").write_text("9\n")
    with pytest.raises(UserError, match="test_images.txt has 3 lines but test_labels.txt 1"):
        make(Recipes5k, root=str(root), on_bad_sample="skip").load()


def test_a_missing_root_says_what_was_looked_for_and_where_to_get_it(tmp_path):
    with pytest.raises(UserError) as info:
        make(Recipes5k, root=str(tmp_path)).fingerprint()
    message = str(info.value)
    assert "annotations/classes_Recipes5k.txt" in message and "annotations/test_labels.txt" in message
    assert "images/<dish>/*.jpg" in message and "www.ub.edu/cvub/recipes5k" in message


def test_fingerprint_follows_the_annotations_and_the_image_list(tmp_path):
    root = make_recipes5k(tmp_path)
    first = make(Recipes5k, root=str(root)).fingerprint()
    (root / "images" / "sushi" / "2_maki.jpg").unlink()
    second = make(Recipes5k, root=str(root)).fingerprint()
    assert second != first
    (root / "annotations" / "val_labels.txt").write_text("6\n7\n7\n")
    assert make(Recipes5k, root=str(root)).fingerprint() != second


def test_the_suite_validates_and_a_tiny_run_goes_end_to_end(root, run_cli, monkeypatch, tmp_path):
    (tmp_path / "recipes5k").symlink_to(root)
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    result = run_cli("validate", SUITE)
    assert result.code == 0, result.err
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text("""
[suite]
name = "recipes_tiny"
seeds = [0]
threads = 1

[[datasets]]
name = "recipes5k"
root = "$MMBENCH_DATA/recipes5k"

[[encoders]]
image = { name = "color_histogram", bins = 4 }
text = "tfidf_svd"

[[fusions]]
name = "early"
train = { epochs = 2 }
""")
    result = run_cli("run", tmp_path / "tiny.toml")
    assert result.code == 0, result.err
    [path] = (tmp_path / "results" / "recipes_tiny").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok"
    assert record["data"]["dims"]["image"] == 12  # 3 channels x 4 bins: the images were decoded
