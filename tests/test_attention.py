"""PairDxFusion (``attention``, the PairDx paper): attention over token vectors, fused with the image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmbench.data import SplitData, TokenSequence
from mmbench.errors import UserError
from mmbench.metrics import quality
from mmbench.registry import load_registry
from mmbench.train_config import TrainConfig
from mmbench.testing import check_probabilities
from mmbench_fusion.attention import PairDxFusion
from mmbench_fusion.mlp import EarlyFusion
from support import make, synthetic_splits, train_config

SMALL = {"attention_dim": 16, "hidden": 16}


def config(**given) -> TrainConfig:
    return train_config(**{**PairDxFusion.train_defaults, **given})


def splits(seed=0, **dataset) -> dict[str, SplitData]:
    """Synthetic data with token sequences for "text", split as the runner splits it."""
    return synthetic_splits(seed, 0.15, 0.15, **{"n_samples": 300, "dims": [8, 8], "sequence_length": 8,
                                                 **dataset})


def fitted(data, fusion=None, **train):
    torch.manual_seed(0)
    fusion = fusion or make(PairDxFusion, **SMALL)
    report = fusion.fit(data["train"], data["val"], config(**{"epochs": 3, **train}))
    return fusion, report


def test_attention_is_registered_with_the_papers_settings():
    registry = load_registry()
    info = registry.get("fusion", "attention")
    assert info.cls is PairDxFusion and info.source.distribution == "mmbench"
    defaults = {p.name: p.default for p in PairDxFusion.parameters}
    assert defaults["text_modality"] == "text" and defaults["image_modality"] == "image"
    assert defaults["attention_dim"] == 256 and defaults["schedule"] == "onecycle"
    assert PairDxFusion.train_defaults == {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01,
                                           "batch_size": 128, "epochs": 20}
    with pytest.raises(UserError, match="must differ"):
        make(PairDxFusion, text_modality="image")


@pytest.mark.parametrize("task, n_classes", [("binary", 2), ("multiclass", 3), ("multilabel", 4)])
def test_it_trains_and_predicts_probabilities_for_every_task(task, n_classes):
    data = splits(task=task, n_classes=n_classes)
    fusion, report = fitted(data)
    assert report.epochs_run == 3 and 1 <= report.best_epoch <= 3 and report.model_mb > 0
    proba = fusion.predict_proba(data["test"])
    check_probabilities(proba, data["test"])


def test_padded_tokens_do_not_change_any_prediction():
    data = splits(task="multiclass", n_classes=3)
    fusion, _ = fitted(data)
    test = data["test"]
    sequence = test.sequences["text"]
    assert (~sequence.mask).any()
    before = fusion.predict_proba(test)

    def with_values(values):
        return SplitData(test.ids, test.features, test.labels, test.task, test.classes,
                         sequences={"text": TokenSequence(values, sequence.mask)})

    rng = np.random.default_rng(0)
    garbage = np.where(sequence.mask[..., None], sequence.values,
                       rng.normal(0, 100, sequence.values.shape)).astype(np.float32)
    np.testing.assert_array_equal(fusion.predict_proba(with_values(garbage)), before)
    # the check has teeth: the same change at real positions does move the predictions
    real = np.where(sequence.mask[..., None], rng.normal(0, 1, sequence.values.shape),
                    sequence.values).astype(np.float32)
    assert np.abs(fusion.predict_proba(with_values(real)) - before).max() > 1e-3


def test_a_text_marked_missing_reads_as_an_empty_caption():
    data = splits()
    fusion, _ = fitted(data)
    test = data["test"]
    missing = np.zeros(len(test), dtype=bool)
    missing[::2] = True
    masked = SplitData(test.ids, test.features, test.labels, test.task, test.classes,
                       masks={"text": ~missing}, sequences=test.sequences)
    empty = test.sequences["text"]
    emptied = SplitData(test.ids, test.features, test.labels, test.task, test.classes,
                        sequences={"text": TokenSequence(empty.values, empty.mask & ~missing[:, None])})
    np.testing.assert_array_equal(fusion.predict_proba(masked), fusion.predict_proba(emptied))
    assert np.isfinite(fusion.predict_proba(emptied)).all()  # no real token at all: still finite


def test_without_token_vectors_it_fails_clearly_unless_the_fallback_is_on():
    data = {k: SplitData(v.ids, v.features, v.labels, v.task, v.classes) for k, v in splits().items()}
    with pytest.raises(UserError, match="no token vectors.*dataset or its encoder must provide them"):
        fitted(data)
    with pytest.raises(UserError, match="no image modality 'photo'"):
        fitted(splits(), make(PairDxFusion, image_modality="photo", **SMALL))
    fusion, report = fitted(data, make(PairDxFusion, pooled_fallback=True, **SMALL))
    assert report.epochs_run == 3
    assert fusion.predict_proba(data["test"]).shape == (len(data["test"]),)


def test_onecycle_raises_then_lowers_the_learning_rate_every_batch():
    data = splits()  # 210 training samples: batches of 128 and 82
    fusion, report = fitted(data, epochs=5, lr=1e-2)
    trace = np.array(fusion.lr_trace)
    assert len(trace) == 5 * 2  # one step per batch
    peak = int(trace.argmax())
    assert 0 < peak < len(trace) - 1
    assert np.all(np.diff(trace[:peak + 1]) > 0) and np.all(np.diff(trace[peak:]) < 0)
    assert trace[0] == pytest.approx(1e-2 / 25)  # torch's OneCycleLR defaults
    assert trace.max() == pytest.approx(1e-2, rel=0.05)
    assert trace[-1] < trace[0] / 100
    assert [r["lr"] for r in report.history] == pytest.approx(list(trace[1::2]))
    constant, _ = fitted(data, make(PairDxFusion, schedule="constant", **SMALL), epochs=2, lr=1e-2)
    assert constant.lr_trace == pytest.approx([1e-2] * 4)  # constant: one entry per step, unchanged
    assert constant.model is not None


def test_attention_finds_the_signal_tokens_that_a_mean_of_tokens_dilutes():
    """Only 3 of 16..32 tokens carry the class; the pooled text vector and the image carry
    nothing. Attention must beat the same data read as the mean of the tokens."""
    table_args = {"n_samples": 1500, "signal": [0.0, 0.0], "dims": [8, 32], "sequence_length": 32,
                  "token_signal": 0.5}
    data = splits(**table_args)
    fusion, _ = fitted(data, make(PairDxFusion, attention_dim=64, hidden=64), epochs=20)
    attention = quality(data["test"].labels, fusion.predict_proba(data["test"]), "binary")

    def mean_of_tokens(d):
        s = d.sequences["text"]
        real = s.mask[..., None]
        return d.with_features({"image": d.features["image"],
                                "text": (s.values * real).sum(1) / real.sum(1)})

    means = {k: mean_of_tokens(v) for k, v in data.items()}
    torch.manual_seed(0)
    early = make(EarlyFusion)
    early.fit(means["train"], means["val"], TrainConfig.from_params({}, seed=0))
    baseline = quality(means["test"].labels, early.predict_proba(means["test"]), "binary")
    # measured: attention AUROC 0.948, early fusion on the token mean 0.893
    assert attention["auroc"] > 0.9
    assert attention["auroc"] > baseline["auroc"] + 0.02


def test_a_suite_runs_attention_on_synthetic_sequences(tmp_path, monkeypatch):
    from mmbench.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "seq.toml").write_text("""
[suite]
name = "seq"
seeds = [0]
threads = 1

[train]
epochs = 3

[[datasets]]
name = "synthetic"
n_samples = 300
dims = [8, 8]
sequence_length = 8

[[fusions]]
name = "attention"
attention_dim = 16
hidden = 16
""")
    assert main(["run", str(tmp_path / "seq.toml")]) == 0
    [result] = [json.loads(p.read_text()) for p in (tmp_path / "results" / "seq").glob("*.json")]
    assert result["status"] == "ok", result["error"]
    assert 0.0 <= result["metrics"]["auroc"] <= 1.0
    assert [round(r["epoch"]) for r in result["history"]] == [1, 2, 3]
    assert all("lr" in r for r in result["history"])
