"""BRSET and mBRSET loaders on tiny copies of their PhysioNet layouts (tests/fixtures_brset.py)."""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
from fixtures_brset import brset_rows, mbrset_rows, write_brset, write_mbrset

from mmbench.errors import UserError
from mmbench.splits import split_indices
from mmbench_datasets.brset import PAPER_FINDINGS, PATHOLOGIES, Brset, Mbrset
from support import make

REPO = Path(__file__).resolve().parents[1]
#: words of the BRSET paper prompt that state fundus findings (graded with DR on the same photo)
FINDINGS = ("optic disc", "vessels", "macula", "edema", "scar", "nevus", "amd", "occlusion", "drusens",
            "hemorrhage", "detachment", "myopic", "cup disc", "conditions")


@pytest.fixture(scope="module")
def brset_root(tmp_path_factory) -> Path:
    return write_brset(tmp_path_factory.mktemp("data") / "brset")


@pytest.fixture(scope="module")
def mbrset_root(tmp_path_factory) -> Path:
    return write_mbrset(tmp_path_factory.mktemp("data") / "mbrset")


# -- BRSET --------------------------------------------------------------------------------
def test_brset_reads_labels_images_groups_and_the_metadata_table(brset_root):
    table = make(Brset, root=str(brset_root)).load()
    rows = brset_rows()
    assert table.task == "binary" and table.classes == ("no_dr", "dr")
    assert list(table.ids) == [r["image_id"] for r in rows]
    assert list(table.labels) == [int(r["DR_ICDR"]) > 0 for r in rows]
    assert list(table.groups) == [r["patient_id"] for r in rows]  # both eyes of a patient: one group
    assert table.split is None and table.skipped == {}
    assert table.modalities["image"][0] == str(brset_root / "fundus_photos" / "img00001.jpg")
    tabular = table.modalities["tabular"]
    assert list(tabular.columns) == ["patient_age", "patient_sex", "diabetes", "diabetes_time_y", "insuline",
                                     "comorbidities"]
    # hand-typed numbers read as the authors read them: "5O" is 50, "Não" no duration
    assert tabular["patient_age"][2] == 50.0 and np.isnan(tabular["patient_age"][4])
    assert np.isnan(tabular["diabetes_time_y"][6]) and tabular["diabetes_time_y"][2] == 3.0


def test_dr_3class_and_pathologies_follow_the_label_rules(brset_root):
    grades = [int(r["DR_ICDR"]) for r in brset_rows()]
    three = make(Brset, root=str(brset_root), task="dr_3class").load()
    assert three.task == "multiclass" and three.classes == ("no_dr", "npdr", "pdr")
    assert list(three.labels) == [0 if g == 0 else 2 if g == 4 else 1 for g in grades]
    multi = make(Brset, root=str(brset_root), task="pathologies").load()
    assert multi.task == "multilabel" and multi.classes == PATHOLOGIES
    expected = [[int(r[name]) for name in PATHOLOGIES] for r in brset_rows()]
    assert multi.labels.tolist() == expected


@pytest.mark.parametrize("label_file", ["labels.csv", "labels_brset.csv", "label_brset.csv"])
def test_label_file_names_and_renamed_columns_of_later_releases_read_alike(brset_root, tmp_path, label_file):
    later = write_brset(tmp_path / "brset", label_file=label_file, later_spelling=True)
    for task in ("dr_binary", "pathologies"):
        first = make(Brset, root=str(brset_root), task=task).load()
        again = make(Brset, root=str(later), task=task).load()
        assert np.array_equal(first.labels, again.labels)
        assert first.modalities["text"] == again.modalities["text"]
    # a tabular column may be named either way; it keeps the name it was asked by
    table = make(Brset, root=str(later), tabular_columns=["insulin", "drusens", "patient_age"]).load()
    assert list(table.modalities["tabular"].columns) == ["insulin", "drusens", "patient_age"]


def test_paper_template_reproduces_the_authors_sentence(brset_root):
    table = make(Brset, root=str(brset_root), template="paper").load()
    # patient 2 (rows 3-4): moderate DR, age typed "5O", female, left eye in row 4
    assert table.modalities["text"][3] == (
        "An image from the left eye of a female patient, aged 50.0 years, with comorbidities: diabetes1, SAH, "
        "diabetes diagnosed for 3.0 years, not using insulin. The optic disc is present, vessels are present, "
        "and the macula is absent. Conditions include macular edema: absent, scar: absent, nevus: absent, "
        "amd: absent, vascular occlusion: absent, drusens: absent, hemorrhage: present, retinal detachment: "
        "absent, myopic fundus: absent, increased cup disc ratio: absent, and other conditions: absent.")
    # the authors' rule: a missing insulin answer reads as "using insulin"
    assert "using insulin." in table.modalities["text"][0] and "not using" not in table.modalities["text"][0]
    template = make(Brset, root=str(brset_root), template="paper").info()["text template"]
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    assert fields == {"eye", "sex", "age", "comorbidities", "diabetes_time", "insulin", "optic_disc", "vessels",
                      "macula", *PAPER_FINDINGS}


def test_leak_free_template_is_the_default_and_states_no_finding(brset_root):
    dataset = make(Brset, root=str(brset_root))
    texts = dataset.load().modalities["text"]
    paper = make(Brset, root=str(brset_root), template="paper").load().modalities["text"]
    assert dataset.params["template"] == "leak_free"
    for text in (*texts, dataset.info()["text template"]):
        assert not any(word in text.lower() for word in FINDINGS), text
    # the paper's first sentence, except that an unknown insulin use says so
    assert paper[3].startswith(texts[3])
    assert texts[0].endswith("with no diabetes duration reported, with no insulin use reported.")
    assert "aged no age reported years" in texts[4] and "with no diabetes duration reported" in texts[6]


def test_settings_that_would_give_the_label_away_are_refused(brset_root):
    with pytest.raises(UserError, match="11 of the 13 pathology labels"):
        make(Brset, root=str(brset_root), task="pathologies", template="paper")
    with pytest.raises(UserError, match=r"\['DR_ICDR'\] hold the label"):
        make(Brset, root=str(brset_root), tabular_columns=["patient_age", "DR_ICDR"])
    with pytest.raises(UserError, match=r"\['drusen'\] hold the label"):
        make(Brset, root=str(brset_root), task="pathologies", tabular_columns=["drusen"])


def test_no_patient_crosses_splits(brset_root, mbrset_root):
    for table in (make(Brset, root=str(brset_root)).load(), make(Mbrset, root=str(mbrset_root)).load()):
        for seed in (0, 1, 2):
            parts = split_indices(table, 0.2, 0.25, seed)
            patients = {name: set(table.groups[rows]) for name, rows in parts.items()}
            assert all(len(rows) for rows in parts.values())
            assert not patients["train"] & patients["val"] and not patients["train"] & patients["test"]
            assert not patients["val"] & patients["test"]


def _broken_brset(root: Path) -> Path:
    rows = brset_rows()
    rows[1]["DR_ICDR"] = "7"
    rows[5]["DR_ICDR"] = "moderate"
    return write_brset(root, rows, skip_images=["img00009"])


def test_a_bad_sample_stops_the_load_naming_it(tmp_path):
    root = _broken_brset(tmp_path / "brset")
    with pytest.raises(UserError, match=r"sample img00002: DR_ICDR is '7'; expected an ICDR grade 0-4.*"
                                        r"on_bad_sample = \"skip\""):
        make(Brset, root=str(root)).load()


def test_skipped_samples_are_left_out_and_counted(tmp_path):
    root = _broken_brset(tmp_path / "brset")
    (root / "fundus_photos" / "img00010.jpg").write_bytes(b"")
    table = make(Brset, root=str(root), on_bad_sample="skip").load()
    assert set(table.skipped) == {"img00002", "img00006", "img00009", "img00010"}
    assert "not found" in table.skipped["img00009"] and "empty" in table.skipped["img00010"]
    assert len(table) == len(brset_rows()) - 4 and not set(table.skipped) & set(table.ids)
    assert len(table.modalities["tabular"]) == len(table.modalities["text"]) == len(table)


def test_a_missing_root_or_image_folder_says_what_to_download(tmp_path):
    with pytest.raises(UserError) as missing:
        make(Brset, root=str(tmp_path / "nowhere")).fingerprint()
    message = str(missing.value)
    for part in ("labels.csv or labels_brset.csv or label_brset.csv", "fundus_photos/",
                 "https://physionet.org/content/brazilian-ophthalmological/", "credentialed", "data use agreement"):
        assert part in message
    (tmp_path / "labels.csv").write_text("image_id,patient_id,DR_ICDR\nimg00001,1,0\n")
    with pytest.raises(UserError, match="looked for fundus_photos/") as no_images:
        make(Brset, root=str(tmp_path)).load()
    assert "labels.csv or" not in str(no_images.value)


def test_a_label_file_without_the_official_columns_is_named(tmp_path):
    root = write_brset(tmp_path / "brset")
    header, *body = (root / "labels.csv").read_text().splitlines()
    (root / "labels.csv").write_text("\n".join([header.replace("patient_id", "patient"), *body]) + "\n")
    with pytest.raises(UserError, match="has no column 'patient_id'; it has image_id, patient, camera"):
        make(Brset, root=str(root)).load()


def test_fingerprint_follows_the_label_file_and_the_images_not_the_location(tmp_path, brset_root):
    copy = tmp_path / "copy"
    shutil.copytree(brset_root, copy)
    before = make(Brset, root=str(copy)).fingerprint()
    assert make(Brset, root=str(brset_root)).fingerprint() == before  # a moved copy is the same data
    assert make(Brset, root=str(copy), task="dr_3class").fingerprint() != before
    labels = copy / "labels.csv"
    labels.write_text(labels.read_text().replace("img00003,2,Canon CR,5O", "img00003,2,Canon CR,51", 1))
    edited = make(Brset, root=str(copy)).fingerprint()
    assert edited != before
    (copy / "fundus_photos" / "img00099.jpg").write_bytes(b"x")
    assert make(Brset, root=str(copy)).fingerprint() != edited


def test_datasets_info_shows_the_loader_sensibly(run_cli, brset_root):
    result = run_cli("datasets", "info", "brset", "--set", f"root={brset_root}", "--set", "task=dr_3class", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["n"] == 16 and summary["groups"] == 8
    assert summary["splits"]["(no official split)"] == {"n": 16, "no_dr": 8, "npdr": 6, "pdr": 2}
    assert summary["info"]["label"].startswith("DR_ICDR 0 -> no_dr, 1-3 -> npdr")
    assert summary["example_text"].startswith("An image from the right eye of a male patient, aged 40.0 years")


# -- mBRSET -------------------------------------------------------------------------------
def test_mbrset_reads_its_layout_and_counts_ungraded_photos_as_skipped(mbrset_root):
    table = make(Mbrset, root=str(mbrset_root)).load()  # on_bad_sample = "error": ungraded is not an error
    graded = [r for r in mbrset_rows() if r["final_icdr"]]
    assert list(table.ids) == [r["file"][:-4] for r in graded]  # "1.1.jpg" -> "1.1"
    assert list(table.labels) == [int(r["final_icdr"]) > 0 for r in graded]
    assert list(table.groups) == [r["patient"] for r in graded]
    assert table.skipped == {"3.4": "no final_icdr grade (ungradable photo): left out, as the papers do"}
    assert table.modalities["image"][0] == str(mbrset_root / "images" / "1.1.jpg")
    assert table.modalities["tabular"]["educational_level"].dtype == float
    three = make(Mbrset, root=str(mbrset_root), task="dr_3class").load()
    assert list(three.labels) == [0 if g == 0 else 2 if g == 4 else 1 for g in (int(r["final_icdr"]) for r in graded)]


def test_mbrset_texts_follow_the_authors_prompt(mbrset_root):
    paper = make(Mbrset, root=str(mbrset_root), template="paper").load().modalities["text"]
    leak_free = make(Mbrset, root=str(mbrset_root)).load().modalities["text"]
    assert paper[2] == ("An image from the left eye of a male patient, aged 51 years, with comorbidities: "
                        "Systemic Hypertension, diabetes diagnosed for 2 years, using insulin.")
    patient_5 = 4 * 4 - 1  # first photo of patient 5, whose insulin answer is blank (one ungraded photo before)
    assert paper[patient_5].endswith("using insulin.") and not paper[patient_5].endswith("not using insulin.")
    assert leak_free[patient_5].endswith("with no insulin use reported.")
    assert "final_edema" not in make(Mbrset, root=str(mbrset_root)).info()["text template"]
    assert all("edema" not in t for t in leak_free)


def test_mbrset_images_beside_the_csv_and_a_bad_grade(tmp_path):
    rows = mbrset_rows()
    rows[0]["final_icdr"] = "5"
    root = write_mbrset(tmp_path / "mbrset", rows, image_folder=".")
    with pytest.raises(UserError, match="sample 1.1: final_icdr is '5'"):
        make(Mbrset, root=str(root)).load()
    table = make(Mbrset, root=str(root), on_bad_sample="skip").load()
    assert set(table.skipped) == {"1.1", "3.4"} and table.modalities["image"][0] == str(root / "1.2.jpg")
    with pytest.raises(UserError, match="labels_mbrset.csv.*https://physionet.org/content/mbrset/"):
        make(Mbrset, root=str(tmp_path / "empty")).fingerprint()


# -- suites -------------------------------------------------------------------------------
@pytest.fixture
def data_folder(tmp_path, monkeypatch, brset_root, mbrset_root) -> Path:
    """MMBENCH_DATA holding brset/ and mbrset/ as the suites expect."""
    shutil.copytree(brset_root, tmp_path / "data" / "brset")
    shutil.copytree(mbrset_root, tmp_path / "data" / "mbrset")
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.parametrize("suite", ["brset", "mbrset"])
def test_the_dataset_suites_validate_on_a_copy_of_the_layout(run_cli, data_folder, suite):
    result = run_cli("validate", REPO / "suites" / "datasets" / f"{suite}.toml")
    assert result.code == 0, result.out + result.err


def test_a_tiny_mbrset_run_flows_end_to_end(run_cli, data_folder, tmp_path, monkeypatch, write_suite):
    monkeypatch.chdir(tmp_path)
    suite = write_suite("""
        [suite]
        name = "mbrset_tiny"
        seeds = [0]
        threads = 1

        [split]
        val = 0.2
        test = 0.25

        [[datasets]]
        name = "mbrset"
        root = "$MMBENCH_DATA/mbrset"

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
    [path] = sorted((tmp_path / "results" / "mbrset_tiny").glob("*.json"))
    run = json.loads(path.read_text())
    assert run["status"] == "ok"
    assert run["data"]["skipped"]["n"] == 1 and sum(run["data"]["n"].values()) == 23
    assert set(run["data"]["dims"]) == {"image", "text", "tabular"} and 0.0 <= run["metrics"]["auroc"] <= 1.0
