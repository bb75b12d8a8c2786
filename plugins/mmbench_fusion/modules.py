"""torch modules of the built-in fusions: each maps {modality: (batch, dim)} to logits."""

from __future__ import annotations

import torch
from torch import nn


def concat(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """Modalities side by side in sorted-name order (the trainer's order)."""
    return torch.cat([features[m] for m in sorted(features)], dim=1)


class Linear(nn.Module):
    def __init__(self, in_dim: int, n_outputs: int):
        super().__init__()
        self.head = nn.Linear(in_dim, n_outputs)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(concat(features))


def block(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """Restrepo et al.'s block: Linear -> ReLU -> Dropout -> BatchNorm1d."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.BatchNorm1d(hidden))


class EarlyMLP(nn.Module):
    def __init__(self, in_dim: int, hidden: int, dropout: float, n_outputs: int):
        super().__init__()
        self.body = block(in_dim, hidden, dropout)
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.body(concat(features)))


class LateJointMLP(nn.Module):
    def __init__(self, in_dims: dict[str, int], hidden: int, dropout: float, n_outputs: int):
        super().__init__()
        self.branches = nn.ModuleDict({m: block(d, hidden, dropout) for m, d in sorted(in_dims.items())})
        self.head = nn.Linear(hidden * len(in_dims), n_outputs)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | dict[str, torch.Tensor]]:
        """{"logits": (batch, C), "branches": {modality: (batch, hidden) block output}}; the
        branches are what Restrepo et al.'s regulariser L_reg (eq. 14) pulls together."""
        branches = {m: self.branches[m](features[m]) for m in sorted(self.branches)}
        return {"logits": self.head(torch.cat([branches[m] for m in sorted(branches)], dim=1)),
                "branches": branches}
