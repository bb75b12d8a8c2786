"""torch modules of the comparison baselines (``baselines.py``).

Each maps ``{modality: (batch, dim)}`` to ``(batch, n_outputs)`` logits. The three
OmniFuse baselines share one classifier head (``head``) so that they differ only in how
the modalities are fused, which is what OmniFuse's Table 3 compares.
"""

from __future__ import annotations

import torch
from torch import nn


def head(in_dim: int, hidden: int, dropout: float, n_outputs: int) -> nn.Sequential:
    """The classifier every OmniFuse baseline ends in: Linear -> ReLU -> Dropout -> Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, n_outputs))


def projections(in_dims: dict[str, int], hidden: int) -> nn.ModuleDict:
    """Per-modality Linear(d_m, hidden) -> ReLU into one shared space.

    The ReLU matters: without a nonlinearity before fusing, sum_m W_m x_m is exactly one
    Linear layer on the concatenation, so "sum" would only be "concat" reparametrised.
    OmniFuse sums the outputs of (nonlinear) modality encoders e_m; this is that encoder.
    """
    return nn.ModuleDict({m: nn.Sequential(nn.Linear(d, hidden), nn.ReLU())
                          for m, d in sorted(in_dims.items())})


class ConcatModel(nn.Module):
    """OmniFuse's "Concatenate": v = concat(v_1..v_M) -> classifier."""

    def __init__(self, in_dims: dict[str, int], hidden: int, dropout: float, n_outputs: int):
        super().__init__()
        self.order = sorted(in_dims)
        self.classifier = head(sum(in_dims.values()), hidden, dropout, n_outputs)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.classifier(torch.cat([features[m] for m in self.order], dim=1))


class SumModel(nn.Module):
    """OmniFuse's "Sum": v = sum_m ReLU(W_m x_m + b_m) -> classifier."""

    def __init__(self, in_dims: dict[str, int], hidden: int, dropout: float, n_outputs: int):
        super().__init__()
        self.project = projections(in_dims, hidden)
        self.classifier = head(hidden, hidden, dropout, n_outputs)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        fused = torch.stack([p(features[m]) for m, p in self.project.items()], dim=1).sum(dim=1)
        return self.classifier(fused)


class SEGateModel(nn.Module):
    """Squeeze-and-excitation over modalities (Hu et al. 2018, eq. 2-4, modalities as channels).

    z_m = ReLU(W_m x_m) in R^hidden, stacked to (batch, M, hidden).
    Squeeze (eq. 2): s_m = mean over the hidden units of z_m   -> (batch, M).
    Excitation (eq. 3): g = sigmoid(W_2 ReLU(W_1 s)), W_1: M -> max(1, M // r), W_2: back to M.
    Scale (eq. 4): z_m * g_m, then concatenated (or summed) -> classifier.
    ``forward`` also keeps the last gates in ``self.last_gates`` for inspection.
    """

    def __init__(self, in_dims: dict[str, int], hidden: int, dropout: float, n_outputs: int,
                 reduction: int, combine: str):
        super().__init__()
        n_mod = len(in_dims)
        self.combine = combine
        self.project = projections(in_dims, hidden)
        squeezed = max(1, n_mod // reduction)
        self.excite = nn.Sequential(nn.Linear(n_mod, squeezed), nn.ReLU(), nn.Linear(squeezed, n_mod),
                                    nn.Sigmoid())
        self.classifier = head(hidden * n_mod if combine == "concat" else hidden, hidden, dropout, n_outputs)
        self.last_gates: torch.Tensor | None = None

    def gates(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, M, hidden) projections and their (batch, M) gates in (0, 1)."""
        z = torch.stack([p(features[m]) for m, p in self.project.items()], dim=1)
        return z, self.excite(z.mean(dim=2))

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        z, g = self.gates(features)
        self.last_gates = g.detach()
        scaled = z * g.unsqueeze(2)
        fused = scaled.flatten(1) if self.combine == "concat" else scaled.sum(dim=1)
        return self.classifier(fused)
