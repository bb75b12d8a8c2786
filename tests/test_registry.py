"""Plugin discovery: built-ins, broken plugins, conflicts, typos and the environment switches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmbench
from mmbench.errors import PluginConflictError, UnknownPluginError
from mmbench.registry import load_registry

BUILTINS = {
    "dataset": ["brset", "coco_qa", "daquar", "embeddings_table", "fakeddit", "ham10000", "mbrset", "mimic_cxr",
                "mimic_mortality", "mvsa_multiple", "mvsa_single", "pairdx", "recipes5k", "satellitebench",
                "synthetic", "synthetic_raw", "table"],
    "encoder": ["causal_lm", "color_histogram", "glove", "hf_clip", "hf_text", "hf_vision", "hog", "minilm",
                "open_clip", "sentence_transformers", "tabular", "tfidf_svd", "timm"],
    "alignment": ["gap_shift", "noise", "none"],
    "fusion": ["attention", "concat", "dwfuse", "early", "finetune", "late_joint", "late_voting",
               "linear_probe", "omnifuse", "se_gate", "sum", "unimodal", "zero_shot"],
    "reporter": ["csv", "html", "json", "markdown", "plots"],
}

#: fixture module -> fragments its "broken" reason must show
BROKEN = {
    "fx_import_error": ["RuntimeError", "fx_import_error cannot be imported", "fx_import_error.py"],
    "fx_hook_raises": ["mmbench_register_fusions", "ValueError", "exploded while registering"],
    "fx_not_a_list": ["mmbench_register_fusions", "must return a list of Fusion subclasses", "got type"],
    "fx_not_a_plugin": ["mmbench_register_fusions", "NotAFusion", "not a subclass of mmbench.plugin.Fusion"],
    "fx_bad_name": ["mmbench_register_fusions", "BadName.name", "'Bad-Name'"],
    "fx_misspelled_hook": ["mmbench_register_fusion", "did you mean 'mmbench_register_fusions'"],
}


def fake_distribution(root: Path, name: str, version: str, entry_points: dict[str, str]) -> Path:
    """An installed-looking distribution (a dist-info folder) with ``mmbench`` entry points."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"{ep} = {module}" for ep, module in entry_points.items()]
    (info / "entry_points.txt").write_text("[mmbench]\n" + "\n".join(lines) + "\n")
    return root


def test_builtins_are_listed_with_their_distribution_and_version():
    registry = load_registry()  # other installed plugin distributions may add to it

    builtins = [info for info in registry.all() if info.source.distribution == "mmbench"]
    assert {kind: [i.name for i in builtins if i.kind == kind] for kind in BUILTINS} == BUILTINS
    for info in builtins:
        assert info.version == mmbench.__version__ != "0+unknown"
        assert info.describe()["status"] == "ok"
    assert [b for b in registry.broken if b.source.distribution == "mmbench"] == []


@pytest.mark.parametrize("module", list(BROKEN))
def test_a_broken_plugin_is_reported_with_its_reason_and_the_others_still_load(use_plugins, module):
    use_plugins(f"mmbench,{module},fx_good")

    registry = load_registry()

    assert [(b.source.entry_point, b.source.distribution) for b in registry.broken] == [(module, module)]
    reason = registry.broken[0].reason
    for fragment in BROKEN[module]:
        assert fragment in reason
    assert "binary_only" in registry.names("fusion")  # the good third-party plugin
    for kind, names in BUILTINS.items():
        assert set(names) <= set(registry.names(kind))


def test_plugins_json_shows_broken_entries_and_exits_0(use_plugins, run_cli):
    use_plugins(",".join(["mmbench", *BROKEN, "fx_good"]))

    result = run_cli("plugins", "--json")

    assert result.code == 0
    listing = json.loads(result.out)
    broken = {b["entry_point"]: b for b in listing["broken"]}
    assert set(broken) == set(BROKEN)
    for module, entry in broken.items():
        assert entry["status"] == "broken"
        assert entry["distribution"] == module
        assert BROKEN[module][-1] in entry["reason"]
    ok = {(p["kind"], p["name"]): p for p in listing["plugins"]}
    assert {"status": "ok", "distribution": "fx_good", "entry_point": "fx_good",
            "version": "1.2.3"}.items() <= ok[("fusion", "binary_only")].items()
    assert ok[("fusion", "early")]["status"] == "ok"
    assert ok[("dataset", "synthetic")]["distribution"] == "mmbench"


def test_plugins_table_shows_broken_entries_and_exits_0(use_plugins, run_cli):
    use_plugins("mmbench,fx_import_error")

    result = run_cli("plugins")

    assert result.code == 0
    assert "fx_import_error" in result.out and "broken" in result.out
    assert "1 plugin(s) failed to load and were skipped" in result.out
    assert "linear_probe" in result.out


def test_a_misspelled_allow_list_item_is_reported_not_ignored(use_plugins):
    use_plugins("mmbench,fx_goood")

    registry = load_registry()

    assert [b.source.entry_point for b in registry.broken] == ["fx_goood"]
    assert "No module named 'fx_goood'" in registry.broken[0].reason


def test_unknown_name_points_at_plugins_that_failed_to_load(use_plugins):
    use_plugins("mmbench,fx_import_error")

    with pytest.raises(UnknownPluginError, match=r"1 plugin\(s\) failed to load, from fx_import_error: see `mmbench plugins`"):
        load_registry().get("fusion", "someone_elses_fusion")


def test_a_name_from_two_sources_raises_a_conflict_naming_both(use_plugins):
    use_plugins("mmbench,fx_conflict_early")
    registry = load_registry()

    with pytest.raises(PluginConflictError) as excinfo:
        registry.get("fusion", "early")

    message = str(excinfo.value)
    assert f"mmbench {mmbench.__version__} (entry point 'fusion')" in message
    assert "fx_conflict_early 9.9.9 (entry point 'fx_conflict_early')" in message
    assert "MMBENCH_PLUGINS" in message  # how to fix it
    assert registry.get("fusion", "late_joint").source.distribution == "mmbench"  # others unaffected


def test_a_conflict_with_another_installed_distribution_names_it(use_plugins, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path, "acme-fusions", "2.0",
                                                      {"acme": "fx_conflict_early"})))

    registry = load_registry()

    with pytest.raises(PluginConflictError) as excinfo:
        registry.get("fusion", "early")
    assert f"mmbench {mmbench.__version__} (entry point 'fusion')" in str(excinfo.value)
    assert "acme-fusions 2.0 (entry point 'acme')" in str(excinfo.value)


def test_plugins_listing_does_not_show_a_conflicted_name_as_ok(use_plugins, run_cli):
    use_plugins("mmbench,fx_conflict_early")

    result = run_cli("plugins", "--json")

    assert result.code == 0
    early = [p for p in json.loads(result.out)["plugins"] if p["kind"] == "fusion" and p["name"] == "early"]
    assert sorted((p["status"], p["distribution"]) for p in early) == [
        ("conflict", "fx_conflict_early"), ("conflict", "mmbench")]


def test_another_distribution_may_reuse_an_entry_point_name(use_plugins, monkeypatch, tmp_path):
    # Entry-point names are only unique within a distribution: a third party calling its
    # entry point "fusion", like mmbench's own, must load next to the built-ins.
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path, "acme-fusions", "2.0", {"fusion": "fx_good"})))

    registry = load_registry()

    assert [b for b in registry.broken if b.source.distribution in ("mmbench", "acme-fusions")] == []
    assert registry.get("fusion", "binary_only").source.distribution == "acme-fusions"
    assert registry.get("fusion", "early").source.distribution == "mmbench"


@pytest.mark.parametrize(("kind", "typo", "meant"), [
    ("fusion", "erly", "early"),
    ("fusion", "linear_prob", "linear_probe"),
    ("dataset", "synthtic", "synthetic"),
])
def test_an_unknown_name_suggests_the_close_match(kind, typo, meant):
    with pytest.raises(UnknownPluginError, match=f"unknown {kind} '{typo}'; did you mean '{meant}'"):
        load_registry().get(kind, typo)


def test_plugins_command_suggests_the_close_match(run_cli):
    result = run_cli("plugins", "erly")

    assert result.code == 2
    assert "no plugin named 'erly'; did you mean 'early'?" in result.err
    assert "Traceback" not in result.err


def test_allow_list_of_entry_points_restricts_loading(monkeypatch):
    monkeypatch.setenv("MMBENCH_PLUGINS", "fusion")

    registry = load_registry()

    assert registry.names("fusion") == BUILTINS["fusion"]
    assert registry.names("dataset") == [] and registry.names("reporter") == []
    with pytest.raises(UnknownPluginError, match="unknown dataset 'synthetic'; none are installed"):
        registry.get("dataset", "synthetic")


def test_allow_list_accepts_a_distribution_name(monkeypatch):
    monkeypatch.setenv("MMBENCH_PLUGINS", "mmbench")

    registry = load_registry()

    assert {kind: registry.names(kind) for kind in BUILTINS} == BUILTINS
    assert registry.broken == []


def test_allow_list_without_mmbench_leaves_only_the_listed_module(use_plugins):
    use_plugins("fx_good")

    registry = load_registry()

    assert registry.names("fusion") == ["binary_only"]
    assert registry.names("dataset") == ["folder_data"]
    assert registry.get("fusion", "binary_only").version == "1.2.3"  # the module's __version__


def test_disable_autoload_loads_nothing(monkeypatch):
    monkeypatch.setenv("MMBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")

    registry = load_registry()

    assert registry.all() == [] and registry.broken == []


def test_disable_autoload_still_loads_what_is_allowed(monkeypatch, use_plugins):
    monkeypatch.setenv("MMBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    use_plugins("fusion,fx_good")

    registry = load_registry()

    assert registry.names("fusion") == sorted(["binary_only", *BUILTINS["fusion"]])
    assert registry.names("dataset") == ["folder_data"]  # not the built-in synthetic
    assert registry.names("reporter") == []


def test_plugins_command_shows_one_plugins_parameters(run_cli):
    result = run_cli("plugins", "early")

    assert result.code == 0
    assert "fusion early" in result.out and "(mmbench, entry point 'fusion')" in result.out
    rows = {line.split()[0]: line for line in result.out.splitlines() if line.strip()}
    assert "integer" in rows["hidden"] and "128" in rows["hidden"] and ">= 1" in rows["hidden"]
    assert "number" in rows["dropout"] and "<= 0.95" in rows["dropout"]


def test_plugins_json_for_one_plugin_describes_its_parameters(run_cli):
    result = run_cli("plugins", "early", "--json")

    assert result.code == 0
    [early] = json.loads(result.out)["plugins"]
    params = {p["name"]: p for p in early["parameters"]}
    assert list(params) == ["hidden", "dropout"]
    assert params["hidden"] | {"help": ""} == {
        "name": "hidden", "type": "integer", "default": 128, "required": False, "min": 1, "help": ""}
    assert params["dropout"]["default"] == 0.0 and params["dropout"]["max"] == 0.95


def test_plugins_name_shows_a_fusions_training_defaults_in_text_and_json(run_cli, monkeypatch):
    """Issue 15: the training protocol a fusion runs with (its paper's: the modality-gap
    paper's probe is "stochastic gradient descent with momentum 0.9 and learning rate
    3e-4, with early stopping based on validation loss"; Restrepo et al.'s fusions "AdamW
    ... batch size 64", 30 epochs) is shown, not left to the code."""
    monkeypatch.setenv("COLUMNS", "100")
    listing = json.loads(run_cli("plugins", "linear_probe", "--json").out)
    (probe,) = listing["plugins"]
    assert {k: probe["train_defaults"][k] for k in ("optimizer", "lr", "momentum", "batch_size")} == \
        {"optimizer": "sgd", "lr": 3e-4, "momentum": 0.9, "batch_size": 64}
    assert probe["train_defaults"]["patience"] > 0 and probe["train_defaults"]["epochs"] >= 1000
    (early,) = json.loads(run_cli("plugins", "early", "--json").out)["plugins"]
    assert {k: early["train_defaults"][k] for k in ("optimizer", "lr", "batch_size", "epochs", "patience")} == \
        {"optimizer": "adamw", "lr": 1e-3, "batch_size": 64, "epochs": 30, "patience": 0}
    (synthetic,) = json.loads(run_cli("plugins", "synthetic", "--json").out)["plugins"]
    assert "train_defaults" not in synthetic  # only fusions train
    text = " ".join(run_cli("plugins", "linear_probe").out.split())
    assert "training defaults (a suite's [train] overrides them): epochs 2000, lr 0.0003, batch_size 64, " \
           "optimizer sgd, patience 10;" in text
