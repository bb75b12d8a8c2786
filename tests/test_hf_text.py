"""The ``hf_text`` encoder on tiny BERT and RoBERTa models built offline: pooling against
a direct computation, token states, the position limit, missing-model advice, the
fingerprint, the trainable copy, and suite runs (the second served from the cache)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmbench_datasets.synthetic_raw import DESCRIPTORS, FILLERS, SITES
from mmbench_encoders.hf_text import HfText

from mmbench.data import Encoded
from mmbench.errors import UserError

WORDS = sorted({*SITES, *DESCRIPTORS, *" ".join(FILLERS).split(),
                "lesion", "mm", "patient", "aged", "appearance", "unknown", "and", "a", "man", "the", "is"})
TEXTS = ["the man", "a rough jagged lesion on the arm and the leg", "pale", None, "scalp lesion, 12 mm"]


def _save_bert(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *chars, *(f"##{c}" for c in chars), ".", ",", ":"]
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder)
    return folder


def _save_roberta(folder: Path) -> Path:
    import torch
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for symbol in ["Ġ", *"abcdefghijklmnopqrstuvwxyz0123456789.,:", *(f"Ġ{c}" for c in "abcdefghijklmnopqrstuvwxyz")]:
        vocab.setdefault(symbol, len(vocab))
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    torch.manual_seed(1)
    config = RobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=37, max_position_embeddings=34, pad_token_id=1)
    RobertaModel(config).save_pretrained(folder)
    RobertaTokenizer(vocab=vocab, merges=merges).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return _save_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def roberta(tmp_path_factory) -> Path:
    return _save_roberta(tmp_path_factory.mktemp("roberta"))


def _encoder(folder: Path, **params) -> HfText:
    return HfText(**{"model": str(folder), "max_length": 32, **params})


def _states(folder: Path, text: str):
    """The last hidden states of one text alone (no padding): (t, d)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    with torch.inference_mode():
        batch = tokenizer([text], truncation=True, max_length=32, return_tensors="pt")  # as _encoder
        return model(**batch).last_hidden_state[0].numpy()


@pytest.mark.parametrize("which", ["bert", "roberta"])
def test_cls_and_mean_pooling_equal_a_direct_computation_on_last_hidden_state(which, request):
    folder = request.getfixturevalue(which)
    states = [_states(folder, text or "") for text in TEXTS]  # a missing text is an empty one
    cls = _encoder(folder, pooling="cls", batch_size=2).encode("text", TEXTS)
    mean = _encoder(folder, pooling="mean", batch_size=2).encode("text", TEXTS)
    assert cls.shape == mean.shape == (len(TEXTS), 32) and cls.dtype == np.float32
    np.testing.assert_allclose(cls, [s[0] for s in states], atol=1e-5)  # padding in batches changes nothing
    np.testing.assert_allclose(mean, [s.mean(axis=0) for s in states], atol=1e-5)


def test_tokens_are_the_hidden_states_under_the_attention_mask(bert):
    out = _encoder(bert, pooling="mean", tokens=True).encode("text", TEXTS)
    assert isinstance(out, Encoded)
    states = [_states(bert, text or "") for text in TEXTS]
    lengths = [len(s) for s in states]
    assert out.tokens.values.shape == (len(TEXTS), max(lengths), 32)
    assert out.tokens.mask.sum(axis=1).tolist() == lengths
    for row, state in enumerate(states):
        np.testing.assert_allclose(out.tokens.values[row, :len(state)], state, atol=1e-5)
    assert not out.tokens.values[~out.tokens.mask].any()
    # the pooled vectors do not depend on asking for tokens
    np.testing.assert_allclose(out.vectors, _encoder(bert, pooling="mean").encode("text", TEXTS), atol=1e-6)


def test_normalize_gives_unit_vectors_pointing_the_same_way(bert):
    raw = _encoder(bert).encode("text", TEXTS)
    unit = _encoder(bert, normalize=True).encode("text", TEXTS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)


def test_max_length_truncates_and_must_fit_the_position_table(bert, roberta):
    out = _encoder(bert, tokens=True, max_length=6).encode("text", ["a rough jagged lesion on the arm", "pale"])
    assert out.tokens.mask.sum(axis=1).tolist() == [6, 3]
    with pytest.raises(UserError, match="max_length 65 exceeds the 64 positions.*at most 64"):
        _encoder(bert, max_length=65)
    # RoBERTa's positions start after the padding index: 34 - 2 usable
    with pytest.raises(UserError, match="at most 32"):
        _encoder(roberta, max_length=33)
    long = " ".join(["the"] * 40)
    assert _encoder(roberta, max_length=32, tokens=True).encode("text", [long]).tokens.mask.sum() == 32


def test_a_model_absent_from_the_cache_names_the_download_command(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError) as info:
        HfText(model="someone/absent-bert")
    message = str(info.value)
    assert "hf download someone/absent-bert" in message and str(tmp_path / "hub") in message


def test_bad_items_are_user_errors_and_no_items_give_no_rows(bert):
    assert _encoder(bert).encode("text", []).shape == (0, 32)
    with pytest.raises(UserError, match="item 1 is a int"):
        _encoder(bert).encode("text", ["fine", 3])


def test_fingerprint_follows_weights_pooling_and_options_not_batching_or_folder(bert, tmp_path):
    base = _encoder(bert).fingerprint()
    assert _encoder(bert, batch_size=1).fingerprint() == base
    for changed in ({"pooling": "mean"}, {"max_length": 16}, {"normalize": True}, {"tokens": True}):
        assert _encoder(bert, **changed).fingerprint() != base, changed
    copy = shutil.copytree(bert, tmp_path / "copy")
    assert _encoder(copy).fingerprint() == base  # the same files elsewhere: the same vectors
    _save_bert(copy, seed=5)  # other weights, same architecture and tokenizer
    assert _encoder(copy).fingerprint() != base


def test_trainable_is_a_copy_that_pools_as_extraction_and_gets_gradients(bert):
    import torch

    encoder = _encoder(bert, pooling="mean", normalize=True)
    expected = encoder.encode("text", TEXTS)
    trainable = encoder.trainable("text")
    assert trainable.dim == 32
    batch = trainable.prepare(TEXTS, None)
    assert isinstance(batch, dict) and batch["input_ids"].shape[0] == len(TEXTS)
    module = trainable.module.eval()
    out = module(batch)
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-5)
    out.sum().backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    # training the copy leaves the extraction model (and a later copy) alone
    np.testing.assert_array_equal(encoder.encode("text", TEXTS), expected)
    fresh = encoder.trainable("text").module.eval()
    np.testing.assert_allclose(fresh(batch).detach().numpy(), expected, atol=1e-5)


def test_a_suite_with_hf_text_runs_and_a_rerun_is_served_from_the_cache(bert, tmp_path, monkeypatch):
    from mmbench.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(f"""
[suite]
name = "hf_text_raw"
seeds = [0]
threads = 1

[[datasets]]
name = "synthetic_raw"
n_samples = 60

[[encoders]]
image = "color_histogram"
text = {{ name = "hf_text", model = "{bert}", pooling = "mean", max_length = 64 }}
tabular = "tabular"

[[fusions]]
name = "early"
train = {{ epochs = 3 }}
""")

    def result() -> dict:
        (path,) = (tmp_path / "results" / "hf_text_raw").glob("*.json")
        return json.loads(path.read_text())

    assert main(["run", "s.toml"]) == 0
    first = result()
    assert first["status"] == "ok", first["error"]
    assert first["data"]["dims"]["text"] == 32 and first["extraction"]["text"]["cached"] is False
    assert main(["run", "s.toml", "--rerun"]) == 0
    second = result()
    assert second["status"] == "ok", second["error"]
    assert second["extraction"]["text"]["cached"] is True
    assert second["metrics"]["auroc"] == first["metrics"]["auroc"]
