"""Helpers the tests share: plugins, data and settings built the way a run builds them."""

from __future__ import annotations

from typing import Any

from mmbench.data import SplitData
from mmbench.params import resolve_params
from mmbench.registry import load_registry
from mmbench.splits import split_indices
from mmbench.train_config import TRAIN_PARAMS, TrainConfig
from mmbench_datasets.synthetic import Synthetic


def make(cls: type, **given: Any):
    """An instance with its parameters resolved and checked, as a suite would give them."""
    params, problems = resolve_params(cls.parameters, given)
    assert not problems, problems
    return cls(**params)


def plugin(kind: str, name: str, **given: Any):
    """A registered plugin by name, through the registry a suite uses."""
    return make(load_registry().get(kind, name).cls, **given)


def synthetic_splits(seed: int = 0, val: float = 0.2, test: float = 0.2, **dataset: Any) -> dict[str, SplitData]:
    """The synthetic dataset (generated with ``seed``) split with ``seed`` as the runner
    splits it, masks and token sequences included."""
    table = make(Synthetic, **{"seed": seed, **dataset}).load()
    out = {}
    for name, rows in split_indices(table, val, test, seed).items():
        part = table.subset(rows)
        out[name] = SplitData(part.ids, dict(part.modalities), part.labels, part.task, part.classes,
                              masks=part.masks, sequences=part.sequences)
    return out


def train_config(seed: int = 0, **overrides: Any) -> TrainConfig:
    """Training settings with mmbench's defaults under ``overrides``, checked."""
    params, problems = resolve_params(TRAIN_PARAMS, overrides)
    assert not problems, problems
    return TrainConfig.from_params(params, seed=seed)


#: a 4-run suite (2 fusions x 2 seeds, 2 epochs on 160 synthetic samples) that runs in seconds
TINY_SUITE = """
[suite]
name = "tiny"
seeds = [0, 1]
threads = 1
[[datasets]]
name = "synthetic"
n_samples = 160
dims = [8, 8]
[[fusions]]
name = "early"
train = { epochs = 2 }
[[fusions]]
name = "late_joint"
train = { epochs = 2 }
[report]
primary = "auroc"
"""
