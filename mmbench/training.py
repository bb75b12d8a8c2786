"""The shared supervised trainer every torch fusion uses.

The hot loop indexes whole contiguous tensors with a shuffled index per batch: no
DataLoader, no per-sample Python, which is most of the speed on a 2-core CPU. The best
epoch is chosen on validation and its weights are restored before predicting test.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from mmbench import metrics
from mmbench.data import SplitData
from mmbench.train_config import FitReport, TrainConfig

#: Rows per forward pass at inference (no gradients, so larger is cheaper).
INFERENCE_CHUNK = 8192

EpochCallback = Callable[[int, int], None]


class Hooks(Protocol):
    """What the trainer asks of a fusion (``TorchFusion`` implements all three)."""

    def model_inputs(self, data: SplitData) -> dict[str, np.ndarray]: ...

    def loss(self, output: Any, targets: torch.Tensor, criterion: nn.Module) -> torch.Tensor: ...

    def end_epoch(self, model: nn.Module, inputs: dict[str, torch.Tensor], targets: torch.Tensor,
                  epoch: int) -> None: ...

    def configure_optimizer(self, model: nn.Module, config: TrainConfig, steps_per_epoch: int
                            ) -> tuple[torch.optim.Optimizer, Any]: ...


class PlainHooks:
    """Features in, logits out, the task's loss: the trainer's defaults."""

    def model_inputs(self, data: SplitData) -> dict[str, np.ndarray]:
        return {m: data.features[m] for m in sorted(data.features)}

    def loss(self, output: Any, targets: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
        return criterion(logits(output), targets)

    def end_epoch(self, model, inputs, targets, epoch) -> None:
        return None

    def configure_optimizer(self, model, config, steps_per_epoch):
        return make_optimizer(model, config), None


def logits(output: Any) -> torch.Tensor:
    """A model returns logits, or a dict holding them under "logits" (plus anything its
    loss needs, e.g. per-modality "branches")."""
    return output["logits"] if isinstance(output, dict) else output


def to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Contiguous float32 tensors, so a batch is one index operation per input."""
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in arrays.items()}


def label_tensor(data: SplitData) -> torch.Tensor:
    if data.task == "multiclass":
        return torch.as_tensor(data.labels, dtype=torch.long)
    labels = torch.as_tensor(data.labels, dtype=torch.float32)
    return labels.unsqueeze(1) if data.task == "binary" else labels


def loss_function(train: SplitData, class_weights: str) -> nn.Module:
    """CE for multiclass, BCE-with-logits otherwise; weights inverse to class counts."""
    labels = np.asarray(train.labels)
    if train.task == "multiclass":
        weight = None
        if class_weights == "inverse_frequency":
            counts = np.bincount(labels, minlength=len(train.classes)).astype(np.float64)
            weight = torch.tensor(len(labels) / (len(counts) * np.maximum(counts, 1)),
                                  dtype=torch.float32)
        return nn.CrossEntropyLoss(weight=weight)
    pos_weight = None
    if class_weights == "inverse_frequency":
        positives = labels.reshape(len(labels), -1).sum(axis=0).astype(np.float64)
        negatives = len(labels) - positives
        pos_weight = torch.tensor(negatives / np.maximum(positives, 1), dtype=torch.float32)
    return nn.BCEWithLogitsLoss(pos_weight=pos_weight)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW runs fused (one kernel per parameter instead of about eight Python-dispatched
    ops) where torch has that kernel: the same update up to float rounding, and it was the
    largest cost per step of the small heads trained here (benchmarks/README.md, P1)."""
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                             fused=_can_fuse(params) or None)


def _can_fuse(params: list[torch.Tensor]) -> bool:
    """torch's fused AdamW takes floating-point tensors on CPU or CUDA, all on one device."""
    return bool(params) and len({p.device for p in params}) == 1 and all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def model_mb(model: nn.Module) -> float:
    """Restrepo et al.'s model size: parameter element count x 4 bytes, in MiB."""
    return sum(p.numel() for p in model.parameters()) * 4 / 2**20


@torch.no_grad()
def logits_of(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    model.eval()
    n = len(next(iter(inputs.values())))
    chunks = [logits(model({k: x[i:i + INFERENCE_CHUNK] for k, x in inputs.items()}))
              for i in range(0, n, INFERENCE_CHUNK)]
    return torch.cat(chunks)


def probabilities(logits: torch.Tensor, task: str) -> np.ndarray:
    if task == "multiclass":
        return torch.softmax(logits, dim=1).numpy()
    proba = torch.sigmoid(logits).numpy()
    return proba[:, 0] if task == "binary" else proba


def predict_proba(model: nn.Module, data: SplitData, hooks: Hooks = PlainHooks()) -> np.ndarray:
    return probabilities(logits_of(model, to_tensors(hooks.model_inputs(data))), data.task)


def train_classifier(model: nn.Module, train: SplitData, val: SplitData, config: TrainConfig,
                     on_epoch: EpochCallback | None = None, hooks: Hooks = PlainHooks()) -> FitReport:
    """Train ``model`` (dict of input tensors -> logits); keep the best validation epoch.

    ``hooks`` (the fusion) says which arrays the model reads, what its training loss is and
    what to do after each epoch; model selection always uses the task's plain loss (or the
    monitored metric) on validation, so methods with extra loss terms are compared fairly.
    """
    inputs, targets = to_tensors(hooks.model_inputs(train)), label_tensor(train)
    val_inputs, val_targets = to_tensors(hooks.model_inputs(val)), label_tensor(val)
    criterion = loss_function(train, config.class_weights)
    generator = torch.Generator().manual_seed(config.seed)
    n = len(targets)
    batches = batch_bounds(n, config.batch_size)
    optimizer, scheduler = hooks.configure_optimizer(model, config, len(batches))
    row_bytes = sum(x[0].numel() * x.element_size() for x in inputs.values()) + \
        targets[0:1].numel() * targets.element_size()
    data_mb = sum(stop - start for start, stop in batches) * row_bytes / 2**20

    report = FitReport(model_mb=model_mb(model), data_mb_per_epoch=data_mb)
    selection = BestEpoch(model, config)
    for epoch in range(1, config.epochs + 1):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        total_loss = 0.0
        for start, stop in batches:
            idx = order[start:stop]
            # index_select: the same rows as x[idx], without advanced indexing's overhead
            loss = hooks.loss(model({k: x.index_select(0, idx) for k, x in inputs.items()}),
                              targets.index_select(0, idx), criterion)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:  # a per-step schedule, e.g. OneCycleLR
                scheduler.step()
            total_loss += loss.item() * (stop - start)
        hooks.end_epoch(model, inputs, targets, epoch)
        report.train_s_total += time.perf_counter() - started
        report.epochs_run = epoch

        val_logits = logits_of(model, val_inputs)
        quality = metrics.quality(val.labels, probabilities(val_logits, val.task), val.task)
        record = {"epoch": epoch, "train_loss": total_loss / max(n, 1),
                  "val_loss": float(criterion(val_logits, val_targets)),
                  **{f"val_{name}": value for name, value in quality.items()}}
        if selection.end_epoch(report, record, quality, on_epoch):
            break
    selection.restore()
    return report


class BestEpoch:
    """Model selection on VALIDATION, shared by every epoch loop: keeps the weights of the
    best epoch by ``config.monitor`` (the plain loss, or a metric) and says when
    ``config.patience`` epochs have passed without improvement."""

    def __init__(self, model: nn.Module, config: TrainConfig):
        self.model, self.monitor, self.patience = model, config.monitor, config.patience
        self.epochs = config.epochs
        self.best_epoch: int | None = None
        self.best_score = -np.inf
        self.best_state: dict | None = None
        self.stale = 0

    def end_epoch(self, report: FitReport, record: dict[str, Any], quality: dict[str, float],
                  on_epoch: EpochCallback | None) -> bool:
        """Close an epoch as every epoch loop must: keep its ``record`` (epoch, losses,
        validation metrics) in the history, update the best epoch, report progress;
        True when training should stop."""
        report.history.append(record)
        stop = self.update(record["epoch"], record["val_loss"], quality)
        report.best_epoch = self.best_epoch
        if self.patience:
            report.hit_epoch_cap = not stop and record["epoch"] >= self.epochs
        if on_epoch is not None:
            on_epoch(record["epoch"], self.epochs)
        return stop

    def update(self, epoch: int, val_loss: float, quality: dict[str, float]) -> bool:
        """Take this epoch's validation numbers; True when training should stop."""
        value = -val_loss if self.monitor == "loss" else quality[self.monitor]
        score = value if np.isfinite(value) else -np.inf
        if self.best_epoch is None or score > self.best_score:
            self.best_epoch, self.best_score, self.stale = epoch, score, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.stale += 1
        return bool(self.patience and self.stale >= self.patience)

    def restore(self) -> None:
        """Put the best epoch's weights back (test predictions come from them)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Batch (start, stop) pairs; a trailing batch of one sample joins the previous one
    because BatchNorm cannot train on a single sample."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds
