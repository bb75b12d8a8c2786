"""The five paper suites (suites/lmic_cpu.toml, ...) validate against tiny fixture copies of
their datasets with every model they name found offline, expand to the grid their comments
promise (each model only with the encoders and alignments it is tied to), and declare the
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
#: suite -> runs: datasets x encoders x alignments x fusions (x missing rates) x seeds, where
#: a fusion entry tied to some encoders / alignments counts only those
#: how suites and references name the papers (the full references are in docs/papers.md)
PAPER_NAMES = ("Restrepo et al.", "PairDx", "Balaji", "OmniFuse", "Modality-gap paper",
               "The cone-effect / modality-gap paper")
#: what users read: docs, suites, the code whose docstrings and descriptions `mmbench plugins` shows
USER_FACING = ("README.md", "docs", "suites", "mmbench", "plugins", "examples", "benchmarks", "leaderboard")

RUNS = {
    "lmic_cpu": 3 * (2 * 1 * 2 + 1 * 11 * 2 + 1 * 1 * 2) * 3,  # unaligned, CLIP's sweep, raw data
    "modality_gap": 4 * 8 * 11 * 1 * 5,
    "pairdx": 1 * (2 + 1 + 1) * 3,
    "mvsa_late_fusion": 1 * 1 * 1 * 5 * 3,
    "omnifuse_mimic": (4 * 5 + 3 * 1) * 10 * 3,  # the EHR model only where there is EHR
}


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


@pytest.mark.parametrize("name", RUNS)
def test_suite_validates_offline_and_expands_to_its_grid(name, offline, run_cli):
    result = run_cli("validate", REPO / "suites" / f"{name}.toml")
    assert result.code == 0, result.out + result.err
    assert f"{RUNS[name]} runs" in result.out


@pytest.mark.parametrize("name", RUNS)
def test_every_reference_names_a_configuration_of_the_grid(name, offline):
    """Checked here from the TOML itself too, so a reference to a renamed configuration
    fails even where the suite reader would accept it."""
    path = REPO / "suites" / f"{name}.toml"
    suite = load_suite(path, load_registry())
    grid = {(spec.labels()["dataset"], spec.labels()["config"]) for spec in suite.runs()}
    references = tomllib.loads(path.read_text()).get("report", {}).get("reference", [])
    missing = [(r["dataset"], r["config"]) for r in references if (r["dataset"], r["config"]) not in grid]
    assert not missing
    assert all(r["source"].startswith(PAPER_NAMES) for r in references), "a reference names its paper"
    if name != "modality_gap":  # the modality-gap paper prints no number its grid measures (docs/papers.md)
        assert references


def test_the_dry_run_prints_the_grid_and_counts_it(offline, run_cli):
    result = run_cli("run", REPO / "suites" / "mvsa_late_fusion.toml", "--dry-run")
    assert result.code == 0, result.out + result.err
    assert "15 runs: 15 to run, 0 already done" in result.out
    assert "late_min_loss" in result.out and "unimodal_text" in result.out


@pytest.mark.parametrize("name", RUNS)
def test_the_header_names_every_model_and_the_wall_time(name):
    """A user reads what to download from the comment atop the suite."""
    text = (REPO / "suites" / f"{name}.toml").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert any(name in header for name in PAPER_NAMES) and "wall time" in header.lower()
    assert "seed 00" not in header.lower()  # papers by name, not by an internal number
    models = set(re.findall(r'model = "(?:hf-hub:)?([^"]+)"', text))
    timm_tags = {f"timm/{m}" for m in models if "/" not in m}  # timm names its hub repos timm/<tag>
    hub_ids = {m for m in models if "/" in m} | timm_tags
    assert hub_ids and all(model in header for model in hub_ids), hub_ids


def _pairings(name: str) -> dict[str, set[tuple[str, str]]]:
    """fusion label -> the (encoder, alignment) labels the suite's grid runs it with."""
    out: dict[str, set[tuple[str, str]]] = {}
    for spec in load_suite(REPO / "suites" / f"{name}.toml", load_registry()).runs():
        labels = spec.labels()
        out.setdefault(labels["fusion"], set()).add((labels["encoder"], labels["alignment"]))
    return out


def test_each_paper_model_runs_only_with_its_own_encoders_and_alignments(offline):
    """One suite holds every model a paper compares: the raw-data arm and the fine-tuned or
    attention models never meet another model's encoders, and lmic_cpu fuses image and text
    only (no tabular encoder in any label)."""
    lmic = _pairings("lmic_cpu")
    assert lmic["raw_early"] == lmic["raw_late_joint"] == {("bert_base+vit_base_in21k", "none")}
    for fusion in ("early", "late_joint"):
        assert lmic[fusion] == {("dinov2_base+llama2_7b_int8", "none"), ("clip_vit_b32", "none")}
        assert {e for e, _ in lmic[f"{fusion}_gap"]} == {"clip_vit_b32"}
        assert len({a for _, a in lmic[f"{fusion}_gap"]}) == 11
    pairdx = _pairings("pairdx")
    assert pairdx == {"zero_shot": {("clip_vit_b32", "-"), ("biomedclip", "-")},
                      "pairdx_clip": {("clip_vit_b32", "-")},
                      "pairdx_fusion": {("glove_300d+resnet18", "-")}}


@pytest.mark.parametrize("name", RUNS)
def test_the_gap_shift_only_meets_one_paired_model(name, offline):
    """gap_shift moves image and text along one gap vector, so both must come from one
    model's shared space; validation cannot see embedding sizes (the tiny fixture models
    all have 16), so a DINOv2 (768) + LLaMA-2 (4096) pairing would only fail at run time."""
    suite = load_suite(REPO / "suites" / f"{name}.toml", load_registry())
    shifted = [spec for spec in suite.runs() if spec.alignment is not None and spec.alignment.name == "gap_shift"]
    assert all(spec.encoders["image"] == spec.encoders["text"] for spec in shifted)
    assert all(spec.encoders["image"].name in ("hf_clip", "open_clip") for spec in shifted)


def test_the_ehr_model_runs_only_on_the_combinations_that_have_ehr(offline):
    suite = load_suite(REPO / "suites" / "omnifuse_mimic.toml", load_registry())

    datasets = {spec.dataset.label for spec in suite.runs() if spec.fusion.label == "unimodal_ehr"}

    assert datasets == {"ihm_ehr_cxr", "ihm_ehr_cxr_rep", "ihm_ehr_rep"}


#: suite -> runs with one seed and one lambda (lmic_cpu: unaligned + CLIP at lambda 1 + raw
#: data, per dataset; modality_gap: every backbone x dataset)
SMALL_RUNS = {"lmic_cpu": 3 * (2 * 2 + 1 * 1 * 2 + 1 * 2), "modality_gap": 4 * 8}


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL_RUNS)
def test_suite_runs_end_to_end_on_fixture_data_and_tiny_models(name, offline, run_cli):
    """Every run of the grid (one seed, one lambda) finishes: a suite whose runs would fail
    on real data (e.g. a shift between vectors of unequal size) fails here first."""
    text = (REPO / "suites" / f"{name}.toml").read_text()
    text = re.sub(r"(?m)^seeds = \[.*\]$", "seeds = [0]", text)
    text = re.sub(r"(?m)^lambda = \[.*\]$", "lambda = [1.0]", text)
    path = offline / f"{name}.toml"
    path.write_text(text)

    result = run_cli("run", path)

    assert result.code == 0, result.out + result.err
    assert f"{SMALL_RUNS[name]} runs finished, 0 failed" in result.out
    page = (offline / "leaderboard" / f"{name}.md").read_text()
    assert "## Across datasets" in page
    if name == "lmic_cpu":  # the paper's numbers sit beside ours
        assert "f1 (paper)" in page and "(paper): the number the source prints" in page
        assert "Restrepo et al. 2024, Table 1" in page


def test_no_paper_is_named_by_an_internal_number():
    """Issue 15: "seed 000" ... "seed 004" mean nothing to a user and read like random seeds;
    every paper is named by its authors, year and short title."""
    numbered = re.compile(r"seeds?[ _-]00[0-4]", re.IGNORECASE)  # not glove's "seed001-v1" cache key
    found = []
    for top in USER_FACING:
        paths = [REPO / top] if (REPO / top).is_file() else sorted((REPO / top).rglob("*"))
        for path in paths:
            if path.suffix in (".py", ".md", ".toml", ".json", ".csv", ".txt", ".html") and path.is_file():
                found += [f"{path.relative_to(REPO)}:{i}" for i, line in
                          enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if numbered.search(line)]
    assert not found, found


def test_the_mvsa_image_row_is_the_pretrained_image_model_the_paper_reports(offline):
    """Balaji's image number is the contrastively pre-trained ResNet50's: the suite's
    image-only row is pre-trained as the fusion rows' image heads are."""
    suite = load_suite(REPO / "suites" / "mvsa_late_fusion.toml", load_registry())
    image = {s.fusion.label: s.fusion for s in suite.runs()}["unimodal_image"]
    assert image.name == "late_voting" and image.params["modalities"] == ["image"]
    assert image.params["contrastive_pretrain"] == ["image"]
    fused = {s.fusion.label: s.fusion for s in suite.runs()}["late_min_loss"]
    assert {k: fused.params[k] for k in ("hidden", "pretrain_epochs", "projection_dim")} == \
        {k: image.params[k] for k in ("hidden", "pretrain_epochs", "projection_dim")}


def test_the_raw_data_arm_uses_adamw_defaults_without_gradient_clipping(offline):
    """Restrepo et al. 2024, section 2.4.2: "The AdamW optimizer was employed with default
    settings from the PyTorch library." finetune's default clips the gradient norm at 1.0
    (PairDx's PairDxCLIP protocol); lmic_cpu's raw-data arm turns that off, PairDx keeps it."""
    runs = {s.fusion.label: s.fusion for s in load_suite(REPO / "suites" / "lmic_cpu.toml", load_registry()).runs()}
    for label in ("raw_early", "raw_late_joint"):
        assert runs[label].params["max_grad_norm"] == 0.0
        assert runs[label].train["optimizer"] == "adamw" and runs[label].train["weight_decay"] == 0.01
    pairdx = {s.fusion.label: s.fusion for s in load_suite(REPO / "suites" / "pairdx.toml", load_registry()).runs()}
    assert [f.params["max_grad_norm"] for f in pairdx.values() if f.name == "finetune"] == [1.0]
