"""The five paper suites (suites/lmic_cpu.toml, ...) and the companion suites printed in
docs/papers.md validate against tiny fixture copies of their datasets with every model
they name found offline, expand to the grid their comments promise, and declare the
papers' numbers against configurations of that grid."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from paper_fixtures import build_data, build_hub_cache

from mmbench.registry import load_registry
from mmbench.suite import load_suite

REPO = Path(__file__).resolve().parents[1]
#: suite -> runs: datasets x encoders x alignments x fusions (x missing rates) x seeds
RUNS = {
    "lmic_cpu": 3 * 2 * 11 * 2 * 3,
    "modality_gap": 4 * 8 * 11 * 1 * 5,
    "pairdx": 1 * 1 * 1 * 2 * 3,
    "mvsa_late_fusion": 1 * 1 * 1 * 5 * 3,
    "omnifuse_mimic": 2 * 1 * 1 * 6 * 10 * 3,
}
#: companion suites in docs/papers.md (grids the cross product cannot hold beside the main one)
COMPANIONS = {"lmic_cpu_raw": 3 * 2 * 3, "pairdx_biomedclip": 3, "pairdx_fusion": 3}


@pytest.fixture(scope="module")
def offline_world(tmp_path_factory) -> tuple[Path, Path]:
    """(data folder, hub cache), built once for the module."""
    root = tmp_path_factory.mktemp("paper-suites")
    return build_data(root / "data"), build_hub_cache(root / "hub")


@pytest.fixture
def offline(offline_world, monkeypatch, tmp_path) -> Path:
    """MMBENCH_DATA and the Hugging Face cache point at the fixtures; results go to tmp_path."""
    from huggingface_hub import constants

    data, hub = offline_world
    monkeypatch.setenv("MMBENCH_DATA", str(data))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def companions(tmp_path_factory) -> dict[str, Path]:
    """The ```toml suites of docs/papers.md, each written to a file named after it."""
    folder = tmp_path_factory.mktemp("companions")
    text = (REPO / "docs" / "papers.md").read_text()
    out = {}
    for block in re.findall(r"```toml\n(.*?)```", text, flags=re.S):
        name = tomllib.loads(block)["suite"]["name"]
        out[name] = folder / f"{name}.toml"
        out[name].write_text(block)
    return out


def _path(name: str, companions: dict[str, Path]) -> Path:
    return companions[name] if name in COMPANIONS else REPO / "suites" / f"{name}.toml"


def test_docs_print_exactly_the_companion_suites(companions):
    assert set(companions) == set(COMPANIONS)


@pytest.mark.parametrize("name", [*RUNS, *COMPANIONS])
def test_suite_validates_offline_and_expands_to_its_grid(name, offline, companions, run_cli):
    path = _path(name, companions)
    result = run_cli("validate", path)
    assert result.code == 0, result.out + result.err
    assert f"{(RUNS | COMPANIONS)[name]} runs" in result.out


@pytest.mark.parametrize("name", [*RUNS, *COMPANIONS])
def test_every_reference_names_a_configuration_of_the_grid(name, offline, companions):
    """Checked here from the TOML itself too, so a reference to a renamed configuration
    fails even where the suite reader would accept it."""
    path = _path(name, companions)
    suite = load_suite(path, load_registry())
    grid = {(spec.labels()["dataset"], spec.labels()["config"]) for spec in suite.runs()}
    references = tomllib.loads(path.read_text()).get("report", {}).get("reference", [])
    missing = [(r["dataset"], r["config"]) for r in references if (r["dataset"], r["config"]) not in grid]
    assert not missing
    assert all(r["source"].startswith("seed 00") for r in references)
    if name != "modality_gap":  # seed 004 prints no number its grid measures (docs/papers.md)
        assert references


def test_the_dry_run_prints_the_grid_and_counts_it(offline, run_cli):
    result = run_cli("run", REPO / "suites" / "mvsa_late_fusion.toml", "--dry-run")
    assert result.code == 0, result.out + result.err
    assert "15 runs: 15 to run, 0 already done" in result.out
    assert "late_min_loss" in result.out and "unimodal_text" in result.out


@pytest.mark.parametrize("name", [*RUNS, *COMPANIONS])
def test_the_header_names_every_model_and_the_wall_time(name, companions):
    """A user reads what to download from the comment atop the suite."""
    path = _path(name, companions)
    text = path.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    if name in RUNS:
        assert "seed 00" in header.lower() and "wall time" in header.lower()
    models = set(re.findall(r'model = "(?:hf-hub:)?([^"]+)"', text))
    timm_tags = {f"timm/{m}" for m in models if "/" not in m}  # timm names its hub repos timm/<tag>
    hub_ids = {m for m in models if "/" in m} | timm_tags
    assert hub_ids and all(model in header for model in hub_ids), hub_ids
