"""Late fusion by weighted voting of unimodal classifiers (Balaji, MVSA late fusion, MVSA-Single).

One classifier per modality, each trained alone on its own modality by mmbench's shared
trainer, then their probabilities are combined by a rule (Balaji, MVSA late fusion, section D):

- ``mean``: P = (1/M) sum_i P_i.
- ``detection_rate`` (section D.1): per modality i and class j, one-vs-all
  DR_ij = TP / (TP + TN + FP + FN) (so TP over all samples);
  W_ij = (1 - DR_ij + a_j) / sum_i (1 - DR_ij + a_j), a_j the class proportion when
  ``class_prior`` is true (else 0); the weights multiply the class columns.
- ``min_loss`` (section D.2, "minimising loss"): W_i = score_i / sum_k score_k, score the
  validation accuracy (or F1) at the epoch of lowest validation loss; P = sum_i W_i P_i.

Every weight is computed on the VALIDATION split (the paper says "after evaluating ... on
the test set", which would leak test labels into the model), and so are the a_j.

Where the paper is ambiguous or silent, this is what the plugin does:

- Normalisation of W_ij: the paper prints sum_j (over classes) in the denominator but says
  the point is that "each sentiment has a somewhat equal contribution", which is the sum
  over modalities i (METHODS.md's reading, the default). ``dr_normalize = "classes"``
  gives the printed formula.
- 1 - DR_ij is larger for the modality that finds FEWER true positives of class j, so the
  rule gives the weaker modality more weight on that class; implemented as printed.
- The weighted columns do not sum to 1 in general (W differs per class); each row is
  renormalised, which leaves the argmax (the paper's prediction) unchanged.
- Binary tasks: the (n,) positive-class probability p is treated as two columns
  [1 - p, p] with two one-vs-all detection rates (class 0 and class 1) and two a_j; the
  weighted columns are combined, renormalised, and the positive column returned.
- Multilabel tasks: each label is its own binary problem as above (its own DR, a and
  weights per label); ``min_loss`` keeps one weight per modality, its score being the
  task's metric over all labels (subset accuracy or macro F1, as mmbench reports them).
- ``min_loss`` score: taken at the epoch of lowest validation loss as the paper says,
  from the head's training history, whatever ``monitor`` picks as the head that predicts
  (with the default ``monitor = "loss"`` the two are the same epoch). If every score is
  0 the weights are uniform.
- Contrastive pre-training (section C), for the modalities in ``contrastive_pretrain``:
  N-pair loss log(1 + sum_i exp(f.f_i - f.f+)) on L2-normalised projections
  Linear(hidden, 64) of Restrepo et al.'s encoder block, positives = same label (multilabel:
  same label set); then a linear head on the frozen encoder. See
  ``late_voting_modules``.

``FitReport`` of the ensemble: each modality has its own timeline (pre-training epochs,
then head epochs). ``epochs_run`` and ``best_epoch`` are the longest timeline and the
latest best epoch on it (by then every head had reached the state it predicts with);
``train_s_total`` sums every training (pre-training included), so ``train_s_per_epoch``
is the cost of one epoch of the whole ensemble; ``model_mb`` and ``data_mb_per_epoch``
sum the heads as deployed (the discarded projection is not counted). ``history`` has one
dict per timeline step with keys "<modality>/train_loss", "<modality>/val_loss" (and
"<modality>/npair_loss" for pre-training steps). The weights are kept in ``self.weights``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.fit_context import FitContext
from mmbench.params import Param
from mmbench.plugin import Fusion
from mmbench.train_config import FitReport, TrainConfig

LATE_FUSION_MVSA = ("Balaji, a late fusion approach for multimodal image-text data (MVSA-Single), section IV.C "
            "(N-pair contrastive pre-training) and IV.D (mean, detection-rate and minimising-loss "
            "weighted late fusion).")
RULES = ("mean", "detection_rate", "min_loss")


class LateVoting(Fusion):
    """One classifier per modality, probabilities combined by mean, detection-rate or min-loss weights."""

    name = "late_voting"
    citation = LATE_FUSION_MVSA
    parameters = (
        Param("rule", str, "min_loss", "how the unimodal probabilities are combined (weights from "
              "validation)", choices=RULES),
        Param("score", str, "accuracy", "min_loss: validation score each modality is weighted by "
              "(paper: accuracy; it recommends f1 for imbalanced data)", choices=("accuracy", "f1")),
        Param("class_prior", bool, True, "detection_rate: add the class proportion a_j to 1 - DR_ij"),
        Param("dr_normalize", str, "modalities", "detection_rate: normalise W_ij over modalities "
              "(METHODS.md) or over classes (the paper's printed formula)",
              choices=("modalities", "classes")),
        Param("hidden", int, 128, "hidden units of each unimodal head (Restrepo et al.'s block)", min=1,
              max=65536),
        Param("dropout", float, 0.0, "dropout probability in each head (Restrepo et al., 2024: 0.0)", min=0.0,
              max=0.95),
        Param("modalities", list, [], "modalities that vote (empty: every modality of the dataset); "
              "one gives that modality's head alone, e.g. Balaji's pre-trained image model"),
        Param("contrastive_pretrain", list, [], "modalities whose encoder is first trained with the "
              "N-pair loss, then frozen under a linear head (Balaji does this for images)"),
        Param("pretrain_epochs", int, 30, "epochs of contrastive pre-training", min=1),
        Param("projection_dim", int, 64, "size of the contrastive projection (Balaji, MVSA late fusion: 64)", min=1),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        for name in ("modalities", "contrastive_pretrain"):
            chosen = self.params[name]
            if not all(isinstance(m, str) for m in chosen) or len(set(chosen)) != len(chosen):
                raise UserError(f"late_voting: {name} must be distinct modality names, got {chosen!r}")

    # --- training ------------------------------------------------------------------

    def fit(self, train: SplitData, val: SplitData, config: TrainConfig,
            ctx: FitContext | None = None) -> FitReport:
        import torch

        from mmbench import training
        from mmbench_fusion import late_voting_modules as lvm

        p = self.params
        modalities = sorted(train.features)
        for name in ("modalities", "contrastive_pretrain"):
            unknown = sorted(set(p[name]) - set(modalities))
            if unknown:
                raise UserError(f"late_voting: {name} names {', '.join(map(repr, unknown))}, "
                                f"not a modality of this dataset ({', '.join(map(repr, modalities))})")
        modalities = sorted(p["modalities"]) or modalities
        pretrained = set(p["contrastive_pretrain"])
        total = sum(p["pretrain_epochs"] if m in pretrained else 0 for m in modalities) + \
            len(modalities) * config.epochs
        done = [0]

        def step(*_: Any) -> None:
            done[0] += 1
            (ctx or FitContext()).progress(min(done[0], total), total)

        self.models: dict[str, Any] = {}
        self.scores: dict[str, float] | None = None  # min_loss only
        self.reports: dict[str, FitReport] = {}
        self.pretrain_losses: dict[str, list[float]] = {}
        pretrain_s = 0.0
        for m in modalities:
            train_m, val_m = only(train, m), only(val, m)
            in_dim = train.features[m].shape[1]
            # Each head starts from the run's seed whatever the other modalities are: it is
            # the same model a `unimodal` run on this modality trains.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                if m in pretrained:
                    encoder, losses, seconds = lvm.pretrain_encoder(
                        in_dim, p["hidden"], p["dropout"], train.features[m], train.labels, config,
                        p["pretrain_epochs"], p["projection_dim"], on_epoch=step)
                    self.pretrain_losses[m], pretrain_s = losses, pretrain_s + seconds
                    model = lvm.frozen_head(encoder, p["hidden"], train.n_outputs, m)
                else:
                    model = lvm.unimodal_head(in_dim, p["hidden"], p["dropout"], train.n_outputs)
                self.reports[m] = training.train_classifier(model, train_m, val_m, config, on_epoch=step)
            self.models[m] = model

        val_proba = self.modality_proba(val)
        self.weights = self._weights(val.labels, val_proba, val.task)
        return self._report(modalities, pretrain_s)

    def _weights(self, labels: np.ndarray, val_proba: dict[str, np.ndarray], task: str) -> dict[str, np.ndarray]:
        rule = self.params["rule"]
        if rule == "detection_rate":
            return detection_rate_weights(labels, val_proba, task, self.params["class_prior"],
                                          self.params["dr_normalize"])
        shape = label_columns(labels, task).shape[1], n_columns(val_proba, task)
        if rule == "mean":
            return {m: np.full(shape, 1.0 / len(val_proba)) for m in val_proba}
        self.scores = {m: self._score_at_lowest_val_loss(m) for m in val_proba}
        return {m: np.full(shape, w) for m, w in min_loss_weights(self.scores).items()}

    def _score_at_lowest_val_loss(self, modality: str) -> float:
        """Balaji's score: the validation accuracy (or F1) at the epoch of lowest
        validation loss, from the head's per-epoch history (the trainer records both)."""
        history = self.reports[modality].history
        return float(min(history, key=lambda h: h["val_loss"])[f"val_{self.params['score']}"])

    def _report(self, modalities: list[str], pretrain_s: float) -> FitReport:
        steps: dict[int, dict] = {}
        epochs_run, best_epoch = 0, 0
        for m in modalities:
            report, before = self.reports[m], len(self.pretrain_losses.get(m, []))
            for e, loss in enumerate(self.pretrain_losses.get(m, []), start=1):
                steps.setdefault(e, {"epoch": e})[f"{m}/npair_loss"] = loss
            for record in report.history:
                e = before + record["epoch"]
                steps.setdefault(e, {"epoch": e}).update(
                    {f"{m}/{k}": v for k, v in record.items() if k != "epoch"})
            epochs_run = max(epochs_run, before + report.epochs_run)
            best_epoch = max(best_epoch, before + (report.best_epoch or 0))
        caps = [r.hit_epoch_cap for r in self.reports.values() if r.hit_epoch_cap is not None]
        return FitReport(
            best_epoch=best_epoch or None,
            epochs_run=epochs_run,
            hit_epoch_cap=any(caps) if caps else None,
            train_s_total=pretrain_s + sum(r.train_s_total for r in self.reports.values()),
            model_mb=sum(r.model_mb or 0.0 for r in self.reports.values()),
            data_mb_per_epoch=sum(r.data_mb_per_epoch or 0.0 for r in self.reports.values()),
            history=[steps[e] for e in sorted(steps)],
            info={"weights": {m: w.tolist() for m, w in self.weights.items()},
                  "scores": self.scores},
        )

    # --- prediction ----------------------------------------------------------------

    def modality_proba(self, data: SplitData) -> dict[str, np.ndarray]:
        """Each unimodal head's probabilities on ``data``, in the task's output form."""
        from mmbench import training

        missing = sorted(set(self.models) - set(data.features))
        if missing:
            raise UserError(f"late_voting: trained on {sorted(self.models)}, but {missing} is absent")
        return {m: training.predict_proba(model, only(data, m)) for m, model in self.models.items()}

    def predict_proba(self, data: SplitData) -> np.ndarray:
        return combine(self.modality_proba(data), self.weights, data.task)


FUSIONS = [LateVoting]


# --- the rules, as functions of validation labels and probabilities ---------------------

def only(data: SplitData, modality: str) -> SplitData:
    """``data`` with one modality (and its mask) left: what a unimodal head sees."""
    masks = {modality: data.masks[modality]} if modality in data.masks else {}
    return dataclasses.replace(data, features={modality: data.features[modality]}, masks=masks,
                               sequences={})


def as_columns(proba: np.ndarray, task: str) -> np.ndarray:
    """(n, L, K) probabilities: L = 1 problem of K classes (multiclass), or L binary
    problems of K = 2 columns [1 - p, p] (binary: L = 1; multilabel: one per label)."""
    proba = np.asarray(proba, dtype=np.float64)
    if task == "multiclass":
        return proba[:, None, :]
    p = proba.reshape(len(proba), -1)
    return np.stack([1.0 - p, p], axis=2)


def from_columns(columns: np.ndarray, task: str) -> np.ndarray:
    """Back to the Fusion contract: (n,) binary, (n, C) multiclass, (n, L) multilabel."""
    if task == "multiclass":
        return columns[:, 0, :]
    return columns[:, 0, 1] if task == "binary" else columns[:, :, 1]


def label_columns(labels: np.ndarray, task: str) -> np.ndarray:
    """(n, L) class index per problem, matching ``as_columns``."""
    labels = np.asarray(labels)
    return labels.astype(np.int64) if task == "multilabel" else labels.reshape(-1, 1).astype(np.int64)


def n_columns(probas: dict[str, np.ndarray], task: str) -> int:
    return as_columns(next(iter(probas.values())), task).shape[2]


def detection_rates(labels: np.ndarray, proba: np.ndarray, task: str) -> np.ndarray:
    """(L, K) one-vs-all DR = TP / (TP + TN + FP + FN) of one modality's predictions."""
    from sklearn.metrics import confusion_matrix

    from mmbench import metrics

    truth = label_columns(labels, task)
    pred = label_columns(metrics.predictions(proba, task), task)
    n_labels, k = truth.shape[1], as_columns(proba, task).shape[2]
    out = np.zeros((n_labels, k))
    for lab in range(n_labels):
        for j in range(k):
            tn, fp, fn, tp = confusion_matrix(truth[:, lab] == j, pred[:, lab] == j,
                                              labels=[False, True]).ravel()
            out[lab, j] = tp / max(tn + fp + fn + tp, 1)
    return out


def class_proportions(labels: np.ndarray, task: str, k: int) -> np.ndarray:
    """(L, K) a_j: the share of samples in class j (per label for multilabel tasks)."""
    truth = label_columns(labels, task)
    return np.stack([(truth == j).mean(axis=0) for j in range(k)], axis=1)


def detection_rate_weights(labels: np.ndarray, probas: dict[str, np.ndarray], task: str,
                           class_prior: bool = True, normalize: str = "modalities") -> dict[str, np.ndarray]:
    """W_ij = (1 - DR_ij + a_j) / sum (1 - DR + a), per modality an (L, K) array."""
    names = sorted(probas)
    k = n_columns(probas, task)
    raw = np.stack([1.0 - detection_rates(labels, probas[m], task) for m in names])  # (M, L, K)
    if class_prior:
        raw = raw + class_proportions(labels, task, k)[None]
    total = raw.sum(axis=0, keepdims=True) if normalize == "modalities" else raw.sum(axis=2, keepdims=True)
    uniform = 1.0 / (len(names) if normalize == "modalities" else k)
    weights = np.divide(raw, total, out=np.full_like(raw, uniform), where=total > 0)
    return {m: weights[i] for i, m in enumerate(names)}


def min_loss_weights(scores: dict[str, float]) -> dict[str, float]:
    """W_m = score_m / sum of scores (uniform when every score is 0 or undefined)."""
    values = {m: float(s) if np.isfinite(s) and s > 0 else 0.0 for m, s in scores.items()}
    total = sum(values.values())
    if total <= 0:
        return {m: 1.0 / len(values) for m in values}
    return {m: v / total for m, v in values.items()}


def combine(probas: dict[str, np.ndarray], weights: dict[str, np.ndarray], task: str) -> np.ndarray:
    """sum_i W_i * P_i column by column, each problem's columns renormalised to sum to 1."""
    mixed = sum(weights[m][None] * as_columns(probas[m], task) for m in sorted(probas))
    total = mixed.sum(axis=2, keepdims=True)
    k = mixed.shape[2]
    mixed = np.divide(mixed, total, out=np.full_like(mixed, 1.0 / k), where=total > 0)
    return from_columns(mixed, task)
