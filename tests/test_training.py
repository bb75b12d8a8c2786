"""The shared trainer: validation picks the epoch, class weights, Restrepo et al.'s sizes."""

import numpy as np
import pytest
import torch

from mmbench.data import SplitData
from mmbench.training import batch_bounds, loss_function, model_mb, predict_proba, train_classifier
from mmbench_fusion.modules import EarlyMLP, LateJointMLP
from support import train_config


def config(**overrides):
    return train_config(**overrides)


def split(n, task="binary", seed=0, shift=1.0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    x = rng.standard_normal((n, 8)).astype(np.float32) + shift * labels[:, None]
    return SplitData(ids=np.arange(n), features={"a": x[:, :4], "b": x[:, 4:]}, labels=labels,
                     task=task, classes=("neg", "pos"))


def test_low_resource_model_size_matches_the_paper():
    # BRSET + CLIP: 512 + 512 dims, early fusion with 128 hidden units, binary: 0.50 MB.
    model = EarlyMLP(1024, 128, 0.0, 1)
    assert round(model_mb(model), 2) == 0.50


def test_best_epoch_is_chosen_on_validation_and_its_weights_restored():
    torch.manual_seed(0)
    train, val = split(400, seed=0), split(100, seed=1)
    model = LateJointMLP({"a": 4, "b": 4}, 8, 0.0, 1)
    report = train_classifier(model, train, val, config(epochs=12, lr=0.05))
    losses = [h["val_loss"] for h in report.history]
    assert report.best_epoch == 1 + int(np.argmin(losses))
    # the restored model reproduces the best epoch's validation loss
    criterion = loss_function(train, "inverse_frequency")
    proba = torch.from_numpy(predict_proba(model, val)).clamp(1e-7, 1 - 1e-7)
    logits = torch.logit(proba).unsqueeze(1)
    restored = float(criterion(logits, torch.as_tensor(val.labels, dtype=torch.float32).unsqueeze(1)))
    assert restored == pytest.approx(min(losses), rel=1e-4)


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    train, val = split(200), split(100, seed=1, shift=0.0)  # validation has no signal
    report = train_classifier(EarlyMLP(8, 8, 0.0, 1), train, val, config(epochs=200, patience=3, lr=0.05))
    assert report.epochs_run < 200
    assert report.epochs_run == report.best_epoch + 3


def test_monitoring_a_metric_records_it_per_epoch():
    report = train_classifier(EarlyMLP(8, 8, 0.0, 1), split(200), split(100, seed=1),
                              config(epochs=3, monitor="auroc"))
    assert all(0.0 <= h["val_auroc"] <= 1.0 for h in report.history)


def test_class_weights_are_inverse_to_class_counts():
    data = SplitData(ids=np.arange(10), features={}, labels=np.array([0] * 6 + [1] * 3 + [2]),
                     task="multiclass", classes=("a", "b", "c"))
    weight = loss_function(data, "inverse_frequency").weight
    assert torch.allclose(weight, torch.tensor([10 / 18, 10 / 9, 10 / 3]))
    binary = split(100)
    pos_weight = loss_function(binary, "inverse_frequency").pos_weight
    positives = binary.labels.sum()
    assert pos_weight.item() == pytest.approx((100 - positives) / positives)
    assert loss_function(binary, "none").pos_weight is None


def test_data_mb_counts_every_batch_tensor_as_restrepo_et_al_define_it():
    train = split(130)
    report = train_classifier(EarlyMLP(8, 8, 0.0, 1), train, split(20, seed=1), config(epochs=1))
    # 130 rows x (8 float32 features + 1 float32 label)
    assert report.data_mb_per_epoch == pytest.approx(130 * 9 * 4 / 2**20)


def test_a_trailing_batch_of_one_joins_the_previous_batch():
    assert batch_bounds(129, 64) == [(0, 64), (64, 129)]
    assert batch_bounds(130, 64) == [(0, 64), (64, 128), (128, 130)]
    train_classifier(EarlyMLP(8, 8, 0.0, 1), split(129), split(20, seed=1), config(epochs=1))


def test_a_result_says_whether_the_epoch_cap_or_early_stopping_ended_training():
    """The modality-gap paper, 2.2.4: "Optimization was performed using stochastic gradient
    descent with momentum 0.9 and learning rate 3e-4, with early stopping based on
    validation loss." Early stopping, not the cap, must end a probe; when the cap does,
    the result says so (``hit_epoch_cap``) so the leaderboard can warn."""
    train, val = split(200), split(100, seed=1, shift=0.0)  # validation has no signal: stops early
    stopped = train_classifier(EarlyMLP(8, 8, 0.0, 1), train, val, config(epochs=200, patience=3, lr=0.05))
    assert stopped.epochs_run < 200 and stopped.hit_epoch_cap is False
    train, val = split(400), split(200, seed=1)  # patience longer than the cap: the cap ends it
    capped = train_classifier(EarlyMLP(8, 8, 0.0, 1), train, val, config(epochs=3, patience=5))
    assert capped.epochs_run == 3 and capped.hit_epoch_cap is True
    fixed = train_classifier(EarlyMLP(8, 8, 0.0, 1), train, val, config(epochs=3, patience=0))
    assert fixed.hit_epoch_cap is None  # no early stopping: the cap is the schedule, not a cut


def test_the_linear_probe_cap_leaves_the_stopping_to_validation_loss():
    """The modality-gap paper: SGD, momentum 0.9, lr 3e-4, "early stopping based on
    validation loss"; it gives no cap. At lr 3e-4 a probe needs hundreds of epochs, so the
    cap is at least 1,000 (it was 100, which ended every probe of the synthetic suites)."""
    from mmbench_fusion.mlp import LinearProbe

    protocol = LinearProbe.train_defaults
    assert (protocol["optimizer"], protocol["lr"], protocol["momentum"]) == ("sgd", 3e-4, 0.9)
    assert protocol["patience"] > 0 and protocol["epochs"] >= 1000
