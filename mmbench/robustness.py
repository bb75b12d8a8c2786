"""Robustness settings: missing modalities and test-time noise, as grid axes.

A missing modality is a mask (``SplitData.masks``), never zeros passed off as data:
fusions that handle missing input read the mask; the others see the suite's documented
fill (zeros, or the mean of the present train rows) at the missing rows. Every draw is
seeded by the run's seed, so every fusion of a grid point sees the same missing samples.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from mmbench.data import SplitData, TokenSequence
from mmbench.errors import UserError
from mmbench.params import Param

ROBUSTNESS_PARAMS = (
    Param("missing_rate", float, 0.0, "fraction of samples that lose a modality", min=0.0, max=1.0),
    Param("missing_modality", str, "random",
          'the modality that goes missing, or "random": one modality dropped per affected sample'),
    Param("missing_at", str, "both", "splits where modalities go missing (train includes validation)",
          choices=("train", "test", "both")),
    Param("fill", str, "zero", "what stands in a missing row's features", choices=("zero", "train_mean")),
    Param("test_noise", float, 0.0, "std of Gaussian noise added to test features", min=0.0),
)
DEFAULTS = {p.name: p.default for p in ROBUSTNESS_PARAMS}
#: settings that only say how samples go missing: they change nothing at missing rate 0
MISSING_ONLY = ("missing_modality", "missing_at", "fill")


def label(settings: dict[str, Any] | None) -> str:
    """A short display name: "-" for clean data."""
    if not settings:
        return "-"
    parts = []
    if settings["missing_rate"] > 0:
        parts.append(f"missing {settings['missing_rate']:g} {settings['missing_modality']}@"
                     f"{settings['missing_at']} fill={settings['fill']}")
    if settings["test_noise"] > 0:
        parts.append(f"test noise {settings['test_noise']:g}")
    return ", ".join(parts) or "-"


def corrupt(splits: dict[str, SplitData], settings: dict[str, Any], seed: int) -> dict[str, SplitData]:
    """Drop modalities (as masks, their rows zeroed so nothing of them leaks downstream)
    and add test noise. Runs before the alignment; ``fill`` runs after it."""
    rng = np.random.default_rng([seed, 20261124])
    modalities = sorted(splits["train"].features)
    targets = {"train": ("train", "val"), "test": ("test",), "both": ("train", "val", "test")}
    out = dict(splits)
    if settings["missing_rate"] > 0:
        chosen = settings["missing_modality"]
        if chosen != "random" and chosen not in modalities:
            raise UserError(f"[robustness] missing_modality {chosen!r} is not a modality of this dataset "
                            f"({', '.join(modalities)}); use one of them or \"random\"")
        if len(modalities) < 2:
            raise UserError("[robustness] missing modalities need a dataset with at least two modalities")
        for name in targets[settings["missing_at"]]:
            out[name] = _drop(out[name], modalities, settings["missing_rate"], chosen, rng)
    if settings["test_noise"] > 0:
        test, sigma = out["test"], settings["test_noise"]
        noisy = {m: x + rng.normal(0.0, sigma, x.shape).astype(np.float32) for m, x in test.features.items()}
        tokens = {m: TokenSequence(s.values + rng.normal(0.0, sigma, s.values.shape) * s.mask[:, :, None], s.mask)
                  for m, s in test.sequences.items()}  # real tokens only
        out["test"] = replace(test, features=noisy, sequences=tokens)
    return fill(out, "zero")


def _drop(data: SplitData, modalities: list[str], rate: float, chosen: str,
          rng: np.random.Generator) -> SplitData:
    n = len(data)
    affected = rng.random(n) < rate
    which = rng.integers(0, len(modalities), n)
    masks, sequences = dict(data.masks), dict(data.sequences)
    for i, m in enumerate(modalities):
        dropped = affected & (which == i) if chosen == "random" else (affected if m == chosen else None)
        if dropped is None:
            continue
        masks[m] = data.present(m) & ~dropped
        if m in sequences:  # a dropped modality loses its tokens too
            tokens = sequences[m]
            sequences[m] = TokenSequence(np.where(dropped[:, None, None], 0.0, tokens.values),
                                         tokens.mask & ~dropped[:, None])
    return replace(data, masks=masks, sequences=sequences)


def fill(splits: dict[str, SplitData], how: str) -> dict[str, SplitData]:
    """Put the stand-in (zeros, or the mean of the present train rows) in missing rows."""
    train = splits["train"]
    stand_in = {}
    for m, x in train.features.items():
        present = train.present(m)
        if how == "train_mean" and present.any():
            stand_in[m] = x[present].mean(axis=0)
        else:
            stand_in[m] = np.zeros(x.shape[1], dtype=np.float32)
    out = {}
    for name, data in splits.items():
        if not data.masks:
            out[name] = data
            continue
        features = {}
        for m, x in data.features.items():
            missing = ~data.present(m)
            features[m] = x if not missing.any() else np.where(missing[:, None], stand_in[m], x).astype(np.float32)
        out[name] = data.with_features(features)
    return out
