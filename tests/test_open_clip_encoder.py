"""The open_clip encoder: one object for image and text in a shared space, weights from a
file, a local folder copy (how BiomedCLIP is used offline) or seeded random init, their
identity, the missing-weights advice, trainable towers, and a suite run served from the
embedding cache. A tiny ViT / text transformer registered as an open_clip model config
stands in for CLIP (nothing is downloaded)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from mmbench.errors import UserError
from mmbench_encoders.open_clip_encoder import OpenClip

TINY = "mmbench-tiny-clip"
TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TEXTS = ["a red lesion", "a pale round mole", None, "", "scaly and crusted"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    """The tiny architecture, registered with open_clip as a built-in model name."""
    import open_clip

    if TINY not in open_clip.list_models():
        path = tmp_path_factory.mktemp("open-clip-configs") / f"{TINY}.json"
        path.write_text(json.dumps(TINY_CFG))
        open_clip.add_model_config(path)
    return TINY


def _save_weights(model, path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """(in-memory model, its weights file): seed 1, logit scale set to 50."""
    import math

    import open_clip
    import torch

    torch.manual_seed(1)
    model = open_clip.create_model(tiny, pretrained=None).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(50.0))
    return model, _save_weights(model, tmp_path_factory.mktemp("open-clip-weights") / "tiny.safetensors")


def _images(n: int = 5, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return list(rng.integers(0, 256, (n, 40, 50, 3), dtype=np.uint8))  # not square: resize + crop matter


def _encoder(**params) -> OpenClip:
    return OpenClip(**{"model": TINY, "pretrained": "none", **params})


def _folder_copy(model, folder: Path) -> Path:
    """A local copy of a hub repository, as `hf download org/repo --local-dir folder` makes."""
    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}}))
    _save_weights(model, folder / "open_clip_model.safetensors")
    return folder


def test_one_object_encodes_images_and_texts_as_unit_rows_with_zero_rows_for_missing_items(tiny):
    encoder = _encoder()
    images = encoder.encode("image", _images(5) + [None])
    texts = encoder.encode("text", TEXTS)
    assert images.shape == (6, 16) and texts.shape == (5, 16)
    assert images.dtype == texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images[:5], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts[[0, 1, 3, 4]], axis=1), 1.0, atol=1e-5)
    assert not images[5].any() and not texts[2].any()
    raw = _encoder(normalize=False).encode("text", TEXTS)
    norms = np.linalg.norm(raw[[0, 1, 3, 4]], axis=1)
    assert np.all(np.abs(norms - 1.0) > 1e-3)
    np.testing.assert_allclose(raw[[0, 1, 3, 4]] / norms[:, None], texts[[0, 1, 3, 4]], atol=1e-5)
    assert OpenClip.shared_space and set(OpenClip.modalities) == {"image", "text"}


def test_a_weights_file_reproduces_the_in_memory_models_vectors_and_logit_scale(trained):
    import open_clip
    import torch

    model, path = trained
    encoder = _encoder(pretrained=str(path), batch_size=2)
    images, texts = _images(5), ["a red lesion", "a pale round mole"]
    transform = encoder.image_transform()
    from PIL import Image

    with torch.inference_mode():
        expected_images = model.encode_image(torch.stack([transform(Image.fromarray(x)) for x in images]),
                                             normalize=True).numpy()
        expected_texts = model.encode_text(open_clip.get_tokenizer(TINY)(texts), normalize=True).numpy()
    np.testing.assert_allclose(encoder.encode("image", images), expected_images, atol=1e-5)
    np.testing.assert_allclose(encoder.encode("text", texts), expected_texts, atol=1e-5)
    assert encoder.logit_scale() == pytest.approx(50.0, rel=1e-5)
    assert _encoder().logit_scale() == pytest.approx(1 / 0.07, rel=1e-5)  # CLIP's initial temperature
    assert not np.allclose(_encoder().encode("image", images), expected_images, atol=1e-3)


def test_a_local_folder_copy_gives_the_same_vectors_and_identity_wherever_it_is(trained, tmp_path):
    model, path = trained
    folder = _folder_copy(model, tmp_path / "copy")
    from_folder = OpenClip(model=f"local-dir:{folder}", pretrained="")
    from_file = _encoder(pretrained=str(path))
    images = _images(3)
    np.testing.assert_array_equal(from_folder.encode("image", images), from_file.encode("image", images))
    np.testing.assert_array_equal(from_folder.encode("text", TEXTS), from_file.encode("text", TEXTS))
    elsewhere = _folder_copy(model, tmp_path / "elsewhere")
    assert OpenClip(model=str(elsewhere), pretrained="").fingerprint() == from_folder.fingerprint()


def test_fingerprint_follows_weights_and_normalize_not_batching(trained, tmp_path):
    import torch

    model, path = trained
    base = _encoder().fingerprint()
    assert _encoder(batch_size=3, decode_workers=0).fingerprint() == base
    assert _encoder(normalize=False).fingerprint() != base
    with_file = _encoder(pretrained=str(path)).fingerprint()
    assert with_file != base
    other = tmp_path / "other.safetensors"
    with torch.no_grad():
        changed = type(model)(**TINY_CFG)
        changed.load_state_dict(model.state_dict())
        changed.logit_scale.add_(1.0)
    _save_weights(changed, other)
    assert _encoder(pretrained=str(other)).fingerprint() != with_file


def test_batch_size_and_decode_threads_change_vectors_by_rounding_only(tiny):
    images = _images(7)
    reference = _encoder(batch_size=32).encode("image", images)
    np.testing.assert_allclose(_encoder(batch_size=2, decode_workers=0).encode("image", images), reference,
                               atol=1e-5)
    np.testing.assert_allclose(_encoder(batch_size=2).encode("text", TEXTS), _encoder().encode("text", TEXTS),
                               atol=1e-5)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Empty Hugging Face and open_clip download caches in tmp_path (never the user's)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # open_clip's URL downloads: ~/.cache/clip


def test_missing_pretrained_weights_say_what_to_download_and_where(tmp_path, empty_caches):
    with pytest.raises(UserError) as info:
        OpenClip(model="ViT-B-32", pretrained="openai")
    message = str(info.value)
    assert "timm/vit_base_patch32_clip_224.openai" in message  # what to download
    assert str(tmp_path / "hf") in message  # where to put it
    assert str(tmp_path / "home" / ".cache" / "clip") in message  # or there (open_clip's URL cache)
    assert 'pretrained = "/path/to/file"' in message  # or name a file

    biomed = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    with pytest.raises(UserError) as info:
        OpenClip(model=f"hf-hub:{biomed}", pretrained="")
    assert f"hf download {biomed}" in str(info.value) and str(tmp_path / "hf") in str(info.value)


def test_unknown_models_tags_files_and_folders_are_user_errors_that_say_what_to_do(tiny, trained, tmp_path):
    with pytest.raises(UserError, match="'ViT-B-32'"):
        OpenClip(model="ViT-B-33", pretrained="openai")
    with pytest.raises(UserError, match="'openai'"):  # the tags there are
        OpenClip(model="ViT-B-32", pretrained="no_such_tag")
    with pytest.raises(UserError, match="'none'"):  # a built-in name needs a tag, file or 'none'
        OpenClip(model="ViT-B-32", pretrained="")
    with pytest.raises(UserError, match="does not exist"):
        OpenClip(model=f"local-dir:{tmp_path / 'nowhere'}", pretrained="")
    folder = tmp_path / "no-weights"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG}))
    with pytest.raises(UserError, match="no weights"):
        OpenClip(model=str(folder), pretrained="")
    assert OpenClip(model=str(folder), pretrained="none").encode("text", ["ok"]).shape == (1, 16)
    import torch

    wrong = _save_weights(torch.nn.Linear(3, 4), tmp_path / "wrong.safetensors")  # another architecture
    with pytest.raises(UserError, match="cannot load the weights"):
        _encoder(pretrained=str(wrong)).encode("image", _images(1))


def test_trainable_towers_learn_on_copies_that_leave_extraction_unchanged(tiny):
    import torch

    encoder = _encoder()
    images, texts = _images(4) + [None], ["a red lesion", None, "a pale mole"]
    before = {"image": encoder.encode("image", images), "text": encoder.encode("text", texts)}
    augmented = []
    for modality, items in (("image", images), ("text", texts)):
        tower = encoder.trainable(modality)
        assert tower.dim == 16
        batch = tower.prepare(items, lambda image: augmented.append(image.size) or image)
        out = tower.module(batch)
        assert out.shape == (len(items), 16)
        present = [i for i, item in enumerate(items) if item is not None]
        np.testing.assert_allclose(out.detach().numpy()[present], before[modality][present], atol=1e-5)
        optimiser = torch.optim.SGD(tower.module.parameters(), lr=1.0)
        tower.module.train()
        loss = (tower.module(batch) @ torch.ones(16)).sum()
        loss.backward()
        grads = [p.grad for p in tower.module.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)
        optimiser.step()
        assert not np.allclose(tower.module(batch).detach().numpy(), out.detach().numpy(), atol=1e-4)
        np.testing.assert_array_equal(encoder.encode(modality, items), before[modality])
    assert len(augmented) == len(images)  # every image, the blank one for None too; texts never
    text_tower = encoder.trainable("text").module
    assert not any(name.startswith(("net.visual", "net.logit")) for name, _ in text_tower.named_parameters())


IMAGE_TEXT_DATASET = '''
"""synthetic_raw without its tabular modality: image and text only."""
from mmbench import hookimpl
from mmbench_datasets.synthetic_raw import SyntheticRaw


class ImageText(SyntheticRaw):
    name = "synthetic_image_text"

    def raw_modalities(self):
        return ("image", "text")

    def load(self):
        table = super().load()
        table.modalities.pop("tabular")
        return table


@hookimpl
def mmbench_register_datasets():
    return [ImageText]
'''


def test_one_suite_entry_encodes_image_and_text_and_a_rerun_is_served_from_the_cache(
        tiny, tmp_path, monkeypatch):
    from mmbench.cli import main

    # synthetic_raw's images and captions without its metadata table (which would need a
    # third encoder in the same entry); see the module's report for the proposed parameter
    (tmp_path / "oc_image_text.py").write_text(IMAGE_TEXT_DATASET)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MMBENCH_PLUGINS", "mmbench,oc_image_text")
    monkeypatch.chdir(tmp_path)
    suite = textwrap.dedent(f"""
        [suite]
        name = "open_clip_raw"
        seeds = [0]
        threads = 1

        [[datasets]]
        name = "synthetic_image_text"
        n_samples = 40
        image_size = 32

        [[encoders]]
        name = "open_clip"
        model = "{tiny}"
        pretrained = "none"

        [[fusions]]
        name = "early"
        train = {{ epochs = 2 }}
        """)
    for name in ("first", "second"):  # the second suite name makes a new run of the same data
        (tmp_path / f"{name}.toml").write_text(suite.replace("open_clip_raw", name))
        assert main(["run", f"{name}.toml"]) == 0
    results = {name: json.loads(next((tmp_path / "results" / name).glob("*.json")).read_text())
               for name in ("first", "second")}
    first, second = results["first"], results["second"]
    assert first["status"] == "ok", first["error"]
    assert first["data"]["dims"] == {"image": 16, "text": 16}
    assert not first["extraction"]["image"]["cached"] and not first["extraction"]["text"]["cached"]
    assert second["status"] == "ok", second["error"]
    assert second["extraction"]["image"]["cached"] and second["extraction"]["text"]["cached"]


def _biomedclip_like_folder(folder: Path) -> Path:
    """A folder laid out like a copy of BiomedCLIP's hub repository, tiny: open_clip config
    with a Hugging Face BERT text tower and tokenizer, the BERT's config.json and the
    tokenizer files (the open_clip weights are added by the test)."""
    from transformers import BertConfig, BertTokenizer

    folder.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "lesion", "pale", "mole"]
    (folder / "vocab.txt").write_text("\n".join(words))
    BertTokenizer(vocab_file=str(folder / "vocab.txt")).save_pretrained(str(folder))
    BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=32, max_position_embeddings=32).save_pretrained(str(folder))
    bert = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    model_cfg = {"embed_dim": 16, "vision_cfg": TINY_CFG["vision_cfg"],
                 "text_cfg": {"hf_model_name": bert, "hf_tokenizer_name": bert, "hf_proj_type": "mlp",
                              "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 16}}
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": model_cfg, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}))
    return folder


def test_a_biomedclip_like_folder_with_an_hf_text_tower_works_offline(tmp_path, empty_caches):
    from safetensors.torch import save_file

    folder = _biomedclip_like_folder(tmp_path / "biomedclip")
    random_init = OpenClip(model=str(folder), pretrained="none")
    model, _ = random_init.load_model()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    texts = ["a red lesion", "pale mole", None]
    expected = random_init.encode("text", texts)
    encoder = OpenClip(model=f"local-dir:{folder}", pretrained="")
    np.testing.assert_array_equal(encoder.encode("text", texts), expected)
    assert encoder.encode("image", _images(2)).shape == (2, 16)
    tower = encoder.trainable("text")
    np.testing.assert_allclose(tower.module(tower.prepare(texts[:2], None)).detach().numpy(), expected[:2], atol=1e-5)

    (folder / "config.json").unlink()  # the BERT config is then looked up in the (empty) HF cache
    with pytest.raises(UserError) as info:
        OpenClip(model=str(folder), pretrained="")
    message = str(info.value)
    assert "hf download microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract config.json" in message
    assert str(folder) in message and str(tmp_path / "hf") in message
