"""The HAM10000 loader on tiny copies of the layouts users have (tests/fixtures_ham10000.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import fixtures_ham10000 as fx
import numpy as np
import pandas as pd
import pytest
from mmbench_datasets import loading
from mmbench_datasets.ham10000 import CLASSES, TEMPLATES, Ham10000, render_column
from support import make

from mmbench.errors import UserError
from mmbench.splits import split_indices

SUITE = Path(__file__).resolve().parents[1] / "suites" / "datasets" / "ham10000.toml"


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> dict[str, Path]:
    """One copy per layout, built once: tests that change files copy one first."""
    out = {}
    for layout in fx.LAYOUTS:
        out[layout] = tmp_path_factory.mktemp(f"ham10000-{layout}")
        fx.build(out[layout], layout)
    return out


@pytest.fixture
def copy(copies, tmp_path) -> Path:
    """A private copy of the csv layout, free to break."""
    return Path(shutil.copytree(copies["csv"], tmp_path / "ham10000"))


def load(root: Path, **params):
    return make(Ham10000, root=str(root), **params).load()


@pytest.mark.parametrize("layout", fx.LAYOUTS)
def test_every_layout_reads_every_row_with_its_label_and_image(copies, layout):
    rows = fx.rows()
    table = load(copies[layout])
    assert list(table.ids) == [r["image_id"] for r in rows]
    assert table.classes == CLASSES and table.task == "multiclass"
    assert [CLASSES[k] for k in table.labels] == [r["dx"] for r in rows]
    images = table.modalities["image"]
    assert all(isinstance(p, str) and Path(p).is_file() and Path(p).stem == i for p, i in zip(images, table.ids))
    assert table.split is None and table.skipped == {}


def test_an_image_in_two_folders_is_read_once_from_a_stable_place_and_identity_ignores_the_copy(copies):
    """Kaggle's mirror holds every image twice (HAM10000_images_part_1/ and ham10000_images_part_1/)."""
    kaggle = load(copies["kaggle"])
    assert all("/HAM10000_images_part_" in p for p in kaggle.modalities["image"])
    for layout in ("csv", "kaggle"):  # copied keeping modification times (cp -p, rsync -a), as the fixture does not
        for path in copies[layout].rglob("*"):
            os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    fingerprint = {layout: make(Ham10000, root=str(copies[layout])).fingerprint() for layout in ("csv", "kaggle")}
    assert fingerprint["csv"] == fingerprint["kaggle"]


def test_images_are_found_in_any_folder_but_not_in_zip_debris_and_a_link_loop_ends(copy):
    part_2 = copy / "HAM10000_images_part_2"
    moved = copy / "extra" / "deeper"
    moved.parent.mkdir()
    part_2.rename(moved)
    debris = copy / "__MACOSX" / "HAM10000_images_part_1"
    debris.mkdir(parents=True)
    (debris / "ISIC_0024306.jpg").write_bytes(b"resource fork")  # sorts before the real one
    (debris / "._ISIC_0024307.jpg").write_bytes(b"resource fork")
    (copy / "extra" / "loop").symlink_to(copy, target_is_directory=True)
    table = load(copy)
    assert len(table) == len(fx.rows()) and table.skipped == {}
    images = table.modalities["image"]
    assert images[0] == str(copy / "HAM10000_images_part_1" / "ISIC_0024306.jpg")
    assert images[-1] == str(moved / f"{table.ids[-1]}.jpg")


def test_the_dataverse_tab_reads_like_the_csv(copies):
    """Quoted strings, bare numbers and the extra `dataset` column, one folder down."""
    csv, tab = load(copies["csv"]), load(copies["tab"])
    assert tab.modalities["text"] == csv.modalities["text"]
    pd.testing.assert_frame_equal(tab.modalities["tabular"], csv.modalities["tabular"])
    sources = load(copies["tab"], tabular_columns=["age", "dataset"]).modalities["tabular"]["dataset"]
    assert set(sources) == set(fx.SOURCES)


def test_the_default_text_leaves_out_dx_type_and_the_paper_template_is_quoted_exactly(copies):
    rows = fx.rows()
    leak_free = load(copies["csv"]).modalities["text"]
    paper = load(copies["csv"], template="paper").modalities["text"]
    dx_types = set(fx.DX_TYPE.values())
    assert not any(word in text for text in leak_free for word in [*dx_types, "diagnosed", *CLASSES])
    first = rows[0]
    assert paper[0] == (f"Patient diagnosed via {first['dx_type']}. Age: {int(float(first['age']))} years. "
                        f"Sex: {first['sex']}. Localization: {first['localization']}.")
    assert leak_free[0] == paper[0].split(". ", 1)[1]
    no_age = next(i for i, r in enumerate(rows) if not r["age"])
    assert leak_free[no_age].startswith("Age: unknown years.")
    assert make(Ham10000, root=str(copies["csv"]), template="paper").info() == {"text template": TEMPLATES["paper"]}


def test_vectorised_templates_print_what_loading_render_prints():
    frame = pd.DataFrame({"a": [1.0, np.nan, 2.5, np.inf], "b": ["x", None, "  ", "y z"],
                          "c": pd.Series(["p", "q", np.nan, "r"], dtype="str")})
    template = "A {a}, B {b}; C {c}."
    expected = [loading.render(template, row) for row in frame.to_dict("records")]
    assert render_column(template, frame) == expected
    with pytest.raises(UserError, match="d"):
        render_column("{d}", frame)


def test_tabular_holds_age_sex_localization_and_dx_type_only_when_asked(copies):
    table = load(copies["csv"])
    tabular = table.modalities["tabular"]
    assert list(tabular.columns) == ["age", "sex", "localization"]
    assert tabular["age"].dtype == np.float64 and tabular["age"].isna().sum() == sum(not r["age"] for r in fx.rows())
    assert "unknown" not in set(tabular["sex"].dropna()) | set(tabular["localization"].dropna())
    assert tabular["localization"].isna().any()  # HAM10000's "unknown" reads as missing
    with_type = load(copies["csv"], tabular_columns=["age", "dx_type"]).modalities["tabular"]
    assert list(with_type.columns) == ["age", "dx_type"]
    for wrong in (["dx"], ["lesion_id"], ["age", "age"]):
        with pytest.raises(UserError, match="tabular_columns"):
            make(Ham10000, root=str(copies["csv"]), tabular_columns=wrong)


def test_no_tabular_columns_gives_image_and_text_only_as_the_papers_fuse_them(copies):
    """Restrepo et al. and the modality-gap paper fuse image and text: a suite drops the table with [], and the
    runner then keeps no tabular encoder for the dataset."""
    dataset = make(Ham10000, root=str(copies["csv"]), tabular_columns=[])
    table = dataset.load()
    assert dataset.raw_modalities() == ("image", "text")
    assert set(table.modalities) == {"image", "text"}
    assert table.modalities["text"] == load(copies["csv"]).modalities["text"]
    assert make(Ham10000, root=str(copies["csv"])).raw_modalities() == ("image", "text", "tabular")


def test_lesions_are_groups_and_never_cross_splits(copies):
    table = load(copies["csv"])
    assert list(table.groups) == [r["lesion_id"] for r in fx.rows()]
    parts = split_indices(table, 0.2, 0.2, seed=0)
    owner = {}
    for name, rows in parts.items():
        assert len(rows)
        for group in table.groups[rows]:
            assert owner.setdefault(group, name) == name
    assert sum(len(r) for r in parts.values()) == len(table)


@pytest.mark.parametrize("column, row, value, sample, reason", [
    (None, 44, None, "ISIC_0024350", "no image file ISIC_0024350.jpg"),  # None: delete the row's image
    ("dx", 3, "melanoma", "ISIC_0024309", "dx 'melanoma' is not one of nv, mel"),
    ("dx", 5, "", "ISIC_0024311", "no dx"),
    ("age", 4, "forty", "ISIC_0024310", "age 'forty' is not a number"),
    ("image_id", 6, "ISIC_0024306", "ISIC_0024306 (metadata row 7)", "repeats an earlier row"),
])
def test_a_bad_sample_stops_the_load_naming_it_or_is_skipped_and_counted(copy, column, row, value, sample, reason):
    meta = pd.read_csv(copy / "HAM10000_metadata.csv", dtype=str, keep_default_na=False)
    if column is None:
        next(copy.rglob(f"{meta.loc[row, 'image_id']}.jpg")).unlink()
    else:
        meta.loc[row, column] = value
        meta.to_csv(copy / "HAM10000_metadata.csv", index=False)
    with pytest.raises(UserError, match="on_bad_sample") as error:
        load(copy)
    assert sample in str(error.value) and reason in str(error.value)
    table = load(copy, on_bad_sample="skip")
    assert len(table) == len(fx.rows()) - 1
    assert list(table.skipped) == [sample] and reason in table.skipped[sample]


def test_a_truncated_image_is_named_at_load_and_skip_leaves_it_out(copy):
    """A copy cut short (half its bytes, no end-of-image marker) fails the load naming the
    sample and its file, not mid-run in the encoder; "skip" leaves it out and counts it."""
    image = next(copy.rglob("ISIC_0024310.jpg"))
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    with pytest.raises(UserError, match=r"ISIC_0024310: image file '.*ISIC_0024310.jpg' is truncated"):
        load(copy)
    table = load(copy, on_bad_sample="skip")
    assert len(table) == len(fx.rows()) - 1
    assert list(table.skipped) == ["ISIC_0024310"] and "truncated" in table.skipped["ISIC_0024310"]


def test_upper_case_labels_and_padded_cells_are_read_as_the_same_values(copy):
    text = (copy / "HAM10000_metadata.csv").read_text().replace(",nv,", ", NV ,")
    (copy / "HAM10000_metadata.csv").write_text(text)
    table = load(copy)
    assert table.skipped == {} and (table.labels[: text.count(", NV ,")] == 0).all()


def test_a_missing_root_or_metadata_file_says_what_to_download_and_where(tmp_path, copy):
    for root in (tmp_path / "nowhere", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        with pytest.raises(UserError) as error:
            make(Ham10000, root=str(root)).fingerprint()
        message = str(error.value)
        assert "HAM10000_metadata.csv" in message and "10.7910/DVN/DBW86T" in message and "CC BY-NC" in message
    (copy / "HAM10000_metadata.csv").rename(copy / "metadata_2018.csv")
    with pytest.raises(UserError, match="HAM10000_metadata.csv"):
        load(copy)
    assert len(load(copy, metadata="metadata_2018.csv")) == len(fx.rows())
    with pytest.raises(UserError, match="parameter metadata"):
        load(copy, metadata="other.csv")


def test_a_metadata_file_without_the_label_column_names_what_it_lacks(copy):
    meta = pd.read_csv(copy / "HAM10000_metadata.csv", dtype=str)
    meta.drop(columns=["dx"]).to_csv(copy / "HAM10000_metadata.csv", index=False)
    with pytest.raises(UserError, match="lacks columns dx"):
        load(copy)


def test_the_fingerprint_follows_the_metadata_content_and_the_image_files(copy):
    def fingerprint() -> str:
        return make(Ham10000, root=str(copy)).fingerprint()

    before = fingerprint()
    assert fingerprint() == before
    (copy / "unrelated.jpg").write_bytes(b"not listed in the metadata")
    assert fingerprint() == before
    (copy / "HAM10000_images_part_1" / "ISIC_0024306.jpg").write_bytes(b"a different image")
    changed_image = fingerprint()
    assert changed_image != before
    meta = copy / "HAM10000_metadata.csv"
    meta.write_text(meta.read_text().replace("HAM_0000000", "HAM_0000999"))
    assert fingerprint() not in (before, changed_image)


def test_datasets_info_shows_the_loader_template_and_counts(copies, run_cli):
    result = run_cli("datasets", "info", "ham10000", "--set", f"root={copies['tab']}", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["n"] == len(fx.rows()) and summary["classes"] == list(CLASSES)
    assert summary["groups"] == len({r["lesion_id"] for r in fx.rows()})
    assert summary["info"] == {"text template": TEMPLATES["leak_free"]}
    assert summary["example_text"].startswith("Age: ")


def test_the_suite_validates_against_a_copy_under_mmbench_data(copies, run_cli, tmp_path, monkeypatch):
    shutil.copytree(copies["tab"], tmp_path / "ham10000")
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    result = run_cli("validate", SUITE)
    assert result.code == 0, result.err + result.out


def test_a_run_reads_images_text_and_table_end_to_end(copies, run_cli, tmp_path, monkeypatch):
    shutil.copytree(copies["csv"], tmp_path / "ham10000")
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text("""
[suite]
name = "ham"
seeds = [0]
threads = 1

[[datasets]]
name = "ham10000"
root = "$MMBENCH_DATA/ham10000"

[[encoders]]
image = { name = "color_histogram", bins = 4 }
text = { name = "tfidf_svd", n_components = 8 }
tabular = "tabular"

[[fusions]]
name = "early"
train = { epochs = 2 }
""")
    result = run_cli("run", "s.toml")
    assert result.code == 0, result.err + result.out
    (path,) = (tmp_path / "results" / "ham").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok"
    assert record["data"]["dims"]["image"] == 12 and record["data"]["dims"]["text"] == 8


IMAGE_ONLY = """
[suite]
name = "ham_image"
seeds = [0]
threads = 1

[[datasets]]
name = "ham10000"
root = "$MMBENCH_DATA/ham10000"

[[encoders]]
image = { name = "color_histogram", bins = 4 }

[[fusions]]
name = "unimodal"
modality = "image"
train = { epochs = 2 }
"""


def test_an_image_fusion_needs_only_an_image_encoder_and_the_text_is_not_encoded(copies, run_cli, tmp_path,
                                                                                  monkeypatch):
    shutil.copytree(copies["csv"], tmp_path / "ham10000")
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    Path("s.toml").write_text(IMAGE_ONLY)
    assert run_cli("validate", "s.toml").code == 0
    result = run_cli("run", "s.toml")
    assert result.code == 0, result.err + result.out
    (path,) = (tmp_path / "results" / "ham_image").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok", record["error"]
    assert record["data"]["dims"] == {"image": 12} and set(record["extraction"]) == {"image"}


def test_validate_names_a_modality_a_fusion_reads_without_an_encoder(copies, run_cli, tmp_path, monkeypatch):
    shutil.copytree(copies["csv"], tmp_path / "ham10000")
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    (tmp_path / "s.toml").write_text(IMAGE_ONLY.replace('name = "unimodal"\nmodality = "image"', 'name = "early"'))
    result = run_cli("validate", tmp_path / "s.toml")
    assert result.code == 2
    assert "has raw 'text' and 'tabular' items, which fusion 'early(epochs=2)' reads" in result.err
    assert 'has no encoder for them: add text = "...", tabular = "..."' in result.err


def test_images_added_to_the_dataset_are_the_only_ones_encoded(copies, run_cli, tmp_path, monkeypatch):
    root = Path(shutil.copytree(copies["csv"], tmp_path / "ham10000"))
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    Path("s.toml").write_text(IMAGE_ONLY)
    assert run_cli("run", "s.toml").code == 0
    n = len(fx.rows())

    # five lesions photographed since: new rows in the metadata, new images beside the others
    metadata = root / "HAM10000_metadata.csv"
    lines = metadata.read_text().splitlines()
    added = []
    for k, line in enumerate(lines[1:6]):
        old_id = next(part for part in line.split(",") if part.startswith("ISIC_"))
        new_id = f"ISIC_9{k:06d}"
        (old,) = root.rglob(f"{old_id}.jpg")
        shutil.copy(old, old.with_name(f"{new_id}.jpg"))
        added.append(line.replace(old_id, new_id))
    metadata.write_text("\n".join(lines + added) + "\n")
    Path("s.toml").write_text(IMAGE_ONLY.replace("seeds = [0]", "seeds = [1]"))

    dry = run_cli("run", "s.toml", "--dry-run")
    assert dry.code == 0, dry.err
    assert f"color_histogram(bins=4): 5 image items to encode, {n} cached" in dry.out
    assert run_cli("run", "s.toml").code == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "ham_image").glob("*.json")]
    (grown,) = [r for r in records if r["spec"]["seed"] == 1]
    assert grown["status"] == "ok", grown["error"]
    assert grown["extraction"]["image"]["rows_encoded"] == 5
    assert grown["extraction"]["image"]["rows_cached"] == n


def test_a_copy_elsewhere_is_loaded_from_where_it_is(copies, tmp_path):
    """One process (a suite, a test session) loading two copies of one dataset: same
    fingerprint (it leaves the root out), different paths."""
    from mmbench.registry import load_registry
    from mmbench.run import _load
    from mmbench.suite import PluginConfig

    registry = load_registry()
    tables = []
    for name in ("a", "b"):
        root = Path(shutil.copytree(copies["csv"], tmp_path / name))
        config = PluginConfig(kind="dataset", name="ham10000", version="1",
                              params=make(Ham10000, root=str(root)).params, label=name)
        tables.append((root, _load(config, make(Ham10000, root=str(root)).fingerprint(), registry)))
    assert all(str(path).startswith(str(root)) for root, table in tables for path in table.modalities["image"])
