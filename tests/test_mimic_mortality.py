"""mimic_mortality: listfile layouts, the 48 h EHR summary, CXR pairing with masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures_mimic import build_mimic_cxr, build_mimic_mortality
from mmbench_datasets.mimic_mortality import VARIABLES, MimicMortality, feature_names, ordinal, summarise
from support import make

from mmbench.errors import UserError

SUITE = Path(__file__).resolve().parents[1] / "suites" / "datasets" / "mimic_mortality.toml"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mimic")
    build_mimic_mortality(folder / "ihm")
    build_mimic_cxr(folder / "cxr")
    return folder


def load(root: Path, **params):
    return make(MimicMortality, root=str(root), **params).load()


def test_official_split_labels_groups_and_ehr_vectors(data):
    written = build_mimic_mortality(data / "again")
    table = load(data / "ihm")
    assert table.task == "binary" and table.classes == ("survived", "died")
    for split, stays in written.items():
        rows = np.flatnonzero(table.split == split)
        assert list(table.ids[rows]) == [s for s, _ in stays]
        assert table.labels[rows].tolist() == [y for _, y in stays]
    assert table.groups[0] == table.ids[0].split("_")[0]
    ehr = table.modalities["ehr"]
    assert ehr.shape == (len(table), len(feature_names())) == (len(table), 85)
    assert np.isfinite(ehr).all()
    values = ehr[table.split == "train", : 4 * len(VARIABLES)]
    measured = values[:, values.std(axis=0) > 0]
    assert np.allclose(measured.mean(axis=0), 0, atol=1e-5)  # scaled by the train split's statistics
    assert make(MimicMortality, root=str(data / "ihm")).raw_modalities() == ()


def test_summary_is_over_the_window_with_missing_indicators():
    import pandas as pd

    frame = pd.DataFrame({"Hours": [1.0, 10.0, 60.0], **{v: [np.nan] * 3 for v in VARIABLES}})
    frame["Heart Rate"] = [80.0, 100.0, 150.0]  # the 60 h value is outside the 48 h window
    frame["Glascow coma scale motor response"] = ["6 Obeys Commands", "Localizes Pain", "1 No Response"]
    frame["pH"] = ["7.4", "oops", None]
    vector, unreadable = summarise(frame, 48.0)
    heart, motor, ph = (VARIABLES.index(v) for v in ("Heart Rate", "Glascow coma scale motor response", "pH"))
    assert vector[4 * heart: 4 * heart + 4].tolist() == [100.0, 90.0, 80.0, 100.0]  # last, mean, min, max
    assert vector[4 * motor: 4 * motor + 4].tolist() == [5.0, 5.5, 5.0, 6.0]
    assert unreadable == 1 and vector[4 * ph] == 7.4
    indicators = vector[4 * len(VARIABLES):]
    assert indicators[heart] == 0 and indicators[VARIABLES.index("Weight")] == 1
    assert ordinal("To Pain") == 2 and ordinal("1.0 ET/Trach") == 1 and np.isnan(ordinal(""))


def test_mimic3_benchmarks_layout_reads_val_from_train_folder(tmp_path):
    written = build_mimic_mortality(tmp_path, layout="benchmarks", medfuse=False)
    # train/listfile.csv in mimic3-benchmarks holds train AND val: the *_listfile.csv win
    (tmp_path / "in-hospital-mortality" / "train" / "listfile.csv").write_text(
        "stay,y_true\n" + "".join(f"{s},{y}\n" for split in ("train", "val") for s, y in written[split]))
    table = load(tmp_path / "in-hospital-mortality")  # root may be the task folder itself
    assert sorted(table.ids[table.split == "val"]) == sorted(s for s, _ in written["val"])
    assert len(table) == sum(len(v) for v in written.values())


def test_cxr_pairing_takes_the_last_image_in_the_window_and_masks_the_rest(data):
    table = load(data / "ihm", cxr_root=str(data / "cxr"))
    image, text = table.masks["image"], table.masks["text"]
    assert image.any() and not image.all() and np.array_equal(image, text)
    for k in np.flatnonzero(image):
        path = Path(table.modalities["image"][k])
        assert path.is_file() and path.parts[-3] == f"p{table.groups[k]}"
    assert all(table.modalities["image"][k] is None and table.modalities["text"][k] is None
               for k in np.flatnonzero(~image))
    first = Path(table.modalities["image"][0])  # subject 10000000: studies on 2180-01-01 and -02, stay from -02
    assert first.name.startswith("010a-")
    build_mimic_mortality(data / "old", medfuse=False)
    with pytest.raises(UserError, match="intime"):
        load(data / "old", cxr_root=str(data / "cxr"))


def test_modalities_pick_omnifuses_two_modality_rows_from_the_same_cohort(data):
    """OmniFuse Table 3's EHR+REP and CXR+REP rows: the same stays, the same pairing,
    only the named modalities (and masks); a subset the settings cannot give is refused."""
    full = load(data / "ihm", cxr_root=str(data / "cxr"))
    for subset in (["ehr", "text"], ["image", "text"], ["ehr"]):
        dataset = make(MimicMortality, root=str(data / "ihm"), cxr_root=str(data / "cxr"), modalities=subset)
        table = dataset.load()
        assert set(table.modalities) == set(subset) and set(table.masks) == set(subset) - {"ehr"}
        assert dataset.raw_modalities() == tuple(m for m in ("image", "text") if m in subset)
        assert list(table.ids) == list(full.ids)
        for m in subset:
            assert np.array_equal(np.asarray(table.modalities[m]), np.asarray(full.modalities[m]))
    assert make(MimicMortality, root=str(data / "ihm")).raw_modalities() == ()  # the default: what is given
    for subset, needs in ((["ehr", "image"], "cxr_root"), (["dicom"], "distinct names"), ([], "distinct names")):
        with pytest.raises(UserError, match=needs):
            make(MimicMortality, root=str(data / "ihm"), modalities=subset)
    with pytest.raises(UserError, match="report_sections"):
        make(MimicMortality, root=str(data / "ihm"), cxr_root=str(data / "cxr"), report_sections="none",
             modalities=["ehr", "text"])


def test_bad_samples_error_names_them_and_skip_counts_them(tmp_path):
    written = build_mimic_mortality(tmp_path)
    gone, _ = written["test"][1]
    (tmp_path / "in-hospital-mortality" / "test" / gone).unlink()
    listfile = tmp_path / "in-hospital-mortality" / "val" / "listfile.csv"
    bad_label = written["val"][0][0]
    listfile.write_text(listfile.read_text().replace(f"{bad_label},48.0,30000007,1,", f"{bad_label},48.0,30000007,9,"))
    with pytest.raises(UserError, match=f"sample {bad_label}: y_true = 9"):
        load(tmp_path)
    table = load(tmp_path, on_bad_sample="skip")
    assert set(table.skipped) == {gone, bad_label} and "time series" in table.skipped[gone]
    assert len(table) == sum(len(v) for v in written.values()) - 2


def test_missing_root_says_what_to_download(tmp_path):
    with pytest.raises(UserError) as error:
        make(MimicMortality, root=str(tmp_path)).fingerprint()
    message = str(error.value)
    assert "in-hospital-mortality/{train,val,test}/listfile.csv" in message and "mimic3-benchmarks" in message


def test_a_stay_in_two_listfiles_is_an_error(tmp_path):
    written = build_mimic_mortality(tmp_path)
    listfile = tmp_path / "in-hospital-mortality" / "test" / "listfile.csv"
    listfile.write_text(listfile.read_text() + f"{written['train'][0][0]},48.0,1,0,2180-01-02 10:00:00,\n")
    with pytest.raises(UserError, match="two listfiles"):
        load(tmp_path)


def test_datasets_info_suite_validation_and_a_run(run_cli, data, monkeypatch, tmp_path):
    result = run_cli("datasets", "info", "mimic_mortality", "--set", f"root={data / 'ihm'}",
                     "--set", f"cxr_root={data / 'cxr'}", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["modalities"]["ehr"]["kind"] == "vectors (85-d)"
    assert 0 < summary["modalities"]["image"]["missing"] < summary["n"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mimic-ihm").symlink_to(data / "ihm")
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert run_cli("validate", SUITE).code == 0
    (tmp_path / "run.toml").write_text(f"""
[suite]
name = "ihm"
seeds = [0]
threads = 1

[[datasets]]
name = "mimic_mortality"
root = "{data / 'ihm'}"
cxr_root = "{data / 'cxr'}"

[[encoders]]
image = "color_histogram"
text = "tfidf_svd"

[[fusions]]
name = "early"
train = {{ epochs = 2 }}
""")
    result = run_cli("run", tmp_path / "run.toml")
    assert result.code == 0, result.err
    record = json.loads(next((tmp_path / "results" / "ihm").glob("*.json")).read_text())
    assert record["status"] == "ok", record["error"]
    assert record["data"]["dims"]["ehr"] == 85 and record["data"]["n"]["test"] == 6
    assert record["data"]["missing"]["test"]["image"] > 0
