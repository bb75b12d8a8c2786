"""What the shared trainer takes (``TrainConfig``) and gives back (``FitReport``).

Kept free of torch so that suites can be validated without importing it. Defaults are
Restrepo et al.'s protocol (AdamW at PyTorch defaults, lr 1e-3, batch 64, 30 epochs, inverse-
frequency class weights) with one deliberate change: the best epoch is chosen on the
VALIDATION split, never on test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmbench.params import Param

TRAIN_PARAMS: tuple[Param, ...] = (
    Param("epochs", int, 30, "maximum training epochs", min=1),
    Param("batch_size", int, 64, "samples per optimisation step", min=1),
    Param("optimizer", str, "adamw", "optimizer", choices=("adamw", "sgd")),
    Param("lr", float, 1e-3, "learning rate", min=0.0),
    Param("weight_decay", float, 0.01, "weight decay (0.01 is AdamW's PyTorch default)", min=0.0),
    Param("momentum", float, 0.9, "SGD momentum (ignored by AdamW)", min=0.0, max=1.0),
    Param("class_weights", str, "inverse_frequency", "loss weights per class",
          choices=("inverse_frequency", "none")),
    Param("monitor", str, "loss", "validation quantity that picks the best epoch",
          choices=("loss", "auroc", "f1", "accuracy")),
    Param("patience", int, 0, "stop after this many epochs without validation improvement (0: never)",
          min=0),
)


@dataclass(frozen=True)
class TrainConfig:
    """Resolved training settings; the defaults live once, in ``TRAIN_PARAMS``."""

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    momentum: float
    class_weights: str
    monitor: str
    patience: int
    #: Seeds initialisation and batch order; set by the runner from the run's seed.
    seed: int

    @classmethod
    def from_params(cls, params: dict, seed: int) -> TrainConfig:
        """Build from ``[train]`` values (already checked); missing ones take defaults."""
        resolved = {p.name: params.get(p.name, p.default) for p in TRAIN_PARAMS}
        return cls(**resolved, seed=seed)


@dataclass
class FitReport:
    """What a fusion reports about its training; the runner turns it into metrics.

    ``history`` holds one dict per epoch (train loss, validation loss and the monitored
    validation metric) so curves can be drawn from the result file.
    """

    best_epoch: int | None = None
    epochs_run: int = 0
    train_s_total: float = 0.0
    model_mb: float | None = None
    data_mb_per_epoch: float | None = None
    history: list[dict] = field(default_factory=list)
    #: with early stopping on (``patience`` > 0): True when the epoch cap, not early
    #: stopping, ended training (the cap then decided the result: raise ``epochs``);
    #: None without early stopping, where the cap is the schedule
    hit_epoch_cap: bool | None = None
    #: anything else worth keeping with the result (JSON-able): learned fusion weights,
    #: the lazy modality combination per epoch, ... stored as the result's "fit_info"
    info: dict = field(default_factory=dict)
