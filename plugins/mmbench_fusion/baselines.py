"""Baselines a fusion leaderboard needs: the best single modality, and OmniFuse's
comparison fusions (Concat, Sum, SE-Gate).

OmniFuse (Wu et al., 2025, Table 2) shows fusing by concatenation can be WORSE than the best
single modality ("modality laziness"): MIMIC mortality AUROC 0.811 for EHR+CXR+REP
concatenated against 0.828 for EHR alone. A leaderboard without ``unimodal`` rows cannot
show that, and one without Concat / Sum / SE-Gate cannot place a new method where the
paper's Table 3 does.

Each class holds metadata and parameters only; its torch module is built on first use
(``baseline_modules.py``; ``unimodal`` reuses Restrepo et al.'s early block from ``modules.py``).
"""

from __future__ import annotations

import numpy as np

from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.torch_fusion import TorchFusion

LOW_RESOURCE = ("Restrepo et al. 2024, multimodal deep learning for low-resource settings, section 2.4: the early-fusion block "
            "Linear -> ReLU -> Dropout -> BatchNorm1d -> Linear.")
OMNIFUSE_PAPER = ("Wu et al., OmniFuse, Information Fusion 117 (2025) 102890, section 4.4 "
            "and Table 3: comparison fusion methods.")
SE_NET = "Hu, Shen, Sun, Squeeze-and-excitation networks, CVPR 2018 (OmniFuse ref. [60])."
# OmniFuse gives no layer sizes for its baselines: Restrepo et al.'s hidden size and dropout are used.
HIDDEN = Param("hidden", int, 128, "hidden units of the classifier and of each modality's "
               "projection (OmniFuse gives none; Restrepo et al.'s 128)", min=1, max=65536)
DROPOUT = Param("dropout", float, 0.0, "dropout probability in the classifier (Restrepo et al., 2024: 0.0)",
                min=0.0, max=0.95)


class Unimodal(TorchFusion):
    """One modality only, through Restrepo et al.'s early-fusion MLP: the single-modality baseline.

    Fusion earns its place on a leaderboard only by beating the best of these (OmniFuse,
    the OmniFuse paper, Table 2). The other modalities are never handed to the model: ``model_inputs``
    passes the chosen one alone, so they cannot change a prediction.
    """

    name = "unimodal"
    citation = f"{OMNIFUSE_PAPER} Table 2 (dominant uni-modality); model: {LOW_RESOURCE}"
    example_params = {"modality": "text"}
    parameters = (
        Param("modality", str, Param.REQUIRED, "the one modality to use, e.g. \"text\""),
        HIDDEN,
        DROPOUT,
    )

    def modalities_used(self) -> set[str]:
        return {self.params["modality"]}

    def _check_modality(self, data: SplitData) -> str:
        # Which modalities a dataset has is known only once it is loaded, so this is checked
        # here rather than in the constructor (which runs during `mmbench validate`).
        modality = self.params["modality"]
        if modality not in data.features:
            raise UserError(f"unimodal: modality {modality!r} is not in this dataset; it has "
                            f"{', '.join(map(repr, sorted(data.features)))}. Set the fusion's "
                            "`modality` to one of them.")
        return modality

    def model_inputs(self, data: SplitData) -> dict[str, np.ndarray]:
        modality = self._check_modality(data)
        return {modality: data.features[modality]}

    def fit(self, train, val, config, ctx=None):
        self._check_modality(train)
        return super().fit(train, val, config, ctx)

    def build_model(self, in_dims, n_outputs):
        from mmbench_fusion.modules import EarlyMLP

        return EarlyMLP(in_dims[self.params["modality"]], self.params["hidden"], self.params["dropout"],
                        n_outputs)


class Concat(TorchFusion):
    """OmniFuse's Concatenate: concat(embeddings) -> Linear -> ReLU -> Dropout -> Linear.

    "Concatenate involves concatenating the multimodal embeddings directly" (Wu et al., 2025, 4.4).
    It is Restrepo et al.'s ``early`` without the BatchNorm, and shares its classifier with ``sum``
    and ``se_gate`` so the three differ only in the fusion operator.
    """

    name = "concat"
    citation = OMNIFUSE_PAPER
    parameters = (HIDDEN, DROPOUT)

    def build_model(self, in_dims, n_outputs):
        from mmbench_fusion.baseline_modules import ConcatModel

        return ConcatModel(in_dims, self.params["hidden"], self.params["dropout"], n_outputs)


class Sum(TorchFusion):
    """OmniFuse's Sum: sum_m ReLU(Linear_m(x_m)) in a shared space -> the same classifier.

    "Sum refers to summing the multimodal embeddings" (Wu et al., 2025, 4.4); embeddings of
    different sizes are first projected to ``hidden`` units. The projection has a ReLU
    because a sum of purely linear projections equals one Linear on the concatenation,
    i.e. ``concat`` again (see ``baseline_modules.projections``).
    """

    name = "sum"
    citation = OMNIFUSE_PAPER
    parameters = (HIDDEN, DROPOUT)

    def build_model(self, in_dims, n_outputs):
        from mmbench_fusion.baseline_modules import SumModel

        return SumModel(in_dims, self.params["hidden"], self.params["dropout"], n_outputs)


class SEGate(TorchFusion):
    """OmniFuse's SE-Gate: squeeze-and-excitation gates in (0, 1) reweight each modality.

    Each modality is projected as in ``sum`` (z_m, ``hidden`` units); squeeze s_m = mean of
    z_m (SE-Net eq. 2); excitation g = sigmoid(W_2 ReLU(W_1 s)) with M -> max(1, M // r) -> M
    units (eq. 3); z_m * g_m (eq. 4) are concatenated (or summed) -> the shared classifier.
    The gates depend on the sample, so a modality can be turned down where it is weak.
    """

    name = "se_gate"
    citation = f"{OMNIFUSE_PAPER} {SE_NET}"
    parameters = (
        HIDDEN,
        DROPOUT,
        # SE-Net's r = 16 is for hundreds of channels; with 2-3 modalities any r > 1 leaves a
        # single hidden unit, which one ReLU can switch off for good (the gates then stop
        # depending on the input), hence r = 1 by default.
        Param("reduction", int, 1, "SE reduction ratio r: the excitation MLP has max(1, M // r) "
              "hidden units for M modalities (SE-Net uses 16 for hundreds of channels)", min=1),
        Param("combine", str, "concat", "how the gated modalities are joined before the classifier",
              choices=("concat", "sum")),
    )

    def build_model(self, in_dims, n_outputs):
        from mmbench_fusion.baseline_modules import SEGateModel

        p = self.params
        return SEGateModel(in_dims, p["hidden"], p["dropout"], n_outputs, p["reduction"], p["combine"])


FUSIONS = [Unimodal, Concat, Sum, SEGate]
