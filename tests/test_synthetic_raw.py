"""synthetic_raw: deterministic raw images, captions and metadata, each carrying the class."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from mmbench_datasets.synthetic_raw import SyntheticRaw
from mmbench_encoders.image import ColorHistogram, Hog
from mmbench_encoders.tabular import Tabular
from mmbench_encoders.text import TfidfSvd
from sklearn.linear_model import LogisticRegression
from support import make

from mmbench.errors import UserError


def test_modalities_and_determinism():
    table = make(SyntheticRaw, n_samples=50, image_size=16, seed=3).load()
    again = make(SyntheticRaw, n_samples=50, image_size=16, seed=3).load()
    other = make(SyntheticRaw, n_samples=50, image_size=16, seed=4).load()
    images, texts, rows = (table.modalities[m] for m in ("image", "text", "tabular"))
    assert images.shape == (50, 16, 16, 3) and images.dtype == np.uint8
    assert len(texts) == 50 and all(isinstance(t, str) for t in texts)
    assert isinstance(rows, pd.DataFrame) and list(rows.columns) == ["age", "size_mm", "site"]
    assert np.array_equal(images, again.modalities["image"]) and texts == again.modalities["text"]
    assert rows.equals(again.modalities["tabular"]) and np.array_equal(table.labels, again.labels)
    assert not np.array_equal(images, other.modalities["image"])
    assert table.task == "binary" and table.classes == ("class_0", "class_1")


def test_captions_never_name_the_class():
    table = make(SyntheticRaw, n_samples=200, task="multiclass", n_classes=10).load()
    for text in table.modalities["text"]:
        assert "class" not in text.lower()
        assert not re.search(r"\blabel\b", text.lower())
    assert any("unknown" in t for t in table.modalities["text"])  # missing metadata in the template


def test_binary_needs_two_classes():
    with pytest.raises(UserError, match="n_classes = 2"):
        make(SyntheticRaw, task="binary", n_classes=3)


@pytest.mark.parametrize("modality,cls,params", [
    ("image", ColorHistogram, {}), ("image", Hog, {"size": 32}),
    ("text", TfidfSvd, {}), ("tabular", Tabular, {}),
])
def test_each_modality_carries_the_class(modality, cls, params):
    table = make(SyntheticRaw, n_samples=300, task="multiclass", n_classes=4).load()
    train, test = table.subset(np.arange(200)), table.subset(np.arange(200, 300))
    encoder = make(cls, **params)
    encoder.fit(modality, train.modalities[modality])
    x_train = encoder.encode(modality, train.modalities[modality])
    x_test = encoder.encode(modality, test.modalities[modality])
    accuracy = LogisticRegression(max_iter=2000).fit(x_train, train.labels).score(x_test, test.labels)
    assert accuracy > 0.45  # chance is 0.25


def test_a_suite_with_raw_data_and_the_builtin_encoders_runs(tmp_path, monkeypatch):
    from mmbench.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw.toml").write_text("""
[suite]
name = "raw"
seeds = [0]
threads = 1

[[datasets]]
name = "synthetic_raw"
n_samples = 120
image_size = 16

[[encoders]]
image = "color_histogram"
text = "tfidf_svd"
tabular = "tabular"

[[encoders]]
image = { name = "hog", size = 16 }
text = "tfidf_svd"
tabular = "tabular"

[[fusions]]
name = "early"
train = { epochs = 5 }
""")
    assert main(["run", "raw.toml"]) == 0
    results = [json.loads(p.read_text()) for p in sorted((tmp_path / "results" / "raw").glob("*.json"))]
    assert len(results) == 2
    assert all(r["status"] == "ok" for r in results)
    dims = sorted(r["data"]["dims"]["image"] for r in results)
    assert dims == [36, 48]  # hog: one block of 2 x 2 cells x 9 bins; color_histogram: 3 x 16 bins
