"""The papers' feed-forward fusions, trained by mmbench's shared trainer.

Each class holds metadata and parameters only; its torch module is built on first
use (``modules.py``), so listing and validating plugins does not import torch.
"""

from __future__ import annotations

from mmbench.params import Param
from mmbench.torch_fusion import TorchFusion

LOW_RESOURCE = ("Restrepo et al. 2024, multimodal deep learning for low-resource settings: BRSET, HAM10000, SatelliteBench; "
            "section 2.4, early and late-joint fusion.")
MODALITY_GAP = ("Restrepo et al. 2026, on the cone effect and modality gap in medical vision-language "
                "embeddings (arXiv 2603.17246): linear probe on concatenated embeddings.")
DROPOUT = Param("dropout", float, 0.0, "dropout probability (Restrepo et al., 2024: 0.0)", min=0.0, max=0.95)


class LinearProbe(TorchFusion):
    """Linear classifier on the concatenated embeddings (the modality-gap paper's probe)."""

    name = "linear_probe"
    citation = MODALITY_GAP
    # The modality-gap paper: SGD with momentum 0.9, lr 3e-4, early stopping on validation loss.
    # It gives no cap or patience; at lr 3e-4 a probe needs hundreds of epochs, so the cap is
    # high enough that early stopping, not the cap, ends training (results record
    # hit_epoch_cap; the leaderboard warns when it was hit).
    train_defaults = {"optimizer": "sgd", "lr": 3e-4, "momentum": 0.9, "weight_decay": 0.0,
                      "epochs": 2000, "patience": 10}

    def build_model(self, in_dims, n_outputs):
        from mmbench_fusion.modules import Linear

        return Linear(sum(in_dims.values()), n_outputs)


class EarlyFusion(TorchFusion):
    """concat -> Linear(d, hidden) -> ReLU -> Dropout -> BatchNorm1d -> Linear(hidden, C)."""

    name = "early"
    citation = LOW_RESOURCE
    parameters = (
        Param("hidden", int, 128, "hidden units", min=1),
        DROPOUT,
    )

    def build_model(self, in_dims, n_outputs):
        from mmbench_fusion.modules import EarlyMLP

        return EarlyMLP(sum(in_dims.values()), self.params["hidden"], self.params["dropout"], n_outputs)


class LateJointFusion(TorchFusion):
    """Per modality Linear -> ReLU -> Dropout -> BatchNorm1d; concat -> Linear(hidden * M, C)."""

    name = "late_joint"
    citation = LOW_RESOURCE
    # Its module returns {"logits", "branches": {modality: block output}}, so an alignment's
    # branch loss (Restrepo et al.'s L_reg, eq. 14; see gap_shift's reg_weight) can act on it.
    exposes_branches = True
    parameters = (
        Param("hidden", int, 64, "hidden units per modality branch", min=1),
        DROPOUT,
    )

    def build_model(self, in_dims, n_outputs):
        from mmbench_fusion.modules import LateJointMLP

        return LateJointMLP(in_dims, self.params["hidden"], self.params["dropout"], n_outputs)
FUSIONS = [LinearProbe, EarlyFusion, LateJointFusion]
