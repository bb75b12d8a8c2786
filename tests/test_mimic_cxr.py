"""mimic_cxr: the MIMIC-CXR-JPG layout, CheXpert label rules, report sections, splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures_mimic import FINDING_WORDS, SEED_LABELS, build_mimic_cxr, cxr_study_rows, frontal_id
from mmbench_datasets.mimic_cxr import MimicCxr, report_sections
from support import make

from mmbench.errors import UserError
from mmbench.splits import split_indices

SUITE = Path(__file__).resolve().parents[1] / "suites" / "datasets" / "mimic_cxr.toml"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mimic-cxr-jpg")
    build_mimic_cxr(folder)
    return folder


@pytest.fixture(scope="module")
def studies() -> list[dict]:
    return cxr_study_rows()  # what build_mimic_cxr wrote


def load(root: Path, **params):
    return make(MimicCxr, root=str(root), **params).load()


def test_one_frontal_image_per_study_with_labels_groups_and_official_split(root, studies):
    table = load(root)
    assert table.task == "multilabel" and table.classes == tuple(SEED_LABELS)
    assert len(table) == len(studies)  # the lateral images are filtered out
    index = {i: k for k, i in enumerate(table.ids)}
    for n, st in enumerate(studies):
        row = index[frontal_id(studies, n)]
        expected = [1 if st["labels"][c] == 1.0 else 0 for c in SEED_LABELS]  # blank and -1 -> 0
        assert table.labels[row].tolist() == expected
        assert table.groups[row] == st["subject"]
        assert table.split[row] == {"validate": "val"}.get(st["split"], st["split"])
        image = Path(table.modalities["image"][row])
        assert image.is_file() and image.parent.name == f"s{st['study']}"
    assert list(table.modalities["tabular"].columns) == ["ViewPosition", "PerformedProcedureStepDescription"]
    assert set(table.modalities["tabular"]["ViewPosition"]) == {"PA", "AP"}


def test_uncertain_policy(root, studies):
    uncertain = next(n for n, st in enumerate(studies) if st["labels"]["Edema"] == -1.0)
    sample, edema = frontal_id(studies, uncertain), SEED_LABELS.index("Edema")
    zero, one = load(root, uncertain="zero"), load(root, uncertain="one")
    assert zero.labels[list(zero.ids).index(sample), edema] == 0
    assert one.labels[list(one.ids).index(sample), edema] == 1
    dataset = make(MimicCxr, root=str(root), uncertain="ignore")
    ignored = dataset.load()
    assert sample not in ignored.ids and len(ignored) == len(zero) - 1
    assert dataset.info()["dropped as uncertain"] == "1" and ignored.skipped == {}


def test_views_and_images_per_study(root, studies):
    everything = load(root, views=[], one_per_study=False)
    assert len(everything) == 2 * len(studies)
    assert set(everything.modalities["tabular"]["ViewPosition"]) == {"PA", "AP", "LATERAL"}
    pa_only = load(root, views=["PA"])
    assert set(pa_only.modalities["tabular"]["ViewPosition"]) == {"PA"}
    assert len(pa_only) == sum(st["view"] == "PA" for st in studies)


def test_leak_free_text_is_the_indication_and_paper_text_holds_the_findings(root):
    leak_free, paper = load(root), load(root, report_sections="findings_impression")
    words = list(FINDING_WORDS.values())
    assert all("eval for pneumonia" in t for t in leak_free.modalities["text"])
    assert not any(w in t for t in leak_free.modalities["text"] for w in words)
    assert any(w in t for t in paper.modalities["text"] for w in words)
    dataset = make(MimicCxr, root=str(root))
    assert "INDICATION" in dataset.info()["text template"]
    assert dataset.raw_modalities() == ("image", "text", "tabular")


def test_report_sections_and_absent_section_is_missing_text(root, studies):
    text = (" FINAL REPORT\n INDICATION:  ___ with cough\n \n FINDINGS: \n \n Mild edema.\n"
            " IMPRESSION: \n No change.\n")
    assert report_sections(text, "indication") == "___ with cough"
    assert report_sections(text, "findings_impression") == "Mild edema. No change."
    assert report_sections(text, "full").startswith("FINAL REPORT INDICATION:")
    impression = load(root, report_sections="impression")
    without = [frontal_id(studies, n) for n in range(len(studies)) if n % 4 == 1]  # the fixture's reports lacking it
    mask = impression.masks["text"]
    assert sorted(impression.ids[~mask]) == sorted(without)
    assert all(impression.modalities["text"][k] is None for k in np.flatnonzero(~mask))
    no_text = load(root, report_sections="none", tabular_columns=[])
    assert set(no_text.modalities) == {"image"}


def test_groups_never_cross_splits(root):
    table = load(root, official_split=False)
    assert table.split is None
    rows = split_indices(table, 0.2, 0.3, seed=0)
    subjects = {name: set(table.groups[index]) for name, index in rows.items()}
    assert not subjects["train"] & subjects["test"] and not subjects["train"] & subjects["val"]
    assert not subjects["val"] & subjects["test"]


def test_bad_samples_error_names_them_and_skip_counts_them(tmp_path, studies):
    build_mimic_cxr(tmp_path, gz=False)  # the unpacked .csv variant
    missing = frontal_id(studies, 2)
    next(tmp_path.glob(f"files/*/*/*/{missing}.jpg")).unlink()
    chexpert = tmp_path / "mimic-cxr-2.0.0-chexpert.csv"
    lines = chexpert.read_text().splitlines()
    cells = lines[5].split(",")
    cells[2] = "yes"  # Atelectasis: none of 1, 0, -1, blank
    lines[5] = ",".join(cells)
    chexpert.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=f"sample {missing}: image file .* is missing"):
        load(tmp_path)
    table = load(tmp_path, on_bad_sample="skip")
    assert missing in table.skipped and len(table.skipped) == 2
    assert any("Atelectasis = 'yes'" in reason for reason in table.skipped.values())
    assert len(table) == len(studies) - 2


def test_missing_root_and_missing_reports_say_what_to_download(tmp_path, root):
    with pytest.raises(UserError) as error:
        make(MimicCxr, root=str(tmp_path)).fingerprint()
    assert "mimic-cxr-2.0.0-metadata.csv" in str(error.value) and "physionet.org/content/mimic-cxr-jpg" in str(error.value)
    assert "credentialed" in str(error.value).lower()
    copy = tmp_path / "jpg-only"
    build_mimic_cxr(copy, reports=False, n_subjects=2)
    with pytest.raises(UserError, match="mimic-cxr-reports.zip"):
        make(MimicCxr, root=str(copy)).fingerprint()


def test_fingerprint_follows_label_files_and_params(tmp_path):
    build_mimic_cxr(tmp_path)
    before = make(MimicCxr, root=str(tmp_path)).fingerprint()
    assert make(MimicCxr, root=str(tmp_path)).fingerprint() == before
    assert make(MimicCxr, root=str(tmp_path), uncertain="one").fingerprint() != before
    chexpert = tmp_path / "mimic-cxr-2.0.0-chexpert.csv"
    chexpert.write_text(chexpert.read_text().replace(",1.0,", ",0.0,", 1))
    assert make(MimicCxr, root=str(tmp_path)).fingerprint() != before


def test_datasets_info_and_the_suite_validate(run_cli, root, monkeypatch, tmp_path):
    result = run_cli("datasets", "info", "mimic_cxr", "--set", f"root={root}", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["task"] == "multilabel" and set(summary["splits"]) == {"train", "val", "test"}
    assert "eval for pneumonia" in summary["example_text"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mimic-cxr-jpg").symlink_to(root)
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path / "data"))
    result = run_cli("validate", SUITE)
    assert result.code == 0, result.err + result.out
