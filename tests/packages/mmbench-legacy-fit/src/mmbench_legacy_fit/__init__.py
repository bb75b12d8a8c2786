"""Two fusions written to the plugin API before FitContext, kept as they were written then."""

import numpy as np

from mmbench import hookimpl
from mmbench.params import Param
from mmbench.plugin import Fusion
from mmbench.torch_fusion import TorchFusion
from mmbench.train_config import FitReport


class LegacyConcat(TorchFusion):
    """Concatenation + MLP that overrides fit the old way to add to the report."""

    name = "legacy_concat"
    version = "0.1.0"
    parameters = (Param("hidden", int, 32, "hidden units", min=1),)

    def build_model(self, in_dims, n_outputs):
        from torch import nn

        class Concat(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(sum(in_dims.values()), self_hidden), nn.ReLU(),
                                         nn.Linear(self_hidden, n_outputs))

            def forward(self, inputs):
                import torch

                return self.net(torch.cat([inputs[m] for m in sorted(in_dims)], dim=1))

        self_hidden = self.params["hidden"]
        return Concat()

    def fit(self, train, val, config, on_epoch=None, **kwargs):
        epochs = []

        def counting(done, total):
            epochs.append(done)
            if on_epoch is not None:
                on_epoch(done, total)

        report = super().fit(train, val, config, on_epoch=counting, **kwargs)
        report.info["epochs_seen"] = len(epochs)
        return report


class LegacyEncoderCount(Fusion):
    """Predicts the train prevalence; records how many encoder objects fit was given."""

    name = "legacy_encoder_count"
    version = "0.1.0"
    task_kinds = ("binary",)
    uses_encoders = True

    def fit(self, train, val, config, on_epoch=None, encoders=None):
        self.rate = float(np.mean(train.labels))
        if on_epoch is not None:
            on_epoch(1, 1)
        return FitReport(epochs_run=1, info={"encoders_given": sorted(encoders or {})})

    def predict_proba(self, data):
        return np.full(len(data), self.rate)


@hookimpl
def mmbench_register_fusions():
    return [LegacyConcat, LegacyEncoderCount]
