"""Generated raw samples: small images, template captions and a metadata table.

The data the weight-free encoders (``color_histogram``, ``hog``, ``tfidf_svd``,
``tabular``) are tested and demonstrated on, with no download. Everything is determined
by ``seed``. Each sample has a class; each modality takes a *cue class* of its own,
equal to the class with probability ``1 - noise`` and drawn uniformly otherwise, so every
modality is informative but none is perfect, and their errors are independent (fusion
helps).

- ``image``: an ``image_size`` x ``image_size`` x 3 uint8 array (the modality is a stacked
  (n, S, S, 3) array). The cue class sets a base colour (hues evenly spaced on the colour
  wheel, jittered per sample) and sinusoidal stripes at a class angle (0..180 degrees,
  evenly spaced) with a random phase and period; Gaussian pixel noise of standard deviation
  ``10 + 60 * noise`` is added. Colour histograms and HOG both carry the class.
- ``tabular``: a DataFrame of the metadata the captions are built from: ``age`` (years,
  class-shifted normal), ``size_mm`` (class-scaled log-normal) and ``site`` (categorical, a
  class-dependent distribution over six body sites), each drawn from the tabular cue class.
  A fraction ``missing`` of the values is missing (NaN / None).
- ``text``: a caption from this template (missing metadata reads "unknown")::

      "{site} lesion, {size} mm, patient aged {age}. Appearance: {word1}, {word2} and {filler}."

  ``word1`` and ``word2`` are two different words of the text cue class's four descriptive words and
  ``filler`` from a shared list; the site, size and age are the tabular values. The class
  name (``class_0``...) or index never appears in a caption.
"""

from __future__ import annotations

import colorsys

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset

SITES = ("scalp", "face", "trunk", "arm", "leg", "hand")
#: four descriptive words per class, disjoint between classes (so at most 10 classes)
DESCRIPTORS = (
    "smooth", "round", "even", "pale",
    "rough", "jagged", "raised", "dark",
    "scaly", "flat", "crusted", "pink",
    "glossy", "domed", "firm", "tan",
    "blotchy", "irregular", "mottled", "brown",
    "waxy", "pearly", "translucent", "shiny",
    "ulcerated", "bleeding", "tender", "red",
    "speckled", "dotted", "grainy", "grey",
    "ringed", "targetoid", "halo", "bluish",
    "streaked", "branching", "lacy", "violet",
)
FILLERS = ("well defined", "poorly defined", "stable", "recent", "symmetric", "asymmetric", "noted", "observed")
MAX_CLASSES = len(DESCRIPTORS) // 4


class SyntheticRaw(Dataset):
    """Generated raw images, template captions and metadata rows with a controllable noise."""

    name = "synthetic_raw"
    modalities = ("image", "text", "tabular")
    task_kinds = ("binary", "multiclass")
    parameters = (
        Param("n_samples", int, 300, "number of samples", min=8),
        Param("task", str, "binary", "task kind", choices=("binary", "multiclass")),
        Param("n_classes", int, 2, f"classes; binary needs 2 (at most {MAX_CLASSES})", min=2, max=MAX_CLASSES),
        Param("image_size", int, 32, "image side in pixels", min=8, max=512),
        Param("noise", float, 0.3, "chance that a modality's cue is a random class; also scales "
              "pixel noise (0: clean, 1: no signal)", min=0.0, max=1.0),
        Param("missing", float, 0.05, "fraction of metadata values left missing", min=0.0, max=0.9),
        Param("seed", int, 0, "seed of the generated data (not the run seed)"),
    )

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["task"] == "binary" and self.params["n_classes"] != 2:
            raise UserError(f"synthetic_raw: a binary task has n_classes = 2, got {self.params['n_classes']}")

    def task_kind(self) -> str:
        return self.params["task"]

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text", "tabular")

    def load(self):
        from mmbench.data import DatasetTable

        p = self.params
        rng = np.random.default_rng(p["seed"])
        n, k = p["n_samples"], p["n_classes"]
        labels = rng.integers(0, k, n).astype(np.int64)
        cues = {m: np.where(rng.random(n) < p["noise"], rng.integers(0, k, n), labels)
                for m in ("image", "text", "tabular")}
        images = self._images(rng, cues["image"])
        table = self._metadata(rng, cues["tabular"])
        texts = self._captions(rng, cues["text"], table)
        return DatasetTable(ids=np.array([f"r{i:06d}" for i in range(n)]), labels=labels, task=p["task"],
                            classes=tuple(f"class_{i}" for i in range(k)),
                            modalities={"image": images, "text": texts, "tabular": table})

    def _images(self, rng: np.random.Generator, cue: np.ndarray) -> np.ndarray:
        p = self.params
        n, k, size = len(cue), p["n_classes"], p["image_size"]
        colours = np.array([colorsys.hsv_to_rgb(c / k, 0.7, 0.8) for c in range(k)]) * 255.0
        base = colours[cue] + rng.normal(0.0, 20.0, (n, 3))  # per-sample colour jitter
        angles = np.pi * cue / k + rng.normal(0.0, 0.1, n)
        periods = rng.uniform(size / 8, size / 4, n)
        phases = rng.uniform(0, 2 * np.pi, n)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
        along = (np.cos(angles)[:, None, None] * xx + np.sin(angles)[:, None, None] * yy)
        stripes = np.sin(2 * np.pi * along / periods[:, None, None] + phases[:, None, None])
        images = base[:, None, None, :] * (0.75 + 0.25 * stripes[..., None])
        images += rng.normal(0.0, 10.0 + 60.0 * p["noise"], images.shape)
        return np.clip(images + 0.5, 0, 255).astype(np.uint8)

    def _metadata(self, rng: np.random.Generator, cue: np.ndarray):
        import pandas as pd

        p = self.params
        n, k = len(cue), p["n_classes"]
        age = np.round(rng.normal(35.0 + 30.0 * cue / max(k - 1, 1), 10.0), 0).clip(1, 100)
        size_mm = np.round(np.exp(rng.normal(np.log(3.0 + 6.0 * cue / max(k - 1, 1)), 0.3)), 1)
        # class c prefers site c mod 6 (half the mass) over the others
        site_probs = np.full((k, len(SITES)), 0.5 / (len(SITES) - 1))
        site_probs[np.arange(k), np.arange(k) % len(SITES)] = 0.5
        site_index = (rng.random(n)[:, None] > np.cumsum(site_probs[cue], axis=1)).sum(axis=1)
        site = np.array(SITES, dtype=object)[np.minimum(site_index, len(SITES) - 1)]
        age[rng.random(n) < p["missing"]] = np.nan
        size_mm[rng.random(n) < p["missing"]] = np.nan
        site[rng.random(n) < p["missing"]] = None
        return pd.DataFrame({"age": age, "size_mm": size_mm, "site": pd.Series(site, dtype=object)})

    def _captions(self, rng: np.random.Generator, cue: np.ndarray, table) -> list[str]:
        first = rng.integers(0, 4, len(cue))
        words = np.stack([first, (first + rng.integers(1, 4, len(cue))) % 4], axis=1)  # two distinct words
        fillers = rng.integers(0, len(FILLERS), len(cue))
        captions = []
        for i, c in enumerate(cue):
            site, size, age = table["site"][i], table["size_mm"][i], table["age"][i]
            captions.append(
                f"{site if site is not None else 'unknown site'} lesion, "
                f"{'unknown' if np.isnan(size) else f'{size:.1f}'} mm, "
                f"patient aged {'unknown' if np.isnan(age) else int(age)}. "
                f"Appearance: {DESCRIPTORS[4 * c + words[i, 0]]}, {DESCRIPTORS[4 * c + words[i, 1]]} "
                f"and {FILLERS[fillers[i]]}."
            )
        return captions
