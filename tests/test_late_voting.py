"""late_voting (Balaji, MVSA late fusion): unimodal heads combined by mean, detection-rate or min-loss weights."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from mmbench import metrics
from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.params import resolve_params
from mmbench.registry import load_registry
from mmbench.train_config import TrainConfig
from mmbench.testing import check_probabilities
from support import plugin, train_config
from support import synthetic_splits as support_splits
from mmbench_fusion import late_voting, late_voting_modules

TASKS = (("binary", 2), ("multiclass", 3), ("multilabel", 3))



def fusion(name: str = "late_voting", **given):
    return plugin("fusion", name, **{"hidden": 16, **given})


def synthetic_splits(**given) -> dict[str, SplitData]:
    return support_splits(**{"n_samples": 300, "dims": [12, 8], **given})


def config(**overrides) -> TrainConfig:
    return train_config(**{"epochs": 6, **overrides})


# --- registration and contract -------------------------------------------------------------

def test_registers_with_its_parameters_and_the_papers_defaults():
    info = load_registry().get("fusion", "late_voting")
    assert info.source.distribution == "mmbench"
    defaults = {p["name"]: p["default"] for p in info.describe()["parameters"]}
    assert defaults == {"rule": "min_loss", "score": "accuracy", "class_prior": True,
                        "dr_normalize": "modalities", "hidden": 128, "dropout": 0.0,
                        "modalities": [], "contrastive_pretrain": [], "pretrain_epochs": 30,
                        "projection_dim": 64}
    _, problems = resolve_params(info.cls.parameters, {"rule": "vote"})
    assert problems and problems[0][0] == "rule"


def test_contrastive_pretrain_takes_distinct_modality_names():
    with pytest.raises(UserError, match="distinct modality names"):
        fusion(contrastive_pretrain=["image", "image"])
    with pytest.raises(UserError, match="distinct modality names"):
        fusion(contrastive_pretrain=[3])
    data = synthetic_splits()
    with pytest.raises(UserError, match=r"'audio'.*'image', 'text'"):
        fusion(contrastive_pretrain=["audio"]).fit(data["train"], data["val"], config())


@pytest.mark.parametrize("task,n_classes", TASKS)
@pytest.mark.parametrize("rule", late_voting.RULES)
def test_trains_and_predicts_valid_probabilities(rule, task, n_classes):
    data = synthetic_splits(task=task, n_classes=n_classes, signal=[0.8, 0.3])
    plugin = fusion(rule=rule)
    report = plugin.fit(data["train"], data["val"], config(epochs=4))
    proba = plugin.predict_proba(data["test"])
    check_probabilities(proba, data["test"])
    # per class (or label) weights, one array per modality
    problems, columns = (n_classes, 2) if task == "multilabel" else (1, 2 if task == "binary" else 3)
    assert sorted(plugin.weights) == ["image", "text"]
    assert all(w.shape == (problems, columns) for w in plugin.weights.values())
    if rule != "detection_rate" or plugin.params["dr_normalize"] == "modalities":
        np.testing.assert_allclose(sum(plugin.weights.values()), 1.0)
    # the report adds up the two unimodal trainings
    heads = plugin.reports.values()
    assert report.epochs_run == 4 and len(report.history) == 4
    assert report.best_epoch == max(r.best_epoch for r in heads)
    assert report.train_s_total == pytest.approx(sum(r.train_s_total for r in heads))
    assert report.model_mb == pytest.approx(sum(r.model_mb for r in heads))
    assert {"image/val_loss", "text/val_loss", "image/train_loss"} <= set(report.history[0])


# --- each head is a genuine unimodal model; the mean rule -----------------------------------

def test_mean_rule_is_the_average_of_the_unimodal_models():
    data = synthetic_splits(task="multiclass", n_classes=3, signal=[0.8, 0.3])
    plugin = fusion(rule="mean")
    plugin.fit(data["train"], data["val"], config())
    alone = {}
    for m in ("image", "text"):
        torch.manual_seed(0)  # the run's seed, as the runner sets it
        unimodal = fusion("unimodal", modality=m)
        unimodal.fit(data["train"], data["val"], config())
        alone[m] = unimodal.predict_proba(data["test"])
    # each head is exactly the `unimodal` model of its modality...
    for m, proba in plugin.modality_proba(data["test"]).items():
        np.testing.assert_array_equal(proba, alone[m])
    # ...and the fusion is their plain average
    np.testing.assert_allclose(plugin.predict_proba(data["test"]), (alone["image"] + alone["text"]) / 2,
                               atol=1e-6)


# --- weights come from validation only ----------------------------------------------------------

@pytest.mark.parametrize("rule", ("detection_rate", "min_loss"))
def test_weights_are_computed_on_validation_never_on_test(rule, monkeypatch):
    data = synthetic_splits(task="multiclass", n_classes=3, signal=[0.8, 0.3])
    seen = []
    real_confusion, real_quality = sklearn.metrics.confusion_matrix, metrics.quality

    def spy_confusion(y_true, y_pred, **kw):
        seen.append(("confusion", np.asarray(y_true)))
        return real_confusion(y_true, y_pred, **kw)

    def spy_quality(labels, proba, task):
        seen.append(("quality", np.asarray(labels)))
        return real_quality(labels, proba, task)

    monkeypatch.setattr(sklearn.metrics, "confusion_matrix", spy_confusion)
    monkeypatch.setattr(metrics, "quality", spy_quality)
    plugin = fusion(rule=rule)
    plugin.fit(data["train"], data["val"], config())
    weights = {m: w.copy() for m, w in plugin.weights.items()}
    assert seen, "the weights were computed from some labels"
    val = data["val"].labels
    for kind, labels in seen:
        if kind == "quality":
            np.testing.assert_array_equal(labels, val)
        else:  # one-vs-all: class j against the rest
            assert any(np.array_equal(labels, val == j) for j in range(3))

    # predicting test does not touch the weights, and test labels change nothing
    test = data["test"]
    proba = plugin.predict_proba(test)
    relabelled = SplitData(test.ids, test.features, np.roll(test.labels, 1), test.task, test.classes)
    np.testing.assert_array_equal(plugin.predict_proba(relabelled), proba)
    for m, w in weights.items():
        np.testing.assert_array_equal(plugin.weights[m], w)

    # whereas other validation labels give other weights
    shuffled = SplitData(data["val"].ids, data["val"].features,
                         np.random.default_rng(0).permutation(val), "multiclass", data["val"].classes)
    other = fusion(rule=rule)
    other.fit(data["train"], shuffled, config())
    assert any(not np.allclose(other.weights[m], w) for m, w in weights.items())


@pytest.mark.parametrize("score", ("accuracy", "f1"))
def test_min_loss_weights_an_uninformative_modality_down(score):
    data = synthetic_splits(task="multiclass", n_classes=3, signal=[1.0, 0.0], n_samples=400)
    plugin = fusion(rule="min_loss", score=score)
    plugin.fit(data["train"], data["val"], config(epochs=8, lr=0.01))
    val = data["val"]
    scorer = (lambda y, p: accuracy_score(y, p)) if score == "accuracy" else \
        (lambda y, p: f1_score(y, p, average="macro"))
    scores = {m: scorer(val.labels, p.argmax(axis=1)) for m, p in plugin.modality_proba(val).items()}
    w = {m: float(plugin.weights[m][0, 0]) for m in scores}
    assert w["image"] > w["text"]
    assert scores["image"] > 0.8  # the informative modality
    for m in scores:  # W_m = score_m / sum of scores, every class alike
        assert w[m] == pytest.approx(scores[m] / sum(scores.values()))
        assert np.all(plugin.weights[m] == w[m])


def test_min_loss_scores_the_epoch_of_lowest_validation_loss_whatever_the_monitor():
    # monitoring accuracy, the head that predicts may come from another epoch than the one
    # of lowest validation loss; the paper's score is the latter's
    data = synthetic_splits(task="multiclass", n_classes=3, signal=[0.5, 0.2])
    plugin = fusion(rule="min_loss")
    plugin.fit(data["train"], data["val"], config(epochs=12, lr=0.05, monitor="accuracy"))
    differs = []
    for m, report in plugin.reports.items():
        lowest = min(report.history, key=lambda h: h["val_loss"])
        assert plugin.scores[m] == lowest["val_accuracy"]
        differs.append(lowest["epoch"] != report.best_epoch)
    assert any(differs), "this data should make the two epochs differ"
    total = sum(plugin.scores.values())
    assert {m: float(w[0, 0]) for m, w in plugin.weights.items()} == \
        pytest.approx({m: s / total for m, s in plugin.scores.items()})


# --- detection-rate weights, by hand --------------------------------------------------------

def test_detection_rate_weights_match_a_hand_checked_multiclass_example():
    y = np.array([0, 0, 1, 2])
    proba = {  # argmax: a -> [0, 1, 1, 2], b -> [0, 0, 2, 2]
        "a": np.array([[.8, .1, .1], [.2, .7, .1], [.1, .6, .3], [.1, .2, .7]]),
        "b": np.array([[.6, .3, .1], [.5, .4, .1], [.3, .1, .6], [.2, .2, .6]]),
    }
    # one-vs-all true positives: a finds one of each class, b two 0s, no 1, one 2
    for m, expected_tp in (("a", [1, 1, 1]), ("b", [2, 0, 1])):
        pred = proba[m].argmax(axis=1)
        tp = [confusion_matrix(y == j, pred == j, labels=[False, True])[1, 1] for j in range(3)]
        assert tp == expected_tp
        np.testing.assert_allclose(late_voting.detection_rates(y, proba[m], "multiclass"),
                                   [np.array(expected_tp) / 4])  # DR = TP / (TP + TN + FP + FN)

    # a_j = [.5, .25, .25]; 1 - DR + a: a -> [1.25, 1, 1], b -> [1, 1.25, 1]
    w = late_voting.detection_rate_weights(y, proba, "multiclass")
    np.testing.assert_allclose(w["a"], [[5 / 9, 4 / 9, 1 / 2]])
    np.testing.assert_allclose(w["b"], [[4 / 9, 5 / 9, 1 / 2]])
    # without the class prior: a -> [.75, .75, .75], b -> [.5, 1, .75]
    w = late_voting.detection_rate_weights(y, proba, "multiclass", class_prior=False)
    np.testing.assert_allclose(w["a"], [[.6, 3 / 7, .5]])
    np.testing.assert_allclose(w["b"], [[.4, 4 / 7, .5]])
    # the paper's printed normalisation, over classes: a -> [1.25, 1, 1] / 3.25
    w = late_voting.detection_rate_weights(y, proba, "multiclass", normalize="classes")
    np.testing.assert_allclose(w["a"], [[1.25 / 3.25, 1 / 3.25, 1 / 3.25]])
    np.testing.assert_allclose(w["b"], [[1 / 3.25, 1.25 / 3.25, 1 / 3.25]])

    # the weights multiply the class columns; the row is renormalised
    w = late_voting.detection_rate_weights(y, proba, "multiclass")
    row = np.array([5 / 9 * .8 + 4 / 9 * .6, 4 / 9 * .1 + 5 / 9 * .3, .5 * .1 + .5 * .1])
    np.testing.assert_allclose(late_voting.combine(proba, w, "multiclass")[0], row / row.sum())


def test_detection_rate_on_binary_tasks_treats_p_as_two_columns():
    y = np.array([0, 1, 1, 0])
    proba = {"a": np.array([.2, .7, .4, .6]),   # predicts [0, 1, 0, 1]: one TP per class
             "b": np.array([.1, .9, .8, .3])}   # predicts [0, 1, 1, 0]: two TPs per class
    # DR: a [.25, .25], b [.5, .5]; a_j = [.5, .5]; 1 - DR + a: a [1.25, 1.25], b [1, 1]
    w = late_voting.detection_rate_weights(y, proba, "binary")
    np.testing.assert_allclose(w["a"], [[5 / 9, 5 / 9]])
    np.testing.assert_allclose(w["b"], [[4 / 9, 4 / 9]])
    np.testing.assert_allclose(late_voting.combine(proba, w, "binary"),
                               5 / 9 * proba["a"] + 4 / 9 * proba["b"])
    # unequal column weights: positive column weighted, renormalised against the negative one
    w = late_voting.detection_rate_weights(y, proba, "binary", normalize="classes")
    np.testing.assert_allclose(w["a"], [[.5, .5]])
    uneven = {"a": np.array([[.3, .7]]), "b": np.array([[.6, .4]])}
    p = np.array([.9])
    combined = late_voting.combine({"a": p, "b": p}, uneven, "binary")
    positive, negative = .7 * .9 + .4 * .9, .3 * .1 + .6 * .1
    np.testing.assert_allclose(combined, [positive / (positive + negative)])


def test_detection_rate_on_multilabel_tasks_is_per_label():
    y = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
    proba = {"a": np.array([[.9, .2], [.1, .1], [.8, .3], [.2, .7]]),   # label 1 misses row 2
             "b": np.array([[.3, .2], [.1, .9], [.8, .8], [.2, .7]])}   # label 0 misses row 0
    for m in proba:
        pred = (proba[m] >= .5).astype(int)
        expected = [[confusion_matrix(y[:, lab] == j, pred[:, lab] == j, labels=[False, True])[1, 1] / 4
                     for j in (0, 1)] for lab in (0, 1)]
        np.testing.assert_allclose(late_voting.detection_rates(y, proba[m], "multilabel"), expected)
    # label 0: DR a [.5, .5], b [.5, .25]; prior [.5, .5] -> a [1, 1], b [1, 1.25]
    # label 1: DR a [.5, .25], b [.25, .5]; prior [.5, .5] -> a [1, 1.25], b [1.25, 1]
    w = late_voting.detection_rate_weights(y, proba, "multilabel")
    np.testing.assert_allclose(w["a"], [[.5, 1 / 2.25], [1 / 2.25, 1.25 / 2.25]])
    np.testing.assert_allclose(w["b"], [[.5, 1.25 / 2.25], [1.25 / 2.25, 1 / 2.25]])
    combined = late_voting.combine(proba, w, "multilabel")
    assert combined.shape == (4, 2)
    positive = w["a"][0, 1] * .9 + w["b"][0, 1] * .3
    negative = w["a"][0, 0] * .1 + w["b"][0, 0] * .7
    assert combined[0, 0] == pytest.approx(positive / (positive + negative))


# --- contrastive pre-training ------------------------------------------------------------------

def test_npair_loss_is_lower_for_embeddings_that_separate_the_classes():
    labels = torch.tensor([[0], [0], [1], [1]])
    separated = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    mixed = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    # separated: every anchor has f.f+ = 1 and two negatives at f.f_i = -1,
    # log(1 + 2 exp(-1 - 1)); mixed: f.f+ = -1, negatives at 1 and -1,
    # log(1 + exp(1 + 1) + exp(-1 + 1))
    loss = late_voting_modules.npair_loss
    assert float(loss(separated, labels)) == pytest.approx(np.log(1 + 2 * np.exp(-2)))
    assert float(loss(mixed, labels)) == pytest.approx(np.log(1 + np.exp(2) + 1))


def test_contrastive_pretraining_reduces_its_loss_and_freezes_the_encoder(monkeypatch):
    data = synthetic_splits(task="multiclass", n_classes=3, signal=[0.8, 0.3])
    snapshots = {}
    real_pretrain = late_voting_modules.pretrain_encoder

    def spy(*args, **kwargs):
        encoder, losses, seconds = real_pretrain(*args, **kwargs)
        snapshots["encoder"] = {k: v.clone() for k, v in encoder.state_dict().items()}
        return encoder, losses, seconds

    monkeypatch.setattr(late_voting_modules, "pretrain_encoder", spy)
    plugin = fusion(contrastive_pretrain=["image"], pretrain_epochs=8)
    report = plugin.fit(data["train"], data["val"], config(epochs=4, lr=0.01))

    losses = plugin.pretrain_losses["image"]
    assert list(plugin.pretrain_losses) == ["image"] and len(losses) == 8
    assert losses[-1] < 0.9 * losses[0]
    # the timeline: 8 pre-training steps, then the head's 4 epochs
    assert report.epochs_run == 12 and len(report.history) == 12
    assert [h.get("image/npair_loss") for h in report.history[:8]] == losses
    assert "image/val_loss" in report.history[8] and "text/val_loss" in report.history[0]
    # the head trained on a frozen encoder (BatchNorm statistics included)
    model = plugin.models["image"]
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, snapshots["encoder"][key]), key
    assert not any(p.requires_grad for p in model.encoder.parameters())
    proba = plugin.predict_proba(data["test"])
    assert metrics.quality(data["test"].labels, proba, "multiclass")["accuracy"] > 0.5


def test_one_voting_modality_is_the_fusions_own_pretrained_head_alone():
    """Balaji, results table: the image model's 0.6208 is the ResNet50 after supervised
    contrastive pre-training ("implementing a contrastive learning approach significantly
    enhanced the classifier's prediction ability", section V). ``modalities = ["image"]``
    gives exactly the N-pair pre-trained image head the late fusions vote with, so the
    image-only row compares with that number."""
    data = synthetic_splits(task="multiclass", n_classes=3, signal=[0.8, 0.3])
    both = fusion(rule="mean", contrastive_pretrain=["image"], pretrain_epochs=3)
    both.fit(data["train"], data["val"], config(epochs=3))
    alone = fusion(rule="mean", modalities=["image"], contrastive_pretrain=["image"], pretrain_epochs=3)
    report = alone.fit(data["train"], data["val"], config(epochs=3))
    assert list(alone.models) == ["image"] and len(alone.pretrain_losses["image"]) == 3
    assert report.epochs_run == 6  # 3 pre-training steps, then the head's 3 epochs
    np.testing.assert_array_equal(alone.modality_proba(data["test"])["image"], both.modality_proba(data["test"])["image"])
    np.testing.assert_allclose(alone.predict_proba(data["test"]), both.modality_proba(data["test"])["image"], atol=1e-6)
    with pytest.raises(UserError, match=r"modalities names 'audio'"):
        fusion(modalities=["audio"]).fit(data["train"], data["val"], config())
    with pytest.raises(UserError, match="distinct modality names"):
        fusion(modalities=["image", "image"])

