"""End-to-end fine-tuning of the encoders' backbones with a fusion head, on raw inputs.

Restrepo et al.'s "raw data" baseline (ViT and BERT fine-tuned end to end) and the PairDx paper's
PairDxCLIP (both CLIP towers unfrozen, AdamW, gradient clipping at 1.0): the upper
reference that frozen-embedding fusions are measured against, and its cost (time per
epoch, model size) is part of what is compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.fit_context import FitContext
from mmbench.params import Param
from mmbench.plugin import Encoder, Fusion
from mmbench.train_config import FitReport, TrainConfig

CITATION = ("Restrepo et al. (raw-data baseline: ViT + BERT fine-tuned end to end) and PairDx (PairDx, 2025: "
            "PairDxCLIP, both CLIP towers fine-tuned, AdamW, gradient clipping 1.0).")


class FineTune(Fusion):
    """Fine-tunes each modality's encoder backbone and a fusion head end to end, on raw items.

    Every raw modality is read by a fresh copy of its encoder's backbone
    (``encoder.trainable``; the encoder's own model is never changed, so later runs
    extract what they always did), except the ones listed in ``frozen``: their encoder is fitted on train and its fixed vectors are used,
    as for modalities that already are vectors. The pooled vectors go to the head:
    ``early`` (concat -> Linear -> ReLU -> Dropout -> BatchNorm1d -> Linear, Restrepo et al.) or
    ``late_joint`` (one such block per modality, concatenated -> Linear; i.e. per-modality
    logits summed). A missing item (a mask, None or NaN) zeroes its modality's vector.

    Optimisation: the ``[train]`` optimizer (AdamW by default) with the backbones at
    ``backbone_lr`` and the head at the ``[train]`` lr, both with its weight decay; the
    gradient norm clipped at ``max_grad_norm``. With ``augment``, train images (never
    validation or test) are flipped, rotated and colour-jittered before the encoder's
    own resize and normalisation. The best epoch is chosen on validation, and its weights
    predict test.
    """

    name = "finetune"
    citation = CITATION
    consumes = "raw"
    # The PairDx paper's PairDxCLIP protocol (its learning rate is missing from the paper).
    train_defaults = {"epochs": 10, "batch_size": 128}
    parameters = (
        Param("head", str, "early", "fusion head on the pooled vectors", choices=("early", "late_joint")),
        Param("hidden", int, 128, "hidden units of the head (per modality branch for late_joint)", min=1),
        Param("dropout", float, 0.0, "dropout probability in the head (Restrepo et al., 2024: 0.0)", min=0.0, max=0.95),
        Param("backbone_lr", float, 1e-5, "learning rate of the backbones (the head uses the [train] lr)",
              min=0.0),
        Param("max_grad_norm", float, 1.0, "clip the gradient norm of all parameters to this (0: no "
              "clipping; the PairDx paper: 1.0)", min=0.0),
        Param("augment", bool, False, "augment train images: horizontal flip, rotation, colour jitter"),
        Param("rotation", float, 15.0, "largest rotation in degrees when augmenting", min=0.0, max=180.0),
        Param("color_jitter", float, 0.2, "brightness / contrast / saturation jitter when augmenting "
              "(hue: a quarter of it)", min=0.0, max=1.0),
        Param("frozen", list, ["tabular"], "raw modalities whose encoder is not trained: its vectors "
              "(fitted on train) are used as they are, e.g. a metadata table"),
    )

    def fit(self, train: SplitData, val: SplitData, config: TrainConfig,
            ctx: FitContext | None = None) -> FitReport:
        import torch

        from mmbench import training
        from mmbench_fusion.finetune_modules import FineTuneModel, Loop, augmentation

        ctx = ctx or FitContext(device=self.device)
        encoders = ctx.encoders
        frozen = [m for m in sorted(train.raw) if m in self.params["frozen"]]
        backbones = {m: self._trainable(encoders.get(m), m) for m in sorted(train.raw) if m not in frozen}
        if not backbones:
            raise UserError("fusion 'finetune': no modality to fine-tune (the raw ones are "
                            f"{sorted(train.raw)}, frozen = {self.params['frozen']}); give it a dataset "
                            "with image or text items and a neural encoder for them")
        self.frozen = {m: encoders[m] for m in frozen}
        for modality, encoder in self.frozen.items():
            encoder.fit(modality, train.raw[modality])
        train_in, val_in = self._inputs(train), self._inputs(val)

        torch.manual_seed(config.seed)
        p = self.params
        model = FineTuneModel(backbones, {m: v.shape[1] for m, v in train_in.vectors.items()}, p["head"],
                              p["hidden"], p["dropout"], train.n_outputs).to(ctx.device)
        self.loop = Loop(model, {m: b.prepare for m, b in backbones.items()}, ctx.device)
        optimizer = _optimizer(model, config, p["backbone_lr"])
        augment = augmentation(p["rotation"], p["color_jitter"]) if p["augment"] else None
        report = self.loop.fit(train_in, val_in, val.labels, train.task, config,
                               training.loss_function(train, config.class_weights), optimizer,
                               p["max_grad_norm"], augment, ctx.on_epoch)
        report.info = {"trained": {m: encoders[m].name for m in backbones},
                       "frozen": {m: e.name for m, e in self.frozen.items()},
                       "vectors": sorted(set(train.features)), "head": p["head"],
                       "backbone_params": sum(q.numel() for q in model.backbones.parameters()),
                       "head_params": sum(q.numel() for q in model.head.parameters())}
        self.batch_size = config.batch_size
        return report

    def predict_proba(self, data: SplitData) -> np.ndarray:
        from mmbench.training import probabilities

        return probabilities(self.loop.logits(self._inputs(data), self.batch_size), data.task)

    def _trainable(self, encoder: Encoder | None, modality: str) -> Any:
        if encoder is None:
            raise UserError(f"fusion 'finetune': modality {modality!r} holds raw items but has no encoder; "
                            f"add an [[encoders]] entry for {modality!r}")
        try:
            return encoder.trainable(modality)
        except NotImplementedError as exc:
            raise UserError(f"fusion 'finetune': encoder {encoder.name!r} has no trainable backbone for "
                            f"{modality!r} ({exc}); encode {modality!r} with a neural encoder, or add "
                            f"{modality!r} to the fusion's frozen list to use its fixed vectors") from None

    def _inputs(self, data: SplitData) -> Any:
        """The split as the model reads it; frozen modalities are encoded here (their
        encoder was fitted on train)."""
        from mmbench.training import label_tensor
        from mmbench_fusion.finetune_modules import Inputs

        present = {m: data.present(m) & ~_missing_items(items) for m, items in data.raw.items()}
        present.update({m: data.present(m) & np.isfinite(x).all(axis=1) for m, x in data.features.items()})
        vectors = {m: np.asarray(x, dtype=np.float32) for m, x in data.features.items()}
        for modality, encoder in self.frozen.items():
            encoded = encoder.encode(modality, data.raw[modality])
            vectors[modality] = np.asarray(getattr(encoded, "vectors", encoded), dtype=np.float32)
        vectors = {m: np.ascontiguousarray(np.where(present[m][:, None], np.nan_to_num(v), 0.0), dtype=np.float32)
                   for m, v in vectors.items()}
        raw = {m: items for m, items in data.raw.items() if m not in self.frozen}
        return Inputs(raw, vectors, {m: p.astype(np.float32) for m, p in present.items()}, label_tensor(data))


def _optimizer(model: Any, config: TrainConfig, backbone_lr: float) -> Any:
    """The [train] optimizer with two parameter groups: the backbones at ``backbone_lr``
    (pretrained weights need small steps), the fresh head at the [train] lr."""
    import torch

    groups = [{"params": list(model.backbones.parameters()), "lr": backbone_lr},
              {"params": list(model.head.parameters()), "lr": config.lr}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def _missing_items(items: Any) -> np.ndarray:
    """True per raw item that is absent (None or NaN); an image array is never missing."""
    if isinstance(items, np.ndarray) and items.dtype != object:
        return np.zeros(len(items), dtype=bool)
    if hasattr(items, "iloc"):  # table rows: present unless a mask says otherwise (the encoder imputes)
        return np.zeros(len(items), dtype=bool)
    return np.array([item is None or (isinstance(item, float) and np.isnan(item)) for item in items], dtype=bool)


FUSIONS = [FineTune]
