"""The timm image encoder: shapes, item forms, batching, weights files and their
identity, the missing-weights advice, and a suite run. Random-init or locally saved
weights only (nothing is downloaded); small models at 64 x 64 to stay fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mmbench.errors import UserError
from mmbench.testing import run_in_suite
from mmbench_encoders.timm_image import TimmImage


def _images(n: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 70, 90, 3), dtype=np.uint8)  # not square: resize + crop matter


def _encoder(**params) -> TimmImage:
    return TimmImage(**{"model": "resnet18", "weights": "none", "image_size": 64, **params})


def _save_random_weights(path: Path, seed: int) -> Path:
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model("resnet18", pretrained=False)  # with its classifier: dropped on load
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save(model.state_dict(), path)
    return path


def test_output_is_n_by_num_features_float32_and_missing_items_are_zero():
    images = list(_images(5)) + [None]
    vectors = _encoder().encode("image", images)
    assert vectors.shape == (6, 512) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    assert vectors[:5].any(axis=1).all()
    assert not vectors[5].any()


def test_paths_pil_images_and_arrays_give_the_same_vectors(tmp_path):
    from PIL import Image

    images = _images(6)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")  # lossless: the same pixels as the array
        Image.fromarray(image).save(paths[-1])
    encoder = _encoder()
    from_arrays = encoder.encode("image", images)
    np.testing.assert_array_equal(encoder.encode("image", [str(p) for p in paths]), from_arrays)
    np.testing.assert_array_equal(encoder.encode("image", [Image.fromarray(x) for x in images]), from_arrays)


def test_batch_size_and_decode_workers_change_vectors_by_rounding_only():
    images = _images(33)
    reference = _encoder(batch_size=32).encode("image", images)
    one_by_one = _encoder(batch_size=1, decode_workers=0).encode("image", images)
    np.testing.assert_allclose(one_by_one, reference, rtol=1e-4, atol=1e-5)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Empty Hugging Face and torch hub caches in tmp_path (never the user's)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_missing_pretrained_weights_say_what_to_download_and_where(tmp_path, empty_caches):
    with pytest.raises(UserError) as info:
        TimmImage(model="resnet18", image_size=64)
    message = str(info.value)
    assert "'resnet18'" in message
    assert "timm/resnet18.a1_in1k" in message  # what to download
    assert str(tmp_path / "hf") in message  # where to put it
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message  # where to put it
    assert "weights =" in message  # or name a file


def test_cached_pretrained_weights_are_used_and_identified(tmp_path, empty_caches):
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18_a1_0-d63eafa0.pth"
    cached.parent.mkdir(parents=True)
    _save_random_weights(cached, seed=1)
    from_cache = TimmImage(model="resnet18", image_size=64)
    from_file = _encoder(weights=str(cached))
    images = _images(4)
    np.testing.assert_array_equal(from_cache.encode("image", images), from_file.encode("image", images))
    assert from_cache.fingerprint() != _encoder().fingerprint()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_saved_weights_file_reproduces_its_models_vectors(tmp_path, suffix):
    import timm
    import torch

    path = _save_random_weights(tmp_path / f"w{suffix}", seed=3)
    torch.manual_seed(3)
    model = timm.create_model("resnet18", pretrained=False).eval()  # the same init
    model.reset_classifier(0)  # pooled features, as the encoder computes
    encoder = _encoder(weights=str(path))
    images = _images(5)
    with torch.inference_mode():
        expected = model(encoder.to_tensor([encoder.image_transform()(x) for x in images])).numpy()
    np.testing.assert_allclose(encoder.encode("image", images), expected, rtol=1e-5, atol=1e-6)
    # and the weights differ from the random init of "none"
    assert not np.allclose(_encoder().encode("image", images), expected, atol=1e-3)


def test_a_weights_file_for_another_architecture_is_a_user_error(tmp_path):
    path = _save_random_weights(tmp_path / "r18.pt", seed=0)
    with pytest.raises(UserError, match="resnet34"):
        _encoder(model="resnet34", weights=str(path)).encode("image", _images(1))
    with pytest.raises(UserError, match="does not exist"):
        _encoder(weights=str(tmp_path / "nowhere.pt"))


def test_fingerprint_follows_model_size_weights_content_and_pooling_not_batching(tmp_path):
    base = _encoder().fingerprint()
    assert _encoder(batch_size=7, decode_workers=0).fingerprint() == base
    assert _encoder(model="resnet34").fingerprint() != base
    assert _encoder(image_size=96).fingerprint() != base
    assert _encoder(pooling="max").fingerprint() != base
    path = _save_random_weights(tmp_path / "w.pt", seed=0)
    with_file = _encoder(weights=str(path)).fingerprint()
    assert with_file != base
    copy = tmp_path / "elsewhere.pt"
    copy.write_bytes(path.read_bytes())
    assert _encoder(weights=str(copy)).fingerprint() == with_file  # content, not the path
    _save_random_weights(path, seed=1)
    assert _encoder(weights=str(path)).fingerprint() != with_file


def test_unknown_model_is_a_user_error_with_a_suggestion():
    with pytest.raises(UserError, match="resnet18"):
        _encoder(model="resnet_18")


def test_a_suite_with_the_timm_encoder_runs_end_to_end(tmp_path):
    image = {"name": "timm", "model": "resnet18", "weights": "none", "image_size": 64}
    result = run_in_suite(tmp_path, {"image": image, "text": "tfidf_svd", "tabular": "tabular"})
    assert result["data"]["dims"]["image"] == 512


def test_random_init_is_seeded_and_bad_tags_or_pooling_are_user_errors():
    from mmbench_encoders import timm_image

    images = _images(2)
    first = _encoder().encode("image", images)
    timm_image._MODELS.clear()  # a fresh model, as in another process
    np.testing.assert_array_equal(_encoder().encode("image", images), first)
    with pytest.raises(UserError, match="list_pretrained"):
        _encoder(model="resnet18.no_such_tag")
    with pytest.raises(UserError, match="pooling"):
        _encoder(pooling="no_such_pool").encode("image", images)


def test_decoding_threads_only_use_cores_torch_leaves_free(monkeypatch):
    import os

    from mmbench_encoders.batching import decode_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert decode_threads(2, torch_threads=1) == 1
    assert decode_threads(2, torch_threads=2) == 0
    assert decode_threads(0, torch_threads=1) == 0
