"""Base class for fusions that are a torch module trained by the shared trainer.

A subclass builds its module; fitting, model selection on validation and prediction are
shared. Methods with more than a classifier (extra loss terms, masks, token sequences,
work after each epoch) override the hooks below instead of writing their own loop.
torch is imported on first use, so registering a fusion (and ``mmbench plugins`` /
``validate``) does not pay for it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.data import SplitData
from mmbench.fit_context import FitContext
from mmbench.plugin import Fusion
from mmbench.train_config import FitReport, TrainConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

BranchLoss = Callable[[dict[str, "torch.Tensor"]], "torch.Tensor"]


class TorchFusion(Fusion):
    """A fusion whose model maps a dict of input tensors (see ``model_inputs``) to logits,
    or to a dict with "logits" and anything its ``loss`` needs.

    With ``exposes_branches``, the output dict carries "branches": {modality: (batch, k)
    tensor}, the per-modality outputs an alignment's ``branch_loss`` acts on.

    A subclass that overrides ``fit`` (to prepare something, or to add to the report's
    ``info``) keeps the signature and calls ``super().fit(train, val, config, ctx)``.
    """

    @abstractmethod
    def build_model(self, in_dims: dict[str, int], n_outputs: int) -> nn.Module:
        """Return a fresh module; ``in_dims`` lists modalities in sorted order."""
        raise NotImplementedError(f"{type(self).__name__} must define build_model(in_dims, n_outputs)")

    def input_dims(self, data: SplitData) -> dict[str, int]:
        """The widths ``build_model`` receives, by modality in sorted order. Default: each
        modality's feature dimension; a fusion reading token sequences overrides it."""
        return {m: data.features[m].shape[1] for m in sorted(data.features)}

    def model_inputs(self, data: SplitData) -> dict[str, np.ndarray]:
        """The arrays the model reads, one row per sample; the trainer slices each per batch.

        Default: each modality's features under its name, plus "mask/<modality>" (1.0 =
        present) when the fusion handles missing modalities.
        """
        inputs: dict[str, np.ndarray] = {m: data.features[m] for m in sorted(data.features)}
        if self.handles_missing:
            inputs.update({f"mask/{m}": data.present(m).astype(np.float32) for m in sorted(data.features)})
        return inputs

    def loss(self, output: Any, targets: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
        """Training loss of one batch: the task's loss, plus an alignment's branch term."""
        from mmbench.training import logits

        loss = criterion(logits(output), targets)
        if self.branch_loss is not None:
            loss = loss + self.branch_loss(output["branches"])
        return loss

    def end_epoch(self, model: nn.Module, inputs: dict[str, torch.Tensor], targets: torch.Tensor,
                  epoch: int) -> None:
        """Called after each training epoch with the whole train split (e.g. OmniFuse's TLA)."""

    def configure_optimizer(self, model: nn.Module, config: TrainConfig, steps_per_epoch: int
                            ) -> tuple[torch.optim.Optimizer, Any]:
        """The optimizer (from ``config``) and an optional scheduler stepped after every
        optimisation step; override for a method's own schedule (the PairDx paper's OneCycleLR)."""
        from mmbench.training import make_optimizer

        return make_optimizer(model, config), None

    def fit(self, train: SplitData, val: SplitData, config: TrainConfig,
            ctx: FitContext | None = None, **legacy: Any) -> FitReport:
        """``legacy``: the old keywords (``on_epoch``, ``branch_loss``) that subclasses written
        to the old signature pass to ``super().fit``; deprecated, see ``FitContext.coerce``."""
        from mmbench import training

        ctx = FitContext.coerce(ctx, legacy, device=self.device)
        self.branch_loss: BranchLoss | None = ctx.branch_loss
        self.task = train.task  # build_model may need it: n_outputs > 1 is multiclass or multilabel
        self.model = self.build_model(self.input_dims(train), train.n_outputs)
        return training.train_classifier(self.model, train, val, config, on_epoch=ctx.on_epoch, hooks=self)

    def predict_proba(self, data: SplitData) -> Any:
        from mmbench import training

        return training.predict_proba(self.model, data, hooks=self)
