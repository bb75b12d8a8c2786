"""How a plugin author tests an mmbench plugin.

Everything goes through mmbench itself, the way a user meets the plugin: the registry
finds it through its entry point (so install the package first, e.g.
``pip install -e examples/mmbench-plugin-example``), suites validate its parameters,
and ``mmbench.cli.main`` runs it end to end. Torch is only needed by the tests that train.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from mmbench.cli import main
from mmbench.errors import SuiteError
from mmbench.params import resolve_params
from mmbench.registry import load_registry
from mmbench.splits import split_indices
from mmbench.suite import load_suite

DIST = "mmbench-plugin-example"
VERSION = "0.1.0"


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """Each test starts from default plugin discovery, offline."""
    monkeypatch.delenv("MMBENCH_PLUGINS", raising=False)
    monkeypatch.delenv("MMBENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def instance(kind: str, name: str, **given):
    """A plugin as the runner makes it: the class, with parameters resolved and checked."""
    cls = load_registry().get(kind, name).cls
    params, problems = resolve_params(cls.parameters, given)
    assert not problems, problems
    return cls(**params)


# --- discovery ------------------------------------------------------------------------

def test_registered_through_the_entry_point():
    names = [ep.name for ep in entry_points(group="mmbench") if ep.value == "mmbench_plugin_example"]
    assert names == ["example"], "install the package: pip install -e examples/mmbench-plugin-example"
    registry = load_registry()
    assert not [b.reason for b in registry.broken if b.source.distribution == DIST]
    for kind, name in (("fusion", "gated_sum"), ("dataset", "xor_blobs")):
        info = registry.get(kind, name)
        assert info.source.distribution == DIST
        assert info.version == VERSION
    assert registry.get("fusion", "gated_sum").describe()["parameters"][0] == {
        "name": "hidden", "type": "integer", "default": 64, "required": False,
        "help": "size of the shared space every modality is projected to", "min": 1, "max": 4096,
    }


def test_allow_list_and_autoload_switch(monkeypatch):
    monkeypatch.setenv("MMBENCH_PLUGINS", DIST)  # only this distribution
    registry = load_registry()
    assert registry.names("fusion") == ["gated_sum"]
    assert registry.names("dataset") == ["xor_blobs"]

    monkeypatch.delenv("MMBENCH_PLUGINS")
    monkeypatch.setenv("MMBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert load_registry().names("fusion") == []


def test_listing_and_validating_do_not_import_torch(tmp_path):
    suite = Path(__file__).parent.parent / "suite.toml"
    code = ("import sys\nfrom mmbench.registry import load_registry\nfrom mmbench.suite import load_suite\n"
            f"load_suite({str(suite)!r}, load_registry())\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parameters_are_checked_like_a_builtins(tmp_path):
    suite = write(tmp_path / "bad.toml", """
[suite]
name = "bad"
[[datasets]]
name = "xor_blobs"
dims = 16
[[fusions]]
name = "gated_sum"
hidden = 0
gate = "soft"
""")
    with pytest.raises(SuiteError) as caught:
        load_suite(suite, load_registry())
    problems = {where.split(") ", 1)[-1]: message for where, message in caught.value.problems}
    assert problems["dims"] == "unknown parameter; did you mean 'dim'?"
    assert problems["hidden"] == "must be >= 1, got 0"
    assert problems["gate"] == "expected one of 'modality', 'sample', got 'soft'"
    assert main(["validate", str(suite)]) == 2


# --- the dataset ----------------------------------------------------------------------

def test_xor_blobs_is_deterministic_and_well_formed():
    a = instance("dataset", "xor_blobs", n_samples=200, dim=5, seed=3).load()
    b = instance("dataset", "xor_blobs", n_samples=200, dim=5, seed=3).load()
    c = instance("dataset", "xor_blobs", n_samples=200, dim=5, seed=4).load()
    assert a.task == "binary" and a.classes == ("same", "different")
    assert set(a.modalities) == {"image", "tabular"}
    assert all(x.shape == (200, 5) and x.dtype == np.float32 for x in a.modalities.values())
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.modalities["image"], b.modalities["image"])
    assert not np.array_equal(a.modalities["image"], c.modalities["image"])
    assert 0.35 < a.labels.mean() < 0.65
    assert list(a.groups[:8]) == ["patient00000"] * 4 + ["patient00001"] * 4
    # a parameter change is a new fingerprint, hence new run ids
    fingerprints = {instance("dataset", "xor_blobs", seed=s).fingerprint() for s in (0, 0, 1)}
    assert len(fingerprints) == 2


def test_neither_modality_alone_predicts_the_label():
    from sklearn.neighbors import KNeighborsClassifier

    table = instance("dataset", "xor_blobs", n_samples=2000, dim=8, noise=0.5).load()
    train, test = np.arange(1000), np.arange(1000, 2000)

    def accuracy(x):
        knn = KNeighborsClassifier(n_neighbors=15).fit(x[train], table.labels[train])
        return knn.score(x[test], table.labels[test])

    image, tabular = table.modalities["image"], table.modalities["tabular"]
    assert accuracy(image) < 0.6
    assert accuracy(tabular) < 0.6
    assert accuracy(np.hstack([image, tabular])) > 0.85


@pytest.mark.parametrize("seed", range(5))
def test_groups_never_cross_splits(seed):
    table = instance("dataset", "xor_blobs", n_samples=1000).load()
    rows = split_indices(table, val=0.1, test=0.2, seed=seed)  # what the runner does
    assert sorted(np.concatenate(list(rows.values()))) == list(range(1000))
    owner: dict[str, str] = {}
    for split, index in rows.items():
        assert len(index) > 0
        for group in table.groups[index]:
            assert owner.setdefault(group, split) == split, f"group {group} in {owner[group]} and {split}"


# --- the fusion -----------------------------------------------------------------------

@pytest.mark.parametrize("gate", ["modality", "sample"])
@pytest.mark.parametrize("n_outputs", [1, 4])
def test_gated_sum_model_shapes_and_gate(gate, n_outputs):
    import torch

    fusion = instance("fusion", "gated_sum", hidden=8, gate=gate)
    model = fusion.build_model({"image": 5, "tabular": 3}, n_outputs)
    features = {"image": torch.randn(7, 5), "tabular": torch.randn(7, 3)}
    assert model(features).shape == (7, n_outputs)
    weights = model.gate_weights(features)
    assert weights.shape == (7, 2)
    assert torch.all(weights >= 0) and torch.allclose(weights.sum(dim=1), torch.ones(7))


SUITE = """
[suite]
name = "plugin_test"
seeds = [0]
threads = 1

[train]
epochs = 10
lr = 0.005

[[datasets]]
name = "xor_blobs"
label = "xor"
n_samples = 600

[[datasets]]
name = "synthetic"
label = "multiclass"
task = "multiclass"
n_classes = 3
n_samples = 400
dims = [8, 8]
signal = [1.0, 0.5]

[[datasets]]
name = "synthetic"
label = "multilabel"
task = "multilabel"
n_classes = 3
n_samples = 400
dims = [8, 8]
signal = [1.0, 0.5]

[[fusions]]
name = "gated_sum"
label = "gated_sum"  # the leaderboard shows only the swept gate after it
hidden = 32
gate = ["modality", "sample"]

# Additive in the modalities (one branch each, concatenated, linear head): cannot do XOR.
[[fusions]]
name = "late_joint"
label = "late_joint"
hidden = 32

[report]
output = "board"
results = "results"
"""


def test_suite_runs_every_task_kind_and_gated_sum_beats_chance(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = write(tmp_path / "suite.toml", SUITE)
    assert main(["run", str(suite)]) == 0

    board = json.loads((tmp_path / "board" / "plugin_test.json").read_text())
    auroc = {(d["dataset"], row["fusion"]): row["metrics"]["auroc"]["mean"]
             for d in board["datasets"] for row in d["rows"]}
    assert {d["task"] for d in board["datasets"]} == {"binary", "multiclass", "multilabel"}
    for dataset in ("xor", "multiclass", "multilabel"):
        for gate in ("modality", "sample"):
            assert auroc[(dataset, f"gated_sum(gate={gate})")] > 0.8, auroc
    assert auroc[("xor", "late_joint")] < 0.65, auroc

    results = [json.loads(p.read_text()) for p in (tmp_path / "results" / "plugin_test").glob("*.json")]
    assert len(results) == 3 * 3 and all(r["status"] == "ok" for r in results)
    fusion = next(r["spec"]["fusion"] for r in results if r["spec"]["fusion"]["name"] == "gated_sum")
    assert fusion["version"] == VERSION  # part of the run id: bump it when behaviour changes
    assert fusion["train"]["epochs"] == 10  # the suite's [train] beats train_defaults ...
    assert fusion["train"]["patience"] == 10  # ... which beat mmbench's defaults

    # a finished suite is skipped on re-run: results are keyed by everything that defines a run
    assert main(["run", str(suite)]) == 0
    assert len(list((tmp_path / "results" / "plugin_test").glob("*.json"))) == 9
