"""finetune: backbones trained end to end with a head, on raw items. The tiny paired
fixture encoder (tests/run_fixtures/tiny_paired.py) and a tiny timm test model keep
every run to a fraction of a second; nothing is downloaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mmbench_datasets.synthetic_raw import SyntheticRaw
from mmbench_encoders.tabular import Tabular
from mmbench_encoders.timm_image import TimmImage
from mmbench_fusion.finetune import FineTune
from mmbench_fusion.finetune_modules import augmentation
from support import make, train_config

from mmbench.data import SplitData
from mmbench.errors import UserError
from mmbench.fit_context import FitContext
from mmbench.metrics import quality
from mmbench.splits import split_indices

TIMM = {"model": "test_efficientnet", "weights": "none", "image_size": 32}


@pytest.fixture
def tiny(use_plugins):
    """The fixture plugin module (imported the way a run imports it), its spy emptied."""
    use_plugins("mmbench,tiny_paired")
    import tiny_paired

    tiny_paired.PREPARE_CALLS.clear()
    return tiny_paired


def _splits(noise: float = 0.1, n: int = 120, **dataset) -> dict[str, SplitData]:
    """synthetic_raw split as the runner hands it to a raw-input fusion."""
    table = make(SyntheticRaw, n_samples=n, image_size=16, noise=noise, **dataset).load()
    out = {}
    for name, rows in split_indices(table, 0.2, 0.2, 0).items():
        part = table.subset(rows)
        out[name] = SplitData(part.ids, {}, part.labels, part.task, part.classes, raw=dict(part.modalities))
    return out


def _fit(splits, encoders, **params):
    train_params = {"epochs": 3, "batch_size": 32, **params.pop("train", {})}
    fusion = make(FineTune, **params)
    report = fusion.fit(splits["train"], splits["val"], train_config(**train_params), FitContext(encoders=encoders))
    return fusion, report


def _result(tmp_path, suite: str) -> dict:
    (path,) = (tmp_path / "results" / suite).glob("*.json")
    return json.loads(path.read_text())


SUITE = """
    [suite]
    name = "ft"
    [train]
    epochs = 3
    batch_size = 32
    [[datasets]]
    name = "synthetic_raw"
    n_samples = 160
    image_size = 16
    noise = 0.1
    [[encoders]]
    {encoders}
    [[fusions]]
    name = "finetune"
    {fusion}
"""


@pytest.mark.parametrize("head", ["early", "late_joint"])
def test_suite_run_trains_both_towers_and_reports_the_protocol(tiny, head, write_suite, run_cli, tmp_path,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    encoders = 'image = "tiny_paired"\ntext = "tiny_paired"\ntabular = "tabular"'
    suite = write_suite(SUITE.format(encoders=encoders, fusion=f'head = "{head}"\nbackbone_lr = 0.01'))
    assert run_cli("run", suite).code == 0
    result = _result(tmp_path, "ft")
    assert result["status"] == "ok", result["error"]
    m = result["metrics"]
    assert m["auroc"] > 0.8 and m["accuracy"] > 0.7  # chance: 0.5
    assert m["epochs_run"] == 3 and 1 <= m["best_epoch"] <= 3
    assert m["train_s_per_epoch"] > 0 and m["model_mb"] > 0 and m["data_mb_per_epoch"] > 0
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_accuracy", "val_auroc", "train_s"} <= set(result["history"][0])
    info = result["fit_info"]
    assert info["trained"] == {"image": "tiny_paired", "text": "tiny_paired"}
    assert info["frozen"] == {"tabular": "tabular"} and info["head"] == head


def test_an_encoder_without_a_backbone_fails_the_run_naming_it(tiny, write_suite, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    encoders = (f'image = {{ name = "timm", model = "{TIMM["model"]}", weights = "none", image_size = 32 }}\n'
                'text = "tfidf_svd"\ntabular = "tabular"')
    suite = write_suite(SUITE.format(encoders=encoders, fusion=""))
    assert run_cli("run", suite).code == 1
    error = _result(tmp_path, "ft")["error"]
    assert "encoder 'tfidf_svd' has no trainable backbone for 'text'" in error["message"]
    assert "frozen" in error["message"] and error["traceback"] is None  # a user error, with the way out


def test_timm_backbone_trains_and_the_cached_extraction_model_is_unchanged(tiny, write_suite, run_cli, tmp_path,
                                                                           monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    encoders = (f'image = {{ name = "timm", model = "{TIMM["model"]}", weights = "none", image_size = 32 }}\n'
                'text = "tfidf_svd"\ntabular = "tabular"')
    fusion = 'frozen = ["tabular", "text"]\nbackbone_lr = 0.01'
    suite = write_suite(SUITE.format(encoders=encoders, fusion=fusion))
    assert run_cli("run", suite).code == 0
    result = _result(tmp_path, "ft")
    assert result["status"] == "ok", result["error"]
    assert result["fit_info"]["trained"] == {"image": "timm"}
    assert result["fit_info"]["frozen"] == {"tabular": "tabular", "text": "tfidf_svd"}
    assert result["metrics"]["auroc"] > 0.7 and len(result["history"]) == 3

    encoder = make(TimmImage, **TIMM)
    cached = encoder.load_model()
    assert encoder.load_model() is cached  # the process's shared model, which the run used
    fresh = encoder._create().state_dict()
    assert all(torch.equal(value, fresh[key]) for key, value in cached.state_dict().items())


def test_timm_trainable_is_a_train_mode_copy_that_reproduces_extraction():
    import torch

    encoder = make(TimmImage, **TIMM)
    images = list(np.random.default_rng(0).integers(0, 256, (5, 40, 50, 3), dtype=np.uint8)) + [None]
    trainable = encoder.trainable("image")
    assert trainable.module.training and trainable.dim == 256
    assert trainable.module is not encoder.load_model()
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(trainable.module.parameters(),
                                                             encoder.load_model().parameters()))
    batch = trainable.prepare(images, None)
    assert batch.shape == (6, 3, 32, 32)  # a missing image still gives a (blank) row
    with torch.no_grad():
        vectors = trainable.module.eval()(batch).numpy()
    np.testing.assert_allclose(vectors[:5], encoder.encode("image", images)[:5], rtol=1e-4, atol=1e-5)
    flipped = trainable.prepare(images[:1], lambda image: image.transpose(0))  # augment before the crop
    assert not torch.equal(flipped, batch[:1])
    with pytest.raises(NotImplementedError, match="'timm' has no trainable backbone for 'text'"):
        encoder.trainable("text")


def test_augmentation_touches_train_batches_only(tiny):
    splits = _splits()
    encoder = tiny.TinyPaired()
    fusion, _ = _fit(splits, {"image": encoder, "text": encoder, "tabular": make(Tabular)}, augment=True,
                     train={"epochs": 2})
    fusion.predict_proba(splits["test"])
    images = [(n, augmented) for modality, n, augmented in tiny.PREPARE_CALLS if modality == "image"]
    assert sum(n for n, augmented in images if augmented) == 2 * len(splits["train"])
    assert sum(n for n, augmented in images if not augmented) == 2 * len(splits["val"]) + len(splits["test"])


def test_augmentation_maps_a_pil_image_to_a_changed_one_of_the_same_size():
    import torch
    from PIL import Image

    torch.manual_seed(0)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8))
    out = augmentation(15.0, 0.2)(image)
    assert out.size == image.size and out.mode == "RGB"
    assert not np.array_equal(np.asarray(out), np.asarray(image))


def test_best_validation_epoch_weights_predict(tiny):
    splits = _splits(noise=0.3)
    encoder = tiny.TinyPaired()
    # a head lr far too large: validation gets worse after the first epochs
    fusion, report = _fit(splits, {"image": encoder, "text": encoder, "tabular": make(Tabular)},
                          backbone_lr=0.5, max_grad_norm=0.0, train={"epochs": 5, "lr": 1.0, "monitor": "accuracy"})
    accuracies = [h["val_accuracy"] for h in report.history]
    assert report.best_epoch == 1 + int(np.argmax(accuracies)) and report.best_epoch < 5
    val = splits["val"]
    assert quality(val.labels, fusion.predict_proba(val), val.task)["accuracy"] == accuracies[report.best_epoch - 1]


def test_a_missing_item_zeroes_its_modality(tiny):
    splits = _splits()
    encoder = tiny.TinyPaired()
    fusion, _ = _fit(splits, {"image": encoder, "text": encoder, "tabular": make(Tabular)}, backbone_lr=0.01)
    test = splits["test"]
    masked = SplitData(test.ids, {}, test.labels, test.task, test.classes, raw=dict(test.raw),
                       masks={"text": np.arange(len(test)) % 2 == 1})  # even rows missing
    other_texts = dict(masked.raw, text=["red cyan green words"] * len(test))
    swapped = SplitData(test.ids, {}, test.labels, test.task, test.classes, raw=other_texts, masks=masked.masks)
    none_texts = SplitData(test.ids, {}, test.labels, test.task, test.classes,
                           raw=dict(test.raw, text=[t if i % 2 else None for i, t in enumerate(test.raw["text"])]))
    a, b, c = (fusion.predict_proba(d) for d in (masked, swapped, none_texts))
    np.testing.assert_allclose(a[::2], b[::2], rtol=1e-6)  # masked rows ignore their text
    assert not np.allclose(a[1::2], b[1::2])  # present rows read it
    np.testing.assert_allclose(c, a, rtol=1e-6)  # None items are missing too


def test_the_encoders_models_are_never_changed(tiny):
    import torch

    encoder = tiny.TinyPaired()
    towers = encoder._towers()
    before = {m: {k: v.clone() for k, v in t.state_dict().items()} for m, t in towers.items()}
    _fit(_splits(), {"image": encoder, "text": encoder, "tabular": make(Tabular)}, backbone_lr=0.1)
    for modality, tower in encoder._towers().items():
        assert all(torch.equal(v, before[modality][k]) for k, v in tower.state_dict().items())


def test_nothing_to_train_is_a_user_error(tiny):
    encoder = tiny.TinyPaired()
    with pytest.raises(UserError, match="no modality to fine-tune"):
        _fit(_splits(), {"image": encoder, "text": encoder, "tabular": make(Tabular)},
             frozen=["image", "text", "tabular"])
