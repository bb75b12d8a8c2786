"""Base class for fusions that are a torch module trained by the shared trainer.

A subclass only builds its module; fitting, model selection on validation and
prediction are shared. torch is imported on first use, so registering a fusion (and
``mmbench plugins`` / ``validate``) does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmbench.data import SplitData
from mmbench.plugin import Fusion
from mmbench.train_config import FitReport, TrainConfig

if TYPE_CHECKING:
    from torch import nn


class TorchFusion(Fusion):
    """A fusion whose model maps ``{modality: (batch, dim) tensor}`` to logits."""

    def build_model(self, in_dims: dict[str, int], n_outputs: int) -> nn.Module:
        """Return a fresh module; ``in_dims`` lists modalities in sorted order."""
        raise NotImplementedError

    def fit(self, train: SplitData, val: SplitData, config: TrainConfig,
            on_epoch: Any = None) -> FitReport:
        from mmbench import training

        in_dims = {m: train.features[m].shape[1] for m in sorted(train.features)}
        self.model = self.build_model(in_dims, train.n_outputs)
        return training.train_classifier(self.model, train, val, config, on_epoch=on_epoch)

    def predict_proba(self, data: SplitData) -> Any:
        from mmbench import training

        return training.predict_proba(self.model, data)
