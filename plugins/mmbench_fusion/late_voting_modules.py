"""torch side of ``late_voting``: the unimodal heads and Balaji's contrastive pre-training.

Every head is Restrepo et al.'s early block on ONE modality (``modules.EarlyMLP``): an encoder
Linear -> ReLU -> Dropout -> BatchNorm1d followed by Linear(hidden, C). With contrastive
pre-training (Balaji, MVSA late fusion, section C) the encoder is first trained alone with the N-pair
loss through a projection Linear(hidden, 64), the projection is dropped, and a linear
head is trained on the frozen encoder.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from mmbench.train_config import TrainConfig
from mmbench_fusion.modules import EarlyMLP


class FrozenEncoderHead(nn.Module):
    """A linear head on a frozen encoder: Balaji's second phase.

    The encoder's parameters do not train and it stays in eval mode even while the head
    trains, so its BatchNorm statistics and dropout are frozen too.
    """

    def __init__(self, encoder: nn.Module, hidden: int, n_outputs: int, modality: str):
        super().__init__()
        self.modality = modality
        self.encoder = encoder
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.head = nn.Linear(hidden, n_outputs)

    def train(self, mode: bool = True) -> FrozenEncoderHead:
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            z = self.encoder(features[self.modality])
        return self.head(z)


def npair_loss(f: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-class N-pair loss (Sohn 2016; Balaji, section C) over a labelled batch.

    For an anchor f, a positive f+ (same label) and the negatives f_i (other labels):
    log(1 + sum_i exp(f.f_i - f.f+)), averaged over every (anchor, positive) pair in the
    batch. ``labels`` is (batch, k): rows are equal exactly when the labels are (for
    multilabel tasks: the same label set). Pairs with no negative contribute nothing.
    Written as softplus(logsumexp_i(f.f_i) - f.f+) so it cannot overflow.
    """
    sim = f @ f.T
    same = (labels.unsqueeze(1) == labels.unsqueeze(0)).all(dim=2)
    eye = torch.eye(len(f), dtype=torch.bool, device=f.device)
    positive, negative = same & ~eye, ~same
    lse_neg = torch.logsumexp(sim.masked_fill(~negative, float("-inf")), dim=1, keepdim=True)
    valid = positive & negative.any(dim=1, keepdim=True)
    if not valid.any():
        return sim.sum() * 0.0  # no pair in this batch: zero, still part of the graph
    return nn.functional.softplus(lse_neg - sim)[valid].mean()


def pretrain_encoder(in_dim: int, hidden: int, dropout: float, x: np.ndarray, labels: np.ndarray,
                     config: TrainConfig, epochs: int, projection_dim: int = 64,
                     on_epoch=None) -> tuple[nn.Module, list[float], float]:
    """Train Restrepo et al.'s block as an encoder with the N-pair loss on normalised projections.

    The projection is Linear(hidden, ``projection_dim``) (Balaji, MVSA late fusion: 64) and its output is
    L2-normalised: without it the loss is unbounded below in the scale of f (Sohn 2016
    regularises the norm instead). Optimizer, learning rate, batch size and batch order
    follow ``config``. Returns the encoder, the mean N-pair loss per epoch and seconds.
    """
    from mmbench.training import batch_bounds, make_optimizer

    encoder = EarlyMLP(in_dim, hidden, dropout, 1).body
    projection = nn.Linear(hidden, projection_dim)
    model = nn.Sequential(encoder, projection)
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(labels).reshape(len(labels), -1))
    batches = batch_bounds(len(xt), config.batch_size)
    losses, seconds = [], 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(xt), generator=generator)
        total, weight = 0.0, 0
        for start, stop in batches:
            idx = order[start:stop]
            f = nn.functional.normalize(model(xt[idx]), dim=1)
            loss = npair_loss(f, yt[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * (stop - start)
            weight += stop - start
        seconds += time.perf_counter() - started
        losses.append(total / max(weight, 1))
        if on_epoch is not None:
            on_epoch()
    encoder.eval()
    return encoder, losses, seconds


def frozen_head(encoder: nn.Module, hidden: int, n_outputs: int, modality: str) -> FrozenEncoderHead:
    return FrozenEncoderHead(encoder, hidden, n_outputs, modality)


def unimodal_head(in_dim: int, hidden: int, dropout: float, n_outputs: int) -> nn.Module:
    return EarlyMLP(in_dim, hidden, dropout, n_outputs)
