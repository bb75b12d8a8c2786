"""PairDxFusion (PairDx, 2025): self-attention over the caption's token vectors, fused with
the image vector by an MLP, trained with AdamW and a OneCycleLR schedule.

The class holds metadata and parameters; its torch module is in ``attention_modules.py``,
imported on first use so listing and validating plugins does not import torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.fit_context import FitContext
from mmbench.params import Param
from mmbench.torch_fusion import TorchFusion
from mmbench.train_config import FitReport, TrainConfig

PAIRDX = ("PairDx 2025 (PairDxCLIP vs PairDxFusion, medical image-caption pairs), sections 3.4-3.5: PairDxFusion, ResNet-18 image features and "
            "GloVe token vectors with scaled dot-product self-attention, concatenated into an MLP.")


class PairDxFusion(TorchFusion):
    """Attention-pooled text tokens + image vector -> MLP (PairDxFusion, the PairDx paper).

    The text modality must come with token vectors (``SplitData.sequences``; the paper:
    300-d GloVe vectors, captions truncated or zero-padded to 32 tokens). They go through
    single-head scaled dot-product self-attention with Q, K, V projections to
    ``attention_dim`` (256 in the paper), masked so padding has no effect, and a masked
    mean over the tokens gives the 256-d text representation. It is concatenated with the
    image vector (the paper: ResNet-18's 512-d output) and classified by Linear -> BatchNorm1d
    -> ReLU -> Dropout -> Linear. Training (section 3.5): AdamW, lr 1e-3 as OneCycleLR's
    peak, weight decay 0.01, batch 128, 20 epochs. The paper names OneCycleLR without
    settings, so it is torch's with its defaults (start at peak / 25, 30% of the steps
    rising, cosine annealing to peak / 25e4, and beta1 / momentum cycled 0.95 -> 0.85 -> 0.95),
    stepped once per batch over epochs x batches-per-epoch steps. Other modalities of the
    data are not used.

    A sample whose text modality is marked missing (``SplitData.masks``) is read as an
    empty caption: all its tokens are masked, so its text representation is zero.
    """

    name = "attention"
    citation = PAIRDX
    parameters = (
        Param("text_modality", str, "text", "modality whose token vectors feed the attention"),
        Param("image_modality", str, "image", "modality whose pooled vector is the image side"),
        Param("attention_dim", int, 256, "size of Q, K, V and the text representation (PairDx, 2025: 256)",
              min=1, max=4096),
        Param("image_hidden", int, 0, "Linear -> ReLU of this size on the image vector before "
              "fusion (0: the vector as it is, as in the PairDx paper)", min=0, max=4096),
        Param("hidden", int, 256, "hidden units of the fusion MLP (not given in the PairDx paper)",
              min=1, max=4096),
        Param("dropout", float, 0.3, "dropout of the fusion MLP (not given in the PairDx paper)",
              min=0.0, max=0.95),
        Param("schedule", str, "onecycle", "learning-rate schedule (PairDx, 2025: OneCycleLR with "
              "PyTorch's defaults, peak = the training lr)", choices=("onecycle", "constant")),
        Param("pct_start", float, 0.3, "OneCycleLR: fraction of the steps spent raising the lr "
              "(PyTorch's default)", min=0.01, max=0.99),
        Param("pooled_fallback", bool, False, "without token vectors, read the text modality's "
              "pooled vector as a one-token sequence (not the paper's method)"),
    )
    # The PairDx paper, section 3.5 (the peak of the OneCycleLR schedule is the lr).
    train_defaults = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "batch_size": 128,
                      "epochs": 20}

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["text_modality"] == self.params["image_modality"]:
            raise UserError(f"attention: text_modality and image_modality must differ, both are "
                            f"{self.params['text_modality']!r}")

    def build_model(self, in_dims, n_outputs):
        """``in_dims`` holds the image modality's feature dimension and, for the text
        modality, the dimension of its token vectors."""
        from mmbench_fusion.attention_modules import PairDxModel

        p = self.params
        text, image = p["text_modality"], p["image_modality"]
        return PairDxModel(text, image, in_dims[text], in_dims[image], p["attention_dim"],
                           p["image_hidden"], p["hidden"], p["dropout"], n_outputs)

    def tokens(self, data: SplitData) -> tuple[np.ndarray, np.ndarray]:
        """The text modality's (n, T, d) token vectors and (n, T) bool mask of real tokens."""
        text = self.params["text_modality"]
        sequence = data.sequences.get(text)
        if sequence is not None:
            values, mask = sequence.values, sequence.mask
        elif text in data.features and self.params["pooled_fallback"]:
            values = data.features[text][:, None, :]
            mask = np.ones((len(data), 1), dtype=bool)
        elif text in data.features:
            raise UserError(
                f"attention: modality {text!r} has no token vectors, only a pooled vector; "
                "PairDxFusion attends over the tokens of each text, so the dataset or its encoder "
                "must provide them (e.g. a word-vector encoder such as GloVe, or the synthetic "
                "dataset's sequence_length), or set pooled_fallback = true to read the pooled "
                "vector as a one-token sequence"
            )
        else:
            raise UserError(f"attention: no text modality {text!r} in the data (it has "
                            f"{sorted(set(data.features) | set(data.sequences))}); set text_modality")
        return values, mask & data.present(text)[:, None]

    def model_inputs(self, data: SplitData) -> dict[str, np.ndarray]:
        text, image = self.params["text_modality"], self.params["image_modality"]
        if image not in data.features:
            raise UserError(f"attention: no image modality {image!r} in the data (it has "
                            f"{sorted(data.features)}); set image_modality")
        values, mask = self.tokens(data)
        return {image: data.features[image], f"seq/{text}": values,
                f"seq_mask/{text}": mask.astype(np.float32)}

    def input_dims(self, data: SplitData) -> dict[str, int]:
        """The image vector's width and the text tokens' width."""
        text, image = self.params["text_modality"], self.params["image_modality"]
        inputs = self.model_inputs(data)  # fails clearly, before building anything, if inputs are missing
        return dict(sorted({image: inputs[image].shape[1], text: inputs[f"seq/{text}"].shape[2]}.items()))

    def fit(self, train: SplitData, val: SplitData, config: TrainConfig,
            ctx: FitContext | None = None) -> FitReport:
        from mmbench import training

        #: learning rate of every optimisation step, in order (filled while training)
        self.lr_trace: list[float] = []
        report = super().fit(train, val, config, ctx)
        steps_per_epoch = len(training.batch_bounds(len(train), config.batch_size))
        for record in report.history:  # the lr at the epoch's last step, for the curves
            last = record["epoch"] * steps_per_epoch - 1
            if last < len(self.lr_trace):
                record["lr"] = self.lr_trace[last]
        return report

    def configure_optimizer(self, model, config, steps_per_epoch):
        """AdamW from the training settings, and the PairDx paper's OneCycleLR (PyTorch defaults,
        peak = the training lr) stepped after every optimisation step."""
        from mmbench.training import make_optimizer

        optimizer = make_optimizer(model, config)
        if self.params["schedule"] == "constant":
            return optimizer, _Traced(optimizer, None, self.lr_trace)
        from torch.optim.lr_scheduler import OneCycleLR

        schedule = OneCycleLR(optimizer, max_lr=config.lr, total_steps=max(config.epochs * steps_per_epoch, 1),
                              pct_start=self.params["pct_start"])
        return optimizer, _Traced(optimizer, schedule, self.lr_trace)


class _Traced:
    """Steps the schedule (if any) and records the lr each optimisation step used."""

    def __init__(self, optimizer: Any, schedule: Any, trace: list[float]):
        self.optimizer, self.schedule, self.trace = optimizer, schedule, trace

    def step(self) -> None:
        self.trace.append(float(self.optimizer.param_groups[0]["lr"]))
        if self.schedule is not None and self.schedule.last_epoch < self.schedule.total_steps - 1:
            self.schedule.step()


FUSIONS = [PairDxFusion]
