"""torch modules of PairDxFusion (PairDx, 2025, section 3.5): attention over token vectors.

Inputs are the dict the fusion's ``model_inputs`` builds: the image modality's pooled
vector under its name, and for the text modality its token vectors under "seq/<text>"
(batch, T, d) with "seq_mask/<text>" (batch, T), 1.0 for a real token and 0.0 for padding.
"""

from __future__ import annotations

import torch
from torch import nn


class MaskedSelfAttention(nn.Module):
    """Scaled dot-product self-attention pooled to one vector per sequence.

    The PairDx paper, section 3.4: the token matrix X (L x d) is linearly projected to Q, K and V,
    and Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V (Vaswani et al., the paper's
    reference [50]), single head, d_k = ``dim``. Padded tokens are never keys (their
    scores are set to the lowest float before the softmax) and never enter the pooled
    mean of the attended tokens, and their values are zeroed on the way in, so whatever a
    padded position holds cannot change the output. The pooled vector is the paper's
    "context-aware 256-dimensional text representation" (``dim`` = 256). A sequence with
    no real token pools to the zero vector.
    """

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.query = nn.Linear(in_dim, dim)
        self.key = nn.Linear(in_dim, dim)
        self.value = nn.Linear(in_dim, dim)
        self.scale = dim ** -0.5

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``tokens`` (batch, T, d), ``mask`` (batch, T) bool -> (batch, dim)."""
        real = mask.unsqueeze(-1).to(tokens.dtype)
        tokens = tokens * real
        q, k, v = self.query(tokens), self.key(tokens), self.value(tokens)
        scores = torch.matmul(q, k.transpose(1, 2)) * self.scale  # (batch, T, T)
        scores = scores.masked_fill(~mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        attended = torch.matmul(torch.softmax(scores, dim=-1), v)  # (batch, T, dim)
        return (attended * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)


class PairDxModel(nn.Module):
    """PairDxFusion: image vector and attention-pooled text, concatenated, then the MLP head.

    The PairDx paper, section 3.5: "The image and text feature vectors are concatenated and fed
    into a Fusion Module ... two fully connected layers with ReLU activations and
    regularization (BatchNorm1d, Dropout)": Linear(d_image + dim, hidden) -> BatchNorm1d
    -> ReLU -> Dropout -> Linear(hidden, C). The image vector enters as it is (the paper
    concatenates ResNet-18's 512-d output directly) unless ``image_hidden`` > 0, which puts
    Linear(d_image, image_hidden) -> ReLU in front of it.
    """

    def __init__(self, text: str, image: str, token_dim: int, image_dim: int, dim: int,
                 image_hidden: int, hidden: int, dropout: float, n_outputs: int):
        super().__init__()
        self.text, self.image = text, image
        self.attention = MaskedSelfAttention(token_dim, dim)
        if image_hidden > 0:
            self.image_branch: nn.Module = nn.Sequential(nn.Linear(image_dim, image_hidden), nn.ReLU())
            image_out = image_hidden
        else:
            self.image_branch = nn.Identity()
            image_out = image_dim
        self.head = nn.Sequential(
            nn.Linear(image_out + dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs),
        )

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        text = self.attention(inputs[f"seq/{self.text}"], inputs[f"seq_mask/{self.text}"] > 0.5)
        return self.head(torch.cat([self.image_branch(inputs[self.image]), text], dim=1))
