"""zero_shot: class prompts from a paired encoder, softmax of scaled cosines; the tiny
paired fixture encoder (tests/run_fixtures/tiny_paired.py) stands in for CLIP."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mmbench_datasets.synthetic_raw import SyntheticRaw
from mmbench_encoders.image import ColorHistogram
from mmbench_fusion.zero_shot import ZeroShot
from support import make, train_config

from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.fit_context import FitContext
from mmbench.metrics import quality


@pytest.fixture
def tiny(use_plugins):
    """The fixture plugin module (imported the way a run imports it)."""
    use_plugins("mmbench,tiny_paired")
    import tiny_paired

    return tiny_paired


def _split(encoder, n_classes: int = 3, noise: float = 0.0, n: int = 90) -> SplitData:
    """synthetic_raw images encoded by ``encoder``: class c has hue c / n_classes."""
    task = "binary" if n_classes == 2 else "multiclass"
    table = make(SyntheticRaw, n_samples=n, image_size=16, noise=noise, task=task, n_classes=n_classes).load()
    image = encoder.encode("image", table.modalities["image"])
    return SplitData(table.ids, {"image": image}, table.labels, task, table.classes)


def _fit(data: SplitData, encoder, **params) -> tuple[ZeroShot, object]:
    fusion = make(ZeroShot, **params)
    report = fusion.fit(data, data, train_config(), FitContext(encoders={"image": encoder, "text": encoder}))
    return fusion, report


def test_images_matching_their_class_prompts_are_classified(tiny):
    encoder = tiny.TinyPaired()
    data = _split(encoder)
    fusion, report = _fit(data, encoder, class_names=["red", "green", "blue"])
    proba = fusion.predict_proba(data)
    assert proba.shape == (90, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert quality(data.labels, proba, "multiclass")["accuracy"] > 0.95
    assert report.info["prompts"] == {"red": ["a photo of a red"], "green": ["a photo of a green"],
                                      "blue": ["a photo of a blue"]}
    assert report.info["logit_scale"] == 100.0 and report.info["encoder"] == "tiny_paired"


def test_binary_gives_the_positive_class_probability(tiny):
    encoder = tiny.TinyPaired()
    data = _split(encoder, n_classes=2)
    fusion, _ = _fit(data, encoder, class_names=["red", "cyan"])
    proba = fusion.predict_proba(data)
    assert proba.shape == (90,)
    assert quality(data.labels, proba, "binary")["accuracy"] > 0.95


def test_prompt_ensembling_averages_normalised_prompt_vectors(tiny):
    encoder = tiny.TinyPaired()
    data = _split(encoder, n_classes=2)
    templates = ["a photo of a {class}", "{class} colour", "something {class} here"]
    fusion, report = _fit(data, encoder, class_names=["red", "cyan"], templates=templates)
    assert report.info["prompts"]["cyan"] == ["a photo of a cyan", "cyan colour", "something cyan here"]
    red = encoder.encode("text", report.info["prompts"]["red"])
    red = (red / np.linalg.norm(red, axis=1, keepdims=True)).mean(axis=0)
    np.testing.assert_allclose(fusion.class_vectors[0], red / np.linalg.norm(red), rtol=1e-5)


def test_dataset_class_names_are_the_default_prompts(tiny):
    encoder = tiny.TinyPaired()
    _, report = _fit(_split(encoder, n_classes=2), encoder)
    assert report.info["prompts"] == {"class_0": ["a photo of a class_0"], "class_1": ["a photo of a class_1"]}


def test_a_missing_image_scores_every_class_alike(tiny):
    encoder = tiny.TinyPaired()
    data = _split(encoder)
    fusion, _ = _fit(data, encoder, class_names=["red", "green", "blue"])
    data.features["image"][0] = 0.0
    np.testing.assert_allclose(fusion.predict_proba(data)[0], 1 / 3)


def test_an_encoder_without_a_shared_text_space_is_refused_with_advice(tiny):
    encoder = make(ColorHistogram)
    data = _split(encoder, n_classes=2)
    with pytest.raises(UserError, match="'color_histogram'.*paired image\\+text model.*tiny_paired"):
        _fit(data, encoder)


def test_bad_settings_say_what_to_change(tiny):
    encoder = tiny.TinyPaired()
    data = _split(encoder)
    with pytest.raises(UserError, match="3 classes"):
        _fit(data, encoder, class_names=["red", "green"])
    with pytest.raises(UserError, match="modality 'text' is not in this dataset"):
        _fit(data, encoder, modality="text")
    with pytest.raises(UserError, match="contain '\\{class\\}'"):
        make(ZeroShot, templates=["a photo"])


def test_suite_run_records_prompts_and_scale(tiny, write_suite, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = write_suite("""
        [suite]
        name = "zs"
        [[datasets]]
        name = "synthetic_raw"
        n_samples = 120
        image_size = 16
        noise = 0.0
        [[encoders]]
        image = "tiny_paired"
        text = "tiny_paired"
        tabular = "tabular"
        [[fusions]]
        name = "zero_shot"
        class_names = ["red", "cyan"]
        templates = ["a photo of a {class}", "a {class} thing"]
    """)
    assert run_cli("run", suite).code == 0
    (path,) = (tmp_path / "results" / "zs").glob("*.json")
    result = json.loads(path.read_text())
    assert result["status"] == "ok"
    assert result["metrics"]["accuracy"] > 0.95
    assert result["fit_info"]["prompts"]["red"] == ["a photo of a red", "a red thing"]
    assert result["fit_info"]["logit_scale"] == 100.0
