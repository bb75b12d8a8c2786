"""The torch module of ``gated_sum``: maps ``{modality: (batch, dim)}`` to logits."""

from __future__ import annotations

import torch
from torch import nn


class GatedSumModel(nn.Module):
    """z_m = W_m x_m;  w = softmax(gate);  logits = head(ReLU(sum_m w_m z_m)).

    The ReLU after the weighted sum matters: without it the logits would be a sum of one
    term per modality, which can never model an interaction between modalities (such as
    the XOR of ``xor_blobs``).
    """

    def __init__(self, in_dims: dict[str, int], hidden: int, n_outputs: int,
                 gate: str = "modality", dropout: float = 0.0):
        super().__init__()
        if gate not in ("modality", "sample"):
            raise ValueError(f"gate must be 'modality' or 'sample', got {gate!r}")
        self.modalities = sorted(in_dims)
        self.project = nn.ModuleDict({m: nn.Linear(in_dims[m], hidden) for m in self.modalities})
        if gate == "modality":
            self.gate_logits = nn.Parameter(torch.zeros(len(self.modalities)))
            self.gate_net = None
        else:
            self.gate_logits = None
            self.gate_net = nn.Linear(sum(in_dims.values()), len(self.modalities))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_outputs))

    def gate_weights(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """(batch, modalities) weights, each row summing to 1, in sorted modality order."""
        batch = len(features[self.modalities[0]])
        if self.gate_net is None:
            return torch.softmax(self.gate_logits, dim=0).expand(batch, -1)
        joint = torch.cat([features[m] for m in self.modalities], dim=1)
        return torch.softmax(self.gate_net(joint), dim=1)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        projected = torch.stack([self.project[m](features[m]) for m in self.modalities], dim=1)
        fused = (self.gate_weights(features).unsqueeze(-1) * projected).sum(dim=1)
        return self.head(fused)
