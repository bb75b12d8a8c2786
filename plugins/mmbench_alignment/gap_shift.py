"""Closing the modality gap by a lambda shift (the modality-gap paper, eqs. 1, 5 and 6; Restrepo et al., 2.4.6).

The modality-gap paper states the method cleanly. With unit-normalised image embeddings v and text
embeddings t, the gap vector is the difference of the modality centroids over the TRAIN
split (eqs. 1 and 6)

    Delta = mu_v - mu_t,    mu_v = mean_train(v),  mu_t = mean_train(t),

and each embedding moves half of lambda along it, then back onto the unit sphere (eq. 5)

    t' = normalize(t + lambda/2 * Delta),    v' = normalize(v - lambda/2 * Delta).

Before the renormalisation the centroids become mu_t + lambda/2 Delta and
mu_v - lambda/2 Delta, whose difference is (1 - lambda) * Delta: lambda = 0 leaves the gap
(and, the inputs being normalised first, is the identity on unit vectors), lambda = 1
closes it. The same Delta, estimated on train, is applied to validation and test.

Restrepo et al. (section 2.4.6, step 2) proposes the same shift but writes it as
E' = E - lambda/2 * Gap for BOTH modalities with Gap = E[||E_text - E_image||], a scalar;
taken literally that moves both modalities alike and cannot change the gap, so the
harness follows the modality-gap paper's vector form, which is what the shift is meant to do.

Restrepo et al.'s optional regulariser (section 2.4.6, eq. 14) is offered as ``reg_weight``:
when it is > 0, the fusion's training loss gains

    reg_weight * L_reg,    L_reg = 1/(2N) * sum_j ||b_text_j - b_image_j||^2,

over the N samples of each batch, where b_m are the fusion's per-modality branch outputs
(the paper's "decoupled late-fusion encoder's branch"), so it needs a fusion that
exposes branches (``late_joint``); the runner refuses any other with advice.

Restrepo et al.'s step 1 (Gaussian noise, see ``noise``) can be chained in front with
``noise_sigma`` > 0, since a run has one alignment: the full Restrepo et al. recipe is then
noise -> shift -> renormalise, plus ``reg_weight`` for its loss.

Default lambda = 0.5. Neither paper gives one value: the modality-gap paper sweeps 0.0..1.0 and finds
that "moderate closure of the modality gap consistently improves" AUC while "full
collapse" (lambda -> 1) sometimes degrades it, and Restrepo et al. reports its best BRSET F1 at
lambda = 0.8. 0.5 is the middle of the sweep (half the gap closed): sweep
``lambda = [0.0, 0.1, ..., 1.0]`` as the modality-gap paper does to choose per task.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Alignment
from mmbench_alignment.noise import add_noise, unit_rows

CITATION = ("Restrepo et al. 2026, on the cone effect and modality gap in medical vision-language embeddings "
            "(arXiv 2603.17246), eqs. 1, 5 and 6; Restrepo et al. 2024, multimodal deep learning for "
            "low-resource settings, section 2.4.6, "
            "eq. 14 (L_reg).")


class BranchGapLoss:
    """Restrepo et al.'s eq. 14 times its weight: weight * 1/(2N) * sum_j ||b_text_j - b_image_j||^2,
    on a batch's per-modality branch outputs {modality: (N, k) tensor}."""

    def __init__(self, weight: float, image: str, text: str):
        self.weight, self.image, self.text = weight, image, text

    def __call__(self, branches: dict[str, Any]) -> Any:
        missing = [m for m in (self.image, self.text) if m not in branches]
        if missing:
            raise UserError(f"gap_shift: reg_weight needs the fusion's branch outputs for "
                            f"{self.image!r} and {self.text!r}, but its branches are "
                            f"{sorted(branches)}; set image / text to two of them")
        image, text = branches[self.image], branches[self.text]
        if image.shape != text.shape:
            raise UserError(f"gap_shift: reg_weight compares branch outputs of equal size, but "
                            f"{self.image!r} gives {tuple(image.shape)} and {self.text!r} "
                            f"{tuple(text.shape)}; use a fusion whose branches share a size")
        return self.weight * 0.5 * ((text - image) ** 2).sum(dim=1).mean()


class GapShift(Alignment):
    """The modality-gap paper's lambda shift along the train gap vector, renormalised; optional Restrepo et al. L_reg."""

    name = "gap_shift"
    citation = CITATION
    parameters = (
        Param("lambda", float, 0.5, "fraction of the train modality gap to close, 0 (none) .. 1 "
              "(centroids meet); the modality-gap paper eq. 5; sweep 0.0..1.0", min=0.0, max=1.0),
        Param("image", str, "image", "the image modality (v in the modality-gap paper)"),
        Param("text", str, "text", "the text modality (t in the modality-gap paper)"),
        Param("reg_weight", float, 0.0, "weight of Restrepo et al.'s L_reg (eq. 14) on a fusion's branch "
              "outputs; 0: off. Needs a fusion with branches (late_joint)", min=0.0),
        Param("noise_sigma", float, 0.0, "Restrepo et al. step 1: std of Gaussian noise added to the "
              "train embeddings before the shift (0: off; the paper's value is 1.0)", min=0.0),
        Param("noise_seed", int, 0, "seed of that noise (per sample: seed, modality, sample id)"),
    )

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["image"] == self.params["text"]:
            raise UserError(f"gap_shift: image and text must name two different modalities, both "
                            f"are {self.params['image']!r}")

    def _pair(self, data: SplitData) -> tuple[str, str]:
        image, text = self.params["image"], self.params["text"]
        have = sorted(data.features)
        for role, m in (("image", image), ("text", text)):
            if m not in data.features:
                raise UserError(f"gap_shift: {role} modality {m!r} is not in this dataset (it has "
                                f"{', '.join(have)}); set image = \"...\" and text = \"...\" in the "
                                "[[alignments]] entry")
        di, dt = data.features[image].shape[1], data.features[text].shape[1]
        if di != dt:
            raise UserError(
                f"gap_shift: {image!r} embeddings have {di} dimensions and {text!r} embeddings {dt}; "
                "the gap vector Delta = mean(image) - mean(text) (the modality-gap paper eq. 1) needs both in one "
                "shared space of equal dimension. Encode both with one vision-language model "
                "(e.g. CLIP, whose image and text embeddings share a space), or use another alignment"
            )
        return image, text

    def _unit_and_noisy(self, data: SplitData, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The pair's present rows on the unit sphere (the modality-gap paper's v and t), plus Restrepo et al.'s
        noise on ``rows`` when noise_sigma > 0."""
        features = dict(data.features)
        for m in (self.params["image"], self.params["text"]):
            x, present = features[m].astype(np.float64, copy=True), data.present(m)
            x[present] = unit_rows(x[present])
            features[m] = x
        if self.params["noise_sigma"] > 0:
            noisy = data.with_features(features)
            features = add_noise(noisy, rows, [self.params["image"], self.params["text"]],
                                 self.params["noise_sigma"], self.params["noise_seed"])
        return features

    def fit(self, train: SplitData) -> None:
        image, text = self._pair(train)
        self.train_ids = np.asarray(train.ids).astype(str)
        features = self._unit_and_noisy(train, np.ones(len(train), dtype=bool))
        means = {}
        for m in (image, text):
            present = train.present(m)
            if not present.any():
                raise UserError(f"gap_shift: no training sample has the {m!r} modality, so its "
                                "centroid (the modality-gap paper eq. 1) is undefined; lower the missing rate")
            means[m] = features[m][present].astype(np.float64).mean(axis=0)
        #: The modality-gap paper eq. 1 / 6: the gap vector, from the train split only.
        self.delta = means[image] - means[text]

    def transform(self, data: SplitData) -> SplitData:
        image, text = self._pair(data)
        rows = np.isin(np.asarray(data.ids).astype(str), self.train_ids)  # noise: train rows only
        features = self._unit_and_noisy(data, rows)
        step = self.params["lambda"] / 2 * self.delta
        for m, sign in ((text, 1.0), (image, -1.0)):  # t + lambda/2 Delta, v - lambda/2 Delta
            x, present = features[m].astype(np.float64, copy=True), data.present(m)
            x[present] = unit_rows(x[present] + sign * step)
            features[m] = x.astype(np.float32)
        return data.with_features(features)

    def branch_loss(self) -> BranchGapLoss | None:
        weight = self.params["reg_weight"]
        return BranchGapLoss(weight, self.params["image"], self.params["text"]) if weight > 0 else None
