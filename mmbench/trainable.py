"""The contract between encoders with a neural backbone and fusions that train it end to
end (Restrepo et al.'s raw-data approach, the PairDx paper's PairDxCLIP).

An encoder hands over its backbone for one modality as a ``TrainableEncoder``: a module
that maps a prepared batch to (b, dim) vectors, and the function that prepares raw items
(decode, resize, tokenise) into that batch. The fusion owns the optimiser, the head, the
augmentation and the device; the encoder owns everything about its model's input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: An image augmentation: a PIL image in, a PIL image out (before resizing and normalising).
Augment = Callable[[Any], Any]


@dataclass
class TrainableEncoder:
    """One modality's backbone, ready to train.

    ``prepare(items, augment)`` turns raw items into what ``module`` takes: a tensor or a
    dict of tensors (on the CPU; the fusion moves it). ``augment`` applies to images only,
    before the model's own resize and normalisation; text encoders ignore it. A missing
    item (None) must still give a row (a blank image, an empty text), so batch rows stay
    aligned with labels; the fusion decides what a missing modality means.
    ``module(batch)`` returns (b, dim) float vectors, pooled as the encoder extracts them.
    """

    module: torch.nn.Module
    dim: int
    prepare: Callable[[Sequence[Any], Augment | None], Any]


def to_device(batch: Any, device: str) -> Any:
    """A prepared batch (tensor, or dict / list of tensors) moved to ``device``."""
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch.to(device) if hasattr(batch, "to") else batch
