"""SatelliteBench loader: the PhysioNet layout (flat and per-municipality folders), the
median label, the leak-free text, municipality groups, bad samples and the suite."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fixtures_tables import (
    DEMOGRAPHICS,
    MUNICIPALITIES,
    WEEKS,
    build_satellitebench,
    satellite_date,
    satellite_image,
    weekly_cases,
)
from mmbench_datasets.satellitebench import SatelliteBench, epi_week
from support import make

from mmbench.errors import UserError
from mmbench.splits import split_indices

SUITE = Path(__file__).resolve().parents[1] / "suites" / "datasets" / "satellitebench.toml"


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    return build_satellitebench(tmp_path_factory.mktemp("satellitebench") / "flat", "flat")


def load(root: Path, **params):
    return make(SatelliteBench, root=str(root), **params).load()


@pytest.mark.parametrize("layout", ["flat", "folders"])
def test_both_layouts_give_one_sample_per_municipality_and_week(tmp_path, layout):
    table = load(build_satellitebench(tmp_path / layout, layout))
    assert len(table) == len(MUNICIPALITIES) * WEEKS
    assert "5001_2016-01-03" in table.ids  # the folder "05001" is municipality 5001
    assert all(path.endswith(".tiff") and Path(path).is_file() for path in table.modalities["image"])
    assert table.task == "binary" and table.skipped == {}


def test_label_is_weekly_cases_above_the_municipality_median(flat):
    table = load(flat)
    for m, (code, *_rest) in enumerate(MUNICIPALITIES):
        cases = weekly_cases(m)  # every week of metadata.csv, with or without an image
        median = float(np.median(cases))
        for week in range(WEEKS):
            row = list(table.ids).index(f"{code}_{satellite_date(week).isoformat()}")
            assert table.labels[row] == int(cases[week] > median)
    assert 0 < table.labels.mean() < 1


def test_epidemiological_weeks_run_sunday_to_saturday_with_week_1_holding_january_4():
    assert epi_week(date(2016, 1, 3)) == (2016, 1)
    assert epi_week(date(2016, 1, 9)) == (2016, 1)
    assert epi_week(date(2016, 1, 2)) == (2015, 52)
    assert epi_week(date(2018, 12, 30)) == (2019, 1)


def test_text_names_place_date_and_demographics_but_never_the_cases(flat):
    table = load(flat)
    row = list(table.ids).index("5001_2016-01-10")
    text = table.modalities["text"][row]
    assert "Medellín" in text and "2016-01-10" in text and "week 2 of 2016" in text
    assert "Urban (%): 98.1" in text
    numbers = set(re.findall(r"\d+(?:\.\d+)?", text))  # Medellín's weekly counts are 3 to 9
    assert numbers <= {"5001", "2016", "01", "10", "2", "2529403", "0", "14", "18.2", "98.1"}, numbers
    assert "median" not in text.lower() and "cases" not in text.lower()
    assert "{demographics}" in make(SatelliteBench, root=str(flat)).info()["text template"]


def test_tabular_is_the_demographics_and_refuses_case_columns(flat):
    table = load(flat)
    assert list(table.modalities["tabular"].columns) == list(DEMOGRAPHICS)
    assert table.modalities["tabular"]["Population"].dtype.kind in "if"
    with pytest.raises(UserError, match="leak the label"):
        load(flat, tabular_columns=["Population", "2016/w03"])


def test_tabular_false_gives_image_and_text_only_as_restrepo_et_al_fuse_them(flat):
    dataset = make(SatelliteBench, root=str(flat), tabular=False)
    table = dataset.load()
    assert dataset.raw_modalities() == ("image", "text")
    assert set(table.modalities) == {"image", "text"}
    assert table.modalities["text"] == load(flat).modalities["text"]  # the demographics stay in the text
    assert make(SatelliteBench, root=str(flat)).raw_modalities() == ("image", "text", "tabular")


def test_groups_are_municipalities_and_never_cross_splits(flat):
    table = load(flat)
    assert sorted(set(table.groups)) == sorted(code for code, *_ in MUNICIPALITIES)
    assert table.split is None
    parts = split_indices(table, 0.2, 0.3, seed=0)
    owners = [set(table.groups[rows]) for rows in parts.values()]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])


def test_a_bad_image_stops_the_load_naming_it_or_is_skipped_and_counted(tmp_path):
    root = build_satellitebench(tmp_path / "bad", "flat")
    satellite_image(root, "76001", 2).write_bytes(b"")  # an empty file
    with pytest.raises(UserError, match="sample 76001_2016-01-17: image file .* is empty"):
        load(root)
    (root / "99999_2016-01-03.tiff").write_bytes(satellite_image(root, "5001", 0).read_bytes())
    table = load(root, on_bad_sample="skip")
    assert set(table.skipped) == {"76001_2016-01-17", "99999_2016-01-03"}
    assert "not in metadata.csv" in table.skipped["99999_2016-01-03"]
    assert len(table) == len(MUNICIPALITIES) * WEEKS - 1


def test_an_unreadable_case_count_is_a_bad_sample(tmp_path):
    root = build_satellitebench(tmp_path / "count", "flat")
    text = (root / "metadata.csv").read_text(encoding="utf-8").splitlines()
    cells = text[1].split(",")
    cells[len(DEMOGRAPHICS) + 2] = "n/a"  # Medellín, 2016/w01
    (root / "metadata.csv").write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n", encoding="utf-8")
    table = load(root, on_bad_sample="skip")
    assert "unreadable ('n/a') dengue case count in '2016/w01'" in table.skipped["5001_2016-01-03"]


def test_missing_root_says_what_it_looked_for_and_where_to_get_it(tmp_path):
    with pytest.raises(UserError) as error:
        make(SatelliteBench, root=str(tmp_path / "nowhere")).fingerprint()
    message = str(error.value)
    assert "metadata.csv" in message and "physionet.org/content/multimodal-satellite-data" in message


def test_fingerprint_follows_the_metadata_and_the_image_list(tmp_path):
    root = build_satellitebench(tmp_path / "fp", "flat", municipalities=2)
    dataset = make(SatelliteBench, root=str(root))
    before = dataset.fingerprint()
    satellite_image(root, "5001", 0).unlink()
    assert dataset.fingerprint() != before


def test_datasets_info_and_suite_validation(flat, run_cli, monkeypatch):
    result = run_cli("datasets", "info", "satellitebench", "--set", f"root={flat}", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["n"] == len(MUNICIPALITIES) * WEEKS and summary["groups"] == len(MUNICIPALITIES)
    assert "A satellite image of" in summary["example_text"]
    monkeypatch.setenv("MMBENCH_DATA", str(flat.parent))
    (flat.parent / "satellitebench").symlink_to(flat, target_is_directory=True)
    result = run_cli("validate", SUITE)
    assert result.code == 0, result.err + result.out
