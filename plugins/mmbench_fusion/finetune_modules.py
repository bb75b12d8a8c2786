"""torch side of ``finetune``: the backbones-plus-head module, image augmentation, and
the epoch loop that trains on raw items.

The shared trainer (``mmbench.training.train_classifier``) slices fixed tensors; here
each batch is decoded, augmented and tokenised from raw items, so the loop is its own,
but it keeps the trainer's protocol and reuses its pieces (loss, probabilities, metrics,
batch bounds, model size): the best epoch is chosen on VALIDATION and its weights are
restored before test is predicted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mmbench import metrics
from mmbench.train_config import FitReport, TrainConfig
from mmbench.trainable import Augment, TrainableEncoder, to_device
from mmbench.training import BestEpoch, batch_bounds, logits, model_mb, probabilities


@dataclass
class Inputs:
    """One split as the model reads it: raw items of the trained modalities, fixed vectors
    of the others (zero where missing), and 0/1 presence per modality."""

    raw: dict[str, Sequence]
    vectors: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


class FineTuneModel(nn.Module):
    """Each trained modality's backbone pools its input to a vector; fixed vectors join
    them; a missing modality's vector is zeroed; the head maps them to logits."""

    def __init__(self, backbones: dict[str, TrainableEncoder], vector_dims: dict[str, int], head: str,
                 hidden: int, dropout: float, n_outputs: int):
        super().__init__()
        from mmbench_fusion.modules import EarlyMLP, LateJointMLP

        self.backbones = nn.ModuleDict({m: b.module for m, b in sorted(backbones.items())})
        dims = dict(sorted({**{m: b.dim for m, b in backbones.items()}, **vector_dims}.items()))
        self.head = (EarlyMLP(sum(dims.values()), hidden, dropout, n_outputs) if head == "early"
                     else LateJointMLP(dims, hidden, dropout, n_outputs))

    def forward(self, prepared: dict[str, Any], vectors: dict[str, torch.Tensor],
                present: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = {m: self.backbones[m](prepared[m]).float() for m in self.backbones}
        pooled.update(vectors)
        return logits(self.head({m: v * present[m].unsqueeze(1) for m, v in pooled.items()}))


def augmentation(rotation: float, jitter: float) -> Augment:
    """PairDx's image augmentation on PIL images: horizontal flip, rotation by up to
    ``rotation`` degrees, colour jitter of brightness, contrast and saturation by
    ``jitter`` and hue by ``jitter / 4``. Random draws use torch's seeded generator."""
    from torchvision import transforms

    return transforms.Compose([
        transforms.RandomHorizontalFlip(),
        transforms.RandomRotation(rotation),
        transforms.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=min(jitter / 4, 0.5)),
    ])


def take(items: Sequence, index: np.ndarray) -> Sequence:
    """Rows ``index`` of a modality's raw items (an array, a DataFrame or a list)."""
    if isinstance(items, np.ndarray):
        return items[index]
    if hasattr(items, "iloc"):
        return items.iloc[index].reset_index(drop=True)
    return [items[i] for i in index]


class Loop:
    """Runs ``model`` on batches of ``Inputs``: preparing raw items is part of each step."""

    def __init__(self, model: FineTuneModel, prepare: dict[str, Callable], device: str):
        self.model, self.prepare, self.device = model, prepare, device

    def batch(self, data: Inputs, index: np.ndarray, augment: Augment | None) -> tuple[dict, dict, dict]:
        prepared = {m: to_device(self.prepare[m](take(data.raw[m], index), augment), self.device)
                    for m in self.prepare}
        vectors = {m: torch.from_numpy(v[index]).to(self.device) for m, v in data.vectors.items()}
        present = {m: torch.from_numpy(p[index]).to(self.device) for m, p in data.present.items()}
        return prepared, vectors, present

    @torch.inference_mode()
    def logits(self, data: Inputs, batch_size: int) -> torch.Tensor:
        self.model.eval()
        chunks = [self.model(*self.batch(data, np.arange(start, stop), None)).float().cpu()
                  for start, stop in batch_bounds(len(data), batch_size)]
        return torch.cat(chunks)

    def fit(self, train: Inputs, val: Inputs, val_labels: np.ndarray, task: str, config: TrainConfig,
            criterion: nn.Module, optimizer: torch.optim.Optimizer, max_grad_norm: float,
            augment: Augment | None, on_epoch: Callable[[int, int], None] | None) -> FitReport:
        """Train by epochs; keep the weights of the best validation epoch (``config.monitor``)."""
        generator = torch.Generator().manual_seed(config.seed)
        criterion = criterion.to(self.device)
        bounds = batch_bounds(len(train), config.batch_size)
        report = FitReport(model_mb=model_mb(self.model))
        selection = BestEpoch(self.model, config)
        for epoch in range(1, config.epochs + 1):
            self.model.train()
            started = time.perf_counter()
            order = torch.randperm(len(train), generator=generator).numpy()
            total_loss, data_bytes = 0.0, 0
            for start, stop in bounds:
                index = order[start:stop]
                batch = self.batch(train, index, augment)
                targets = train.labels[index].to(self.device)
                loss = criterion(self.model(*batch), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(self.model.parameters(), max_grad_norm)
                optimizer.step()
                total_loss += loss.item() * len(index)
                data_bytes += _nbytes(batch) + _nbytes(targets)
            seconds = time.perf_counter() - started
            report.train_s_total += seconds
            report.epochs_run = epoch
            report.data_mb_per_epoch = data_bytes / 2**20

            val_logits = self.logits(val, config.batch_size)
            quality = metrics.quality(val_labels, probabilities(val_logits, task), task)
            record = {"epoch": epoch, "train_loss": total_loss / max(len(train), 1),
                      "val_loss": float(criterion(val_logits.to(self.device), val.labels.to(self.device))),
                      "train_s": seconds, **{f"val_{name}": value for name, value in quality.items()}}
            if selection.end_epoch(report, record, quality, on_epoch):
                break
        selection.restore()
        return report


def _nbytes(batch: Any) -> int:
    """Restrepo et al.'s data size: numel x element size of every tensor in a batch."""
    if isinstance(batch, dict):
        return sum(_nbytes(v) for v in batch.values())
    if isinstance(batch, (list, tuple)):
        return sum(_nbytes(v) for v in batch)
    return batch.numel() * batch.element_size() if isinstance(batch, torch.Tensor) else 0
