"""The ``hf_vision`` encoder on tiny DINOv2 (with and without register tokens) and ViT
models built offline: every pooling against a direct computation, patch tokens, missing
images, missing-model advice, the fingerprint, the trainable copy, and suite runs (the
second served from the cache)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmbench_encoders.hf_vision import HfVision

from mmbench.data import Encoded
from mmbench.errors import UserError

TINY = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}


def _images(n: int = 5, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return list(rng.integers(0, 256, (n, 40, 50, 3), dtype=np.uint8))  # not square: resize + crop matter


def _save(folder: Path, kind: str, seed: int = 0) -> Path:
    import torch
    from transformers import (
        BitImageProcessor,
        Dinov2Config,
        Dinov2Model,
        Dinov2WithRegistersConfig,
        Dinov2WithRegistersModel,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
    )

    torch.manual_seed(seed)
    if kind == "vit":
        ViTModel(ViTConfig(**TINY, intermediate_size=37)).save_pretrained(folder)
        ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
        return folder
    if kind == "dinov2":
        Dinov2Model(Dinov2Config(**TINY, mlp_ratio=1)).save_pretrained(folder)
    else:
        Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**TINY, mlp_ratio=1, num_register_tokens=2)
                                 ).save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return {kind: _save(tmp_path_factory.mktemp(kind), kind) for kind in ("dinov2", "registers", "vit")}


def _encoder(folder: Path, **params) -> HfVision:
    return HfVision(**{"model": str(folder), **params})


def _direct(folder: Path, images: list):
    """The model's outputs for ``images``, computed with transformers alone."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModel

    processor = AutoImageProcessor.from_pretrained(str(folder), backend="pil")
    model = AutoModel.from_pretrained(str(folder)).eval()
    pixels = processor(images=[Image.fromarray(x) for x in images], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        return model(pixel_values=pixels)


@pytest.mark.parametrize("kind, prefix", [("dinov2", 1), ("registers", 3), ("vit", 1)])
def test_every_pooling_equals_a_direct_computation_on_the_model_outputs(models, kind, prefix):
    images = _images()
    outputs = _direct(models[kind], images)
    hidden = outputs.last_hidden_state.numpy()
    assert hidden.shape == (5, prefix + 16, 32)  # CLS (+ registers) then the 4 x 4 patch grid
    patch_mean = hidden[:, prefix:].mean(axis=1)  # patches only: CLS and registers excluded
    expected = {"cls": hidden[:, 0], "mean": patch_mean,
                "cls_mean": np.concatenate([hidden[:, 0], patch_mean], axis=1),
                "pooler": outputs.pooler_output.numpy()}
    for pooling, want in expected.items():
        got = _encoder(models[kind], pooling=pooling, batch_size=2).encode("image", images)
        assert got.shape == want.shape and got.dtype == np.float32, pooling
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=pooling)
    # DINOv2's pooler is its CLS token; ViT's is tanh(dense(CLS)), another vector
    assert np.allclose(expected["cls"], expected["pooler"], atol=1e-6) == (kind != "vit")


def test_patch_tokens_and_mask_with_missing_images_as_zero_rows(models):
    images = _images(4)
    items = [images[0], None, images[1], images[2], float("nan"), images[3]]
    out = _encoder(models["registers"], pooling="mean", tokens=True, batch_size=4).encode("image", items)
    assert isinstance(out, Encoded)
    assert out.vectors.shape == (6, 32) and out.tokens.values.shape == (6, 16, 32)
    present = np.array([True, False, True, True, False, True])
    np.testing.assert_array_equal(out.tokens.mask, np.repeat(present[:, None], 16, axis=1))
    assert not out.vectors[~present].any() and not out.tokens.values[~present].any()
    patches = _direct(models["registers"], images).last_hidden_state.numpy()[:, 3:]
    np.testing.assert_allclose(out.tokens.values[present], patches, atol=1e-5)
    np.testing.assert_allclose(out.vectors[present], patches.mean(axis=1), atol=1e-5)


def test_paths_and_batching_give_the_same_vectors_and_progress_counts_every_item(models, tmp_path):
    from PIL import Image

    images = _images(5)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    reference = _encoder(models["dinov2"], batch_size=4).encode("image", images)
    encoder = _encoder(models["dinov2"], batch_size=2, decode_workers=0)
    counts: list[int] = []
    encoder.on_items = counts.append
    np.testing.assert_allclose(encoder.encode("image", paths + [None]), np.vstack([reference, np.zeros((1, 32))]),
                               atol=1e-5)
    assert counts == [2, 2, 2]


def test_missing_models_and_files_say_what_to_download(models, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError) as info:
        HfVision(model="facebook/dinov2-absent")
    assert "hf download facebook/dinov2-absent" in str(info.value) and str(tmp_path / "hub") in str(info.value)
    folder = shutil.copytree(models["vit"], tmp_path / "no_processor")
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(UserError, match="lacks preprocessor_config.json"):
        _encoder(folder)


def test_fingerprint_follows_weights_pooling_and_tokens_not_batching_or_folder(models, tmp_path):
    base = _encoder(models["dinov2"]).fingerprint()
    assert _encoder(models["dinov2"], batch_size=1, decode_workers=0).fingerprint() == base
    for changed in ({"pooling": "mean"}, {"pooling": "cls_mean"}, {"tokens": True}):
        assert _encoder(models["dinov2"], **changed).fingerprint() != base, changed
    copy = shutil.copytree(models["dinov2"], tmp_path / "copy")
    assert _encoder(copy).fingerprint() == base  # the same files elsewhere: the same vectors
    _save(copy, "dinov2", seed=7)
    assert _encoder(copy).fingerprint() != base


def test_trainable_is_a_copy_that_pools_as_extraction_and_gets_gradients(models):
    import torch
    from PIL import ImageOps

    encoder = _encoder(models["vit"], pooling="cls_mean")
    images = _images(3)
    expected = encoder.encode("image", images)
    trainable = encoder.trainable("image")
    assert trainable.dim == 64
    pixels = trainable.prepare(images + [None], None)
    assert pixels.shape == (4, 3, 32, 32)  # a missing image is a blank one: rows stay aligned
    module = trainable.module.eval()
    out = module(pixels)
    np.testing.assert_allclose(out[:3].detach().numpy(), expected, atol=1e-5)
    flipped = trainable.prepare(images, ImageOps.mirror)  # augment applies before the processor
    np.testing.assert_allclose(flipped.numpy(), pixels[:3].flip(-1).numpy(), atol=1e-6)
    out.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(encoder.encode("image", images), expected)  # the cached model is untouched


def test_a_suite_with_hf_vision_runs_and_a_rerun_is_served_from_the_cache(models, tmp_path, monkeypatch):
    from mmbench.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(f"""
[suite]
name = "hf_vision_raw"
seeds = [0]
threads = 1

[[datasets]]
name = "synthetic_raw"
n_samples = 60

[[encoders]]
image = {{ name = "hf_vision", model = "{models['dinov2']}", pooling = "cls_mean" }}
text = "tfidf_svd"
tabular = "tabular"

[[fusions]]
name = "early"
train = {{ epochs = 3 }}
""")

    def result() -> dict:
        (path,) = (tmp_path / "results" / "hf_vision_raw").glob("*.json")
        return json.loads(path.read_text())

    assert main(["run", "s.toml"]) == 0
    first = result()
    assert first["status"] == "ok", first["error"]
    assert first["data"]["dims"]["image"] == 64 and first["extraction"]["image"]["cached"] is False
    assert main(["run", "s.toml", "--rerun"]) == 0
    second = result()
    assert second["status"] == "ok", second["error"]
    assert second["extraction"]["image"]["cached"] is True
    assert second["metrics"]["auroc"] == first["metrics"]["auroc"]
