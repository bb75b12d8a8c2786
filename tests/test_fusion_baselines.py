"""The single-modality and OmniFuse comparison baselines: unimodal, concat, sum, se_gate.

Data comes from the built-in ``synthetic`` dataset, split by the runner's own splitter,
so the fusions see exactly what a suite run hands them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmbench import metrics
from mmbench.cli import main
from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.params import resolve_params
from mmbench.registry import load_registry
from mmbench.train_config import TrainConfig
from mmbench.testing import check_probabilities
from support import plugin, train_config
from support import synthetic_splits as support_splits

BASELINES = ("unimodal", "concat", "sum", "se_gate")
TASKS = (("binary", 2), ("multiclass", 3), ("multilabel", 3))



def fusion(name: str, **given):
    return plugin("fusion", name, **given)


def synthetic_splits(**given) -> dict[str, SplitData]:
    return support_splits(**{"n_samples": 300, "dims": [12, 8], **given})


def config(**overrides) -> TrainConfig:
    return train_config(**{"epochs": 6, **overrides})


# --- registration -------------------------------------------------------------------------

def test_every_baseline_registers_with_its_parameters():
    registry = load_registry()
    assert not [b for b in registry.broken if b.source.distribution == "mmbench"]
    expected = {
        "unimodal": ["modality", "hidden", "dropout"],
        "concat": ["hidden", "dropout"],
        "sum": ["hidden", "dropout"],
        "se_gate": ["hidden", "dropout", "reduction", "combine"],
    }
    for name, params in expected.items():
        info = registry.get("fusion", name)
        assert info.source.distribution == "mmbench"
        described = {p["name"]: p for p in info.describe()["parameters"]}
        assert list(described) == params
        assert info.cls.citation
    assert {p["name"]: p["default"] for p in registry.get("fusion", "se_gate").describe()["parameters"]} == \
        {"hidden": 128, "dropout": 0.0, "reduction": 1, "combine": "concat"}


def test_unimodal_requires_its_modality_parameter():
    cls = load_registry().get("fusion", "unimodal").cls
    _, problems = resolve_params(cls.parameters, {})
    assert [key for key, _ in problems] == ["modality"]
    assert "required" in problems[0][1]


# --- contract: shapes and probabilities ----------------------------------------------------

@pytest.mark.parametrize("task,n_classes", TASKS)
@pytest.mark.parametrize("name", BASELINES)
def test_trains_and_predicts_valid_probabilities(name, task, n_classes):
    data = synthetic_splits(task=task, n_classes=n_classes, signal=[0.8, 0.4])
    plugin = fusion(name, hidden=16, **({"modality": "text"} if name == "unimodal" else {}))
    report = plugin.fit(data["train"], data["val"], config(epochs=4))
    check_probabilities(plugin.predict_proba(data["test"]), data["test"])
    assert report.epochs_run == 4 and len(report.history) == 4
    assert 1 <= report.best_epoch <= 4
    assert report.model_mb > 0 and report.train_s_total > 0


@pytest.mark.parametrize("modalities", (["a"], ["a", "b", "c"]))
@pytest.mark.parametrize("name", ("concat", "sum", "se_gate"))
def test_any_number_of_modalities(name, modalities):
    data = synthetic_splits(modalities=modalities, dims=[6] * len(modalities), signal=[0.8] * len(modalities))
    plugin = fusion(name, hidden=8)
    plugin.fit(data["train"], data["val"], config(epochs=2))
    check_probabilities(plugin.predict_proba(data["test"]), data["test"])


# --- unimodal --------------------------------------------------------------------------------

def test_unimodal_never_looks_at_the_other_modality():
    data = synthetic_splits(signal=[0.8, 0.8])

    def shuffled_text(split: SplitData, seed: int) -> SplitData:
        rows = np.random.default_rng(seed).permutation(len(split))
        return split.with_features({**split.features, "text": split.features["text"][rows]})

    torch.manual_seed(0)
    plugin = fusion("unimodal", modality="image", hidden=16)
    plugin.fit(data["train"], data["val"], config())
    proba = plugin.predict_proba(data["test"])
    np.testing.assert_array_equal(plugin.predict_proba(shuffled_text(data["test"], 1)), proba)

    # trained on scrambled text it is the very same model
    torch.manual_seed(0)
    other = fusion("unimodal", modality="image", hidden=16)
    other.fit(shuffled_text(data["train"], 2), shuffled_text(data["val"], 3), config())
    np.testing.assert_array_equal(other.predict_proba(data["test"]), proba)

    # while the text-only model predicts something else entirely
    text = fusion("unimodal", modality="text", hidden=16)
    text.fit(data["train"], data["val"], config())
    assert not np.allclose(text.predict_proba(data["test"]), proba)


def test_unimodal_names_the_missing_modality_and_the_available_ones():
    data = synthetic_splits()
    plugin = fusion("unimodal", modality="audio")
    with pytest.raises(UserError, match=r"'audio'.*'image', 'text'"):
        plugin.fit(data["train"], data["val"], config())


# --- OmniFuse baselines ------------------------------------------------------------------

@pytest.mark.parametrize("name", ("concat", "sum", "se_gate"))
def test_fusions_beat_chance_on_informative_data(name):
    data = synthetic_splits(signal=[0.6, 0.6], n_samples=400)
    torch.manual_seed(0)
    plugin = fusion(name, hidden=32)
    plugin.fit(data["train"], data["val"], config(epochs=10))
    quality = metrics.quality(data["test"].labels, plugin.predict_proba(data["test"]), "binary")
    # chance is 0.5 accuracy and 0.5 AUROC on these balanced classes
    assert quality["accuracy"] > 0.8
    assert quality["auroc"] > 0.9


def test_se_gates_lie_in_zero_one_and_depend_on_the_input():
    data = synthetic_splits(signal=[0.8, 0.1], n_samples=400)
    torch.manual_seed(0)
    plugin = fusion("se_gate", hidden=16)
    plugin.fit(data["train"], data["val"], config(epochs=8))
    model = plugin.model.eval()
    inputs = {m: torch.from_numpy(x) for m, x in data["test"].features.items()}
    with torch.no_grad():
        _, gates = model.gates(inputs)
        assert gates.shape == (len(data["test"]), 2)
        assert bool(((gates > 0) & (gates < 1)).all())
        assert float(gates.std(dim=0).min()) > 0  # they differ from sample to sample
        # silencing the image modality moves the gates (float32 noise is ~1e-7). The squeeze
        # is a mean over hidden units, which varies little between unit-norm embeddings, so
        # the response is small but real.
        _, silenced = model.gates({**inputs, "image": torch.zeros_like(inputs["image"])})
        assert float((silenced - gates).abs().max()) > 1e-4
        # and the gates really scale the prediction: forcing them to 1 changes it
        logits = model(inputs)
        model.excite[-1] = torch.nn.Identity()  # no sigmoid...
        model.excite[-2].weight.zero_()
        model.excite[-2].bias.fill_(1.0)  # ...and a constant 1: the ungated model
        assert not torch.allclose(model(inputs), logits)


# --- end to end ---------------------------------------------------------------------------------

SUITE = """
[suite]
name = "baselines"
seeds = [0]
threads = 1

[train]
epochs = 3

[[datasets]]
name = "synthetic"
n_samples = 240
task = "multiclass"
n_classes = 3
dims = [8, 6]
signal = [0.8, 0.3]

[[fusions]]
name = "unimodal"
modality = ["image", "text"]
hidden = 8

[[fusions]]
name = "concat"
hidden = 8

[[fusions]]
name = "sum"
hidden = 8

[[fusions]]
name = "se_gate"
hidden = 8

[[fusions]]
name = "late_voting"
hidden = 8
rule = ["mean", "detection_rate", "min_loss"]

[[fusions]]
name = "late_voting"
label = "late_voting_contrastive"
hidden = 8
contrastive_pretrain = ["image"]
pretrain_epochs = 2
"""


def test_a_suite_of_every_baseline_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "baselines.toml"
    suite.write_text(SUITE)
    assert main(["run", str(suite)]) == 0
    results = [json.loads(p.read_text()) for p in sorted((tmp_path / "results" / "baselines").glob("*.json"))]
    assert len(results) == 2 + 1 + 1 + 1 + 3 + 1
    assert all(r["status"] == "ok" for r in results), [r.get("error") for r in results]
    for r in results:
        assert 0.0 <= r["metrics"]["accuracy"] <= 1.0
        assert r["metrics"]["epochs_run"] >= 3
