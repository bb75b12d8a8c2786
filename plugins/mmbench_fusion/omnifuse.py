"""OmniFuse (Wu et al., 2025): DWFuse alone, and the full framework with imputation and TLA.

Wu et al., "OmniFuse: A general modality fusion framework for multi-modality learning on
low-quality medical data", Information Fusion 117 (2025) 102890. Both fusions read the
masks of missing modalities (``handles_missing``); a missing modality is embedded as its
encoder's output on a zero input, as the paper does. The classes hold metadata and
parameters; their torch modules and losses are in ``omnifuse_modules.py``.

Decisions where the paper is silent or ambiguous (see also docs in the modules):

- Encoders e_m, classifiers g_m and the joint head g_rc are Linear -> ReLU -> Linear MLPs
  (the paper: "several fully-connected layers"); sizes are parameters (not given).
- Binary and multilabel tasks use the BCE analogue of "probability of the true class":
  per label, the probability of the label's true 0/1 value; omega is then computed per
  label and weights that label's BCE term.
- A modality that is missing (or hidden during training) is left out of L_enc, and its
  p_n counts as 0 in the other modalities' omega: an absent modality vouches for nothing.
- At inference the true class is unknown; the ``inference`` parameter chooses the rule:
  "joint" (default; the paper's Fig. 3b predicts with the joint head) or "modalities"
  (the present modalities' heads mixed by eq. 10 with predicted-class confidence; in
  ``omnifuse`` this rule reads only observed embeddings, so imputation then acts only
  through training).
- ``dwfuse`` has no autoencoders, so its joint head reads the concatenated embeddings.
- The classifiers g_m read the encoder's embedding v_m (eq. 9 as written), not the
  imputed v'_m, so classification gradients reach the CRA only through the joint head.
- CRA losses are squared L2 norms as eqs. 7-8 write them (summed over the embedding),
  averaged over the batch: eq. 7 over every slot whose truth is known (present before
  hiding), eq. 8 over the slots the model was given; both targets are constants (detached).
- Training hides modalities to supervise eq. 7: with probability ``hide_rate`` a sample
  with >= 2 present modalities keeps a uniformly drawn non-empty proper subset of them.
- TLA: after each epoch every combination is scored on the train samples that have all
  of its modalities (others hidden), by the mean over those samples of the L1 distance
  between the predicted probabilities and the labels (the paper sums over samples, equal
  up to a constant when no modality is missing). In the next epoch L_TLA is the task loss
  of the predictions from exactly the lazy combination on the samples ``tla_samples``
  picks: "matching" (default, eqs. 16-17) those whose own modality combination equals
  the lazy one, so with nothing missing TLA acts only when the full set is lazy;
  "containing" every sample that has all the lazy modalities, the others hidden. For M > 6 the
  singletons, the leave-one-out sets and the full set are ranked instead of all 2^M - 1.
  Each epoch's choice is in the report's history ("tla_lazy", "tla_distance"), in its
  ``info["tla_lazy_per_epoch"]`` and in ``self.tla_history``.
- The task losses (L_enc, L_rc, L_TLA) use the trainer's criterion, so the suite's class
  weights apply; model selection on validation uses the prediction rule's logits.
"""

from __future__ import annotations

from typing import Any

from mmbench.params import Param
from mmbench.torch_fusion import TorchFusion

OMNIFUSE_PAPER = ("Wu et al., OmniFuse: a general modality fusion framework for multi-modality learning "
            "on low-quality medical data, Information Fusion 117 (2025) 102890.")

_SIZES = (
    Param("hidden", int, 128, "hidden units of each modality encoder e_m (not given in the paper)",
          min=1, max=8192),
    Param("embed", int, 64, "size of each modality embedding v_m (not given in the paper)", min=1, max=8192),
    Param("head_hidden", int, 64, "hidden units of the classifiers g_m and g_rc (not given in the paper)",
          min=1, max=8192),
)
_DWFUSE = (
    Param("alpha", float, 0.1, "weight of the joint head's loss L_rc in L_DWFuse (eq. 14; paper 0.1)",
          min=0.0),
    Param("beta", float, 0.5, "down-weighting strength in omega (eq. 10; paper 0.5)", min=0.0),
    Param("inference", str, "joint", 'prediction rule: "joint" head (paper, Fig. 3b) or "modalities": '
          "per-modality heads weighted by eq. 10 with predicted-class confidence",
          choices=("joint", "modalities")),
)


class DWFuse(TorchFusion):
    """OmniFuse's dynamic weighted fuse alone (Wu et al., 2025, section 3.4, eqs. 9-14).

    Per-modality classifiers whose losses are down-weighted when the other modalities
    already predict the true class, plus a joint head on the concatenated embeddings."""

    name = "dwfuse"
    citation = OMNIFUSE_PAPER
    handles_missing = True
    parameters = _SIZES + _DWFUSE

    def build_model(self, in_dims, n_outputs):
        from mmbench_fusion.omnifuse_modules import DWFuseModel

        p = self.params
        return DWFuseModel(in_dims, n_outputs, p["hidden"], p["embed"], p["head_hidden"], p["beta"],
                           self.task == "multiclass", p["inference"])

    def loss(self, output: Any, targets, criterion):
        from mmbench_fusion.omnifuse_modules import dwfuse_loss

        return dwfuse_loss(output, targets, criterion, self.params["alpha"], self.params["beta"])


class OmniFuse(DWFuse):
    """OmniFuse: CRA imputation, DWFuse and traceable laziness activation (Wu et al., 2025, eq. 18).

    Encoders -> cascade residual autoencoder imputation with a backward cycle -> DWFuse
    on the autoencoders' latents; TLA mines and trains the lazy modality combination."""

    name = "omnifuse"
    parameters = _SIZES + (
        Param("ra_hidden", int, 64, "latent size s_k of each residual autoencoder (not given in the paper)",
              min=1, max=8192),
        Param("k", int, 5, "residual autoencoders per CRA (paper: 5)", min=1, max=64),
    ) + _DWFUSE + (
        Param("l1", float, 1.0, "weight of L_backward (eq. 18; paper 1)", min=0.0),
        Param("l2", float, 10.0, "weight of L_DWFuse (eq. 18; paper 10)", min=0.0),
        Param("l3", float, 0.5, "weight of L_TLA (eq. 18; paper 0.5)", min=0.0),
        Param("tla_samples", str, "matching", "samples L_TLA trains on: \"matching\" those whose own "
              "modality combination is the lazy one (eqs. 16-17), \"containing\" every sample that has "
              "the lazy modalities (the others hidden)", choices=("matching", "containing")),
        Param("hide_rate", float, 0.5, "training samples whose present modalities are partly hidden to "
              "supervise the imputation (not given in the paper)", min=0.0, max=1.0),
    )

    def __init__(self, **params):
        super().__init__(**params)
        #: One entry per epoch: {"epoch", "lazy": "a+b", "distance": {combination: mean L1}}.
        self.tla_history: list[dict] = []

    def fit(self, train, val, config, ctx=None):
        self.tla_history = []
        self._names = sorted(train.features)
        report = super().fit(train, val, config, ctx)
        by_epoch = {h["epoch"]: h for h in self.tla_history}
        for record in report.history:
            mined = by_epoch.get(record["epoch"])
            if mined is not None:
                record["tla_lazy"] = mined["lazy"]
                record["tla_distance"] = mined["distance"]
        report.info["tla_lazy_per_epoch"] = [h["lazy"] for h in self.tla_history]
        return report

    def build_model(self, in_dims, n_outputs):
        from mmbench_fusion.omnifuse_modules import OmniFuseModel

        p = self.params
        return OmniFuseModel(in_dims, n_outputs, p["hidden"], p["embed"], p["ra_hidden"], p["head_hidden"],
                             p["k"], p["beta"], p["hide_rate"], self.task == "multiclass", p["inference"],
                             p["tla_samples"])

    def loss(self, output: Any, targets, criterion):
        from mmbench_fusion.omnifuse_modules import omnifuse_loss

        p = self.params
        return omnifuse_loss(output, targets, criterion, p["alpha"], p["beta"], p["l1"], p["l2"], p["l3"])

    def end_epoch(self, model, inputs, targets, epoch):
        """TLA step (a), eq. 15: rank the combinations on the train split; the worst is lazy
        in the next epoch."""
        from mmbench_fusion.omnifuse_modules import rank_combinations

        distance = rank_combinations(model, inputs, targets, self.task == "multiclass")

        def label(combo: list[bool]) -> str:
            return "+".join(m for m, on in zip(self._names, combo) if on)

        combos = model.combinations.tolist()
        self.tla_history.append({"epoch": epoch, "lazy": label(model.lazy.tolist()),
                                 "distance": {label(combos[i]): value for i, value in distance.items()}})


FUSIONS = [DWFuse, OmniFuse]
