"""The ``hf_clip`` encoder on tiny CLIP, SigLIP and SigLIP 2 models saved like hub downloads
(tests/tiny_hf.py): the vectors are the model's own features, text is padded as each
family was trained, offline lookup and its advice, identity, the temperature, trainable
tower copies, and a suite run that a second run serves from the embedding cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmbench.errors import UserError
from mmbench_encoders.hf_clip import HfClip
from tiny_hf import IMAGE_SIZE, TEXT_POSITIONS, tiny_clip_folder, tiny_siglip2_folder, tiny_siglip_folder

TEXTS = ["a photo of a cat", "", None, float("nan"), "red lesion on the scalp, patient aged 40",
         "a dog", "smooth round pale lesion"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_hf")
    return {"clip": tiny_clip_folder(root / "clip"), "siglip": tiny_siglip_folder(root / "siglip"),
            "siglip2": tiny_siglip2_folder(root / "siglip2")}


def _images(n: int = 6, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return list(rng.integers(0, 256, (n, 40, 50, 3), dtype=np.uint8))  # not square: resize + crop matter


def _encoder(folder: Path, **params) -> HfClip:
    return HfClip(model=str(folder), **params)


def _reference(folder: Path):
    """The model, tokenizer and image processor loaded directly with transformers."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    return (AutoModel.from_pretrained(str(folder)).eval(), AutoTokenizer.from_pretrained(str(folder)),
            AutoImageProcessor.from_pretrained(str(folder)))


@pytest.mark.parametrize("family", ["clip", "siglip", "siglip2"])
def test_vectors_are_the_models_own_features_l2_normalised(folders, family):
    import torch

    images = _images() + [None]
    encoder = _encoder(folders[family])
    image_vectors, text_vectors = encoder.encode("image", images), encoder.encode("text", TEXTS)
    dim = 8 if family == "clip" else 16
    assert image_vectors.shape == (7, dim) and text_vectors.shape == (7, dim)
    assert image_vectors.dtype == np.float32 and text_vectors.dtype == np.float32
    assert not image_vectors[6].any() and not text_vectors[2:4].any()  # missing items: zero rows
    present = [0, 1, 4, 5, 6]  # the empty text is present: a real vector
    np.testing.assert_allclose(np.linalg.norm(image_vectors[:6], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text_vectors[present], axis=1), 1.0, atol=1e-5)

    model, tokenizer, processor = _reference(folders[family])
    texts = [TEXTS[i] for i in present]
    if family == "clip":  # padded to the longest, with the mask
        tokens = tokenizer(texts, padding=True, return_tensors="pt")
    else:  # padded to the model's 24 positions, no mask, as SigLIP (2) was trained
        tokens = {"input_ids": tokenizer(texts, padding="max_length", max_length=TEXT_POSITIONS,
                                         return_tensors="pt")["input_ids"]}
    with torch.inference_mode():
        expected_images = model.get_image_features(**processor(images=images[:6], return_tensors="pt"))
        expected_texts = model.get_text_features(**tokens)
    normalise = torch.nn.functional.normalize
    np.testing.assert_allclose(image_vectors[:6], normalise(expected_images.pooler_output).numpy(), atol=1e-5)
    np.testing.assert_allclose(text_vectors[present], normalise(expected_texts.pooler_output).numpy(), atol=1e-5)


def test_siglip_text_is_padded_to_its_length_without_a_mask(folders):
    """SigLIP pools the last position: unpadded or masked texts would give other vectors."""
    import torch

    vectors = _encoder(folders["siglip"], normalize=False).encode("text", ["a photo of a cat"])
    model, tokenizer, _ = _reference(folders["siglip"])
    with torch.inference_mode():
        unpadded = model.get_text_features(**tokenizer(["a photo of a cat"], return_tensors="pt")).pooler_output
    assert not np.allclose(vectors, unpadded.numpy(), atol=1e-3)


def test_batching_and_decode_threads_change_vectors_by_rounding_only(folders):
    images, texts = _images(9), [t for t in TEXTS if isinstance(t, str)] * 2
    for family in ("clip", "siglip", "siglip2"):
        reference = _encoder(folders[family], batch_size=32)
        one_by_one = _encoder(folders[family], batch_size=1, decode_workers=0)
        np.testing.assert_allclose(one_by_one.encode("image", images), reference.encode("image", images),
                                   atol=1e-5)
        np.testing.assert_allclose(one_by_one.encode("text", texts), reference.encode("text", texts), atol=1e-5)


def test_paths_pil_images_and_arrays_give_the_same_vectors(folders, tmp_path):
    from PIL import Image

    images = _images(3)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))  # lossless: the same pixels as the array
        Image.fromarray(image).save(paths[-1])
    encoder = _encoder(folders["clip"])
    from_arrays = encoder.encode("image", images)
    np.testing.assert_array_equal(encoder.encode("image", paths), from_arrays)
    np.testing.assert_array_equal(encoder.encode("image", [Image.fromarray(x) for x in images]), from_arrays)


def test_unnormalised_vectors_point_the_same_way_and_progress_is_reported(folders):
    normalised = _encoder(folders["clip"]).encode("text", TEXTS)
    encoder = _encoder(folders["clip"], normalize=False, batch_size=3)
    reported = []
    encoder.on_items = reported.append
    raw = encoder.encode("text", TEXTS)
    assert sum(reported) == len(TEXTS) and len(reported) == 3  # one report per batch, missing rows included
    norms = np.linalg.norm(raw, axis=1)
    assert np.all(np.abs(norms[[0, 1, 4]] - 1.0) > 1e-3)
    np.testing.assert_allclose(raw[[0, 1, 4]] / norms[[0, 1, 4], None], normalised[[0, 1, 4]], atol=1e-5)


def test_max_length_truncates_and_is_checked_against_the_models_positions(folders):
    long_text = " ".join(["lesion"] * 40)
    for family in ("clip", "siglip"):
        assert _encoder(folders[family]).max_length == TEXT_POSITIONS  # the model's, by default
        short = _encoder(folders[family], max_length=6).encode("text", [long_text, long_text + " red"])
        np.testing.assert_allclose(short[0], short[1], atol=1e-6)  # "red" is cut off
        full = _encoder(folders[family]).encode("text", [long_text])
        assert not np.allclose(short[0], full[0], atol=1e-3)
        with pytest.raises(UserError, match=f"at most {TEXT_POSITIONS}"):
            _encoder(folders[family], max_length=TEXT_POSITIONS + 1)


def test_bad_items_and_modalities_are_user_errors(folders):
    encoder = _encoder(folders["clip"])
    assert encoder.encode("text", []).shape == (0, 8) and encoder.encode("image", []).shape == (0, 8)
    with pytest.raises(UserError, match="item 1 is a int"):
        encoder.encode("text", ["fine", 3])
    with pytest.raises(UserError, match="not 'tabular'"):
        encoder.encode("tabular", [[1.0]])


def test_logit_scale_is_the_learned_temperature(folders):
    assert _encoder(folders["clip"]).logit_scale() == pytest.approx(np.exp(2.6592), rel=1e-5)  # CLIP's init
    assert _encoder(folders["siglip"]).logit_scale() == pytest.approx(10.0, rel=1e-5)
    assert HfClip.shared_space


def test_a_hub_id_is_found_in_the_local_cache_or_its_download_is_named(folders, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError) as info:
        HfClip(model="google/medsiglip-448")
    message = str(info.value)
    assert "hf download google/medsiglip-448" in message and str(tmp_path / "hub") in message

    repo = tmp_path / "hub" / "models--tiny--clip"  # the layout `hf download tiny/clip` leaves
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    shutil.copytree(folders["clip"], repo / "snapshots" / ("0" * 40))
    cached = HfClip(model="tiny/clip")
    assert cached.fingerprint() == _encoder(folders["clip"]).fingerprint()  # the same files, the same model
    np.testing.assert_array_equal(cached.encode("text", TEXTS), _encoder(folders["clip"]).encode("text", TEXTS))


def test_incomplete_folders_and_other_models_are_user_errors(folders, tmp_path):
    with pytest.raises(UserError, match="is not a folder"):
        HfClip(model=str(tmp_path / "nowhere"))
    partial = shutil.copytree(folders["clip"], tmp_path / "partial")
    (partial / "preprocessor_config.json").unlink()
    (partial / "model.safetensors").unlink()
    with pytest.raises(UserError, match=r"lacks preprocessor_config.json, weights .*hf download"):
        HfClip(model=str(partial))
    other = shutil.copytree(folders["clip"], tmp_path / "bert")
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UserError, match="holds a 'bert' model"):
        HfClip(model=str(other))


def test_fingerprint_follows_files_and_settings_not_folder_or_batching(folders, tmp_path):
    base = _encoder(folders["clip"]).fingerprint()
    assert _encoder(folders["clip"], batch_size=3, decode_workers=0).fingerprint() == base
    assert _encoder(folders["clip"], normalize=False).fingerprint() != base
    assert _encoder(folders["clip"], max_length=8).fingerprint() != base
    assert _encoder(folders["siglip"]).fingerprint() != base
    copy = shutil.copytree(folders["clip"], tmp_path / "copy")
    assert _encoder(copy).fingerprint() == base  # the path is not part of it
    tiny_clip_folder(copy, seed=1)  # other weights, the same config and tokenizer
    assert _encoder(copy).fingerprint() != base


@pytest.mark.parametrize("family", ["clip", "siglip"])
@pytest.mark.parametrize("modality", ["image", "text"])
def test_trainable_towers_are_copies_that_give_the_extracted_features_and_gradients(folders, family, modality):
    import torch

    encoder = _encoder(folders[family], normalize=False)
    items = _images(4) + [None] if modality == "image" else ["a photo of a cat", "red lesion", None]
    before = encoder.encode(modality, items)
    first, second = encoder.trainable(modality), encoder.trainable(modality)
    assert first.module is not second.module and first.dim == before.shape[1] == (8 if family == "clip" else 16)
    batch = first.prepare(items, None)
    first.module.eval()
    with torch.no_grad():
        np.testing.assert_allclose(first.module(batch).numpy()[:-1], before[:-1], atol=1e-5)  # present rows
    first.module.train()
    first.module(batch).pow(2).sum().backward()
    grads = [p.grad for p in first.module.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    with torch.no_grad():  # a training step on the copy changes neither extraction nor the other copy
        for p in first.module.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(encoder.encode(modality, items), before)
    second.module.eval()
    with torch.no_grad():
        np.testing.assert_allclose(second.module(second.prepare(items, None)).numpy()[:-1], before[:-1], atol=1e-5)


def test_trainable_image_prepare_applies_the_augmentation_before_the_processor(folders):
    from PIL import ImageOps

    trainable = _encoder(folders["siglip"]).trainable("image")
    images = _images(2)
    plain = trainable.prepare(images, None)["pixel_values"]
    flipped = trainable.prepare(images, ImageOps.mirror)["pixel_values"]
    assert plain.shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    np.testing.assert_allclose(flipped.numpy(), plain.flip(-1).numpy(), atol=1e-5)


def test_a_suite_encodes_image_and_text_with_one_model_and_reuses_the_cache(folders, tmp_path, monkeypatch):
    from mmbench.cli import main

    monkeypatch.chdir(tmp_path)
    model = str(folders["clip"])
    (tmp_path / "s.toml").write_text(f"""
[suite]
name = "hf_clip_raw"
seeds = [0]
threads = 1

[[datasets]]
name = "synthetic_raw"
n_samples = 60
image_size = 32

[[encoders]]
image = {{ name = "hf_clip", model = "{model}" }}
text = {{ name = "hf_clip", model = "{model}" }}
tabular = "tabular"

[[fusions]]
name = "early"
train = {{ epochs = 2 }}
""")
    results = []
    for _ in range(2):
        assert main(["run", "s.toml"]) == 0
        (path,) = (tmp_path / "results" / "hf_clip_raw").glob("*.json")
        results.append(json.loads(path.read_text()))
        path.unlink()  # the second run runs again instead of resuming
    first, second = results
    assert first["status"] == "ok", first["error"]
    assert first["data"]["dims"]["image"] == 8 and first["data"]["dims"]["text"] == 8
    assert not first["extraction"]["image"]["cached"] and not first["extraction"]["text"]["cached"]
    assert second["status"] == "ok", second["error"]
    assert second["extraction"]["image"]["cached"] and second["extraction"]["text"]["cached"]
    assert second["metrics"]["accuracy"] == first["metrics"]["accuracy"]
