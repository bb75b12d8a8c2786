"""The ``causal_lm`` encoder on tiny random LLaMA and GPT-2 models saved offline (word-level
tokenizers with eos and no pad token, as LLaMA's): pooling, padding, int8 weights, the
parameter checks, the fingerprint and a suite run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmbench_datasets.synthetic_raw import DESCRIPTORS, FILLERS, SITES
from mmbench_encoders import causal_lm
from mmbench_encoders.causal_lm import CausalLM

from mmbench.errors import UserError
from mmbench.testing import run_in_suite

WORDS = sorted({*DESCRIPTORS, *SITES, *" ".join(FILLERS).split(),
                *["the", "a", "cat", "dog", "sat", "on", "mat", "lesion", "mm", "patient", "aged",
                  "unknown", "appearance", "and", "site"],
                *".,:0123456789"})
TEXTS = ["the cat sat on the mat", "a dog", "the dog sat on a red mat and the cat sat on the dog",
         "cat", "", None, float("nan"), "   "]


def _save_tokenizer(folder: Path, bos: bool) -> int:
    """A word-level tokenizer like LLaMA's in what matters here: eos, no pad; BOS for LLaMA."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                                      pre_tokenizers.Digits(individual_digits=True)])
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    return len(vocab)


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    """A 2-layer LLaMA saved as the hub's Llama-2 is: LlamaForCausalLM (with its LM head)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("llama")
    vocab = _save_tokenizer(folder, bos=True)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                         bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("gpt2")
    vocab = _save_tokenizer(folder, bos=False)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=48,
                        bos_token_id=1, eos_token_id=2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def _encoder(folder: Path, **params) -> CausalLM:
    return CausalLM(**{"model": str(folder), "max_length": 48, **params})  # the tiny models' positions


def _reference(folder: Path, text: str):
    """The base model's last hidden state for one text, straight from transformers."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    with torch.inference_mode():
        return model(**tokenizer([text], return_tensors="pt")).last_hidden_state[0].numpy()


@pytest.mark.parametrize("model", ["llama", "gpt2"])
def test_shapes_and_missing_or_empty_texts_give_zero_vectors(model, request):
    vectors = _encoder(request.getfixturevalue(model)).encode("text", TEXTS)
    assert vectors.shape == (len(TEXTS), 32) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    assert vectors[:4].any(axis=1).all() and not vectors[4:].any()
    assert _encoder(request.getfixturevalue(model)).encode("text", []).shape == (0, 32)


@pytest.mark.parametrize("model", ["llama", "gpt2"])
def test_pooling_matches_the_models_own_last_hidden_state(model, request):
    folder = request.getfixturevalue(model)
    text = TEXTS[2]
    hidden = _reference(folder, text)  # (tokens, 32): BOS included for LLaMA
    assert hidden.shape[0] == len(text.split()) + (model == "llama")
    mean = _encoder(folder, pooling="mean").encode("text", [text, "a dog"])
    np.testing.assert_allclose(mean[0], hidden.mean(axis=0), rtol=1e-5, atol=1e-5)
    last = _encoder(folder, pooling="last").encode("text", [text, "a dog"])
    np.testing.assert_allclose(last[0], hidden[-1], rtol=1e-5, atol=1e-5)
    unit = _encoder(folder, normalize=True).encode("text", [text])
    np.testing.assert_allclose(unit[0], mean[0] / np.linalg.norm(mean[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_padding_and_batching_do_not_change_a_texts_vector(llama, pooling):
    texts = [t for t in TEXTS if isinstance(t, str) and t.strip()]
    alone = np.concatenate([_encoder(llama, pooling=pooling, batch_size=1).encode("text", [t]) for t in texts])
    batched = _encoder(llama, pooling=pooling, batch_size=8).encode("text", texts)  # padded to the longest
    np.testing.assert_allclose(batched, alone, rtol=1e-5, atol=1e-5)
    in_pairs = _encoder(llama, pooling=pooling, batch_size=2).encode("text", texts[::-1])[::-1]
    np.testing.assert_allclose(in_pairs, alone, rtol=1e-5, atol=1e-5)


def test_progress_counts_every_item_once(llama):
    encoder = _encoder(llama, batch_size=2)
    counts: list[int] = []
    encoder.on_items = counts.append
    encoder.encode("text", TEXTS)
    assert sum(counts) == len(TEXTS) and len(counts) == 1 + 2  # the 4 skipped at once, 2 batches of 2


def test_max_length_truncates_and_is_checked_against_the_model(llama, gpt2):
    long = " ".join(["cat"] * 100)
    hidden = _reference(llama, long)[:8]  # BOS + 7 words
    np.testing.assert_allclose(_encoder(llama, max_length=8).encode("text", [long])[0], hidden.mean(axis=0),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(UserError, match="max_length 65 exceeds the 64 positions.*at most 64"):
        _encoder(llama, max_length=65)
    with pytest.raises(UserError, match="exceeds the 48 positions"):  # GPT-2: n_positions
        _encoder(gpt2, max_length=49)


@pytest.mark.parametrize("model", ["llama", "gpt2"])
def test_int8_quantises_every_linear_layer_and_stays_close_to_float32(model, request):
    import torch
    from transformers.pytorch_utils import Conv1D

    folder = request.getfixturevalue(model)
    encoder = _encoder(folder, quantize="int8")
    _, quantized = encoder.load_model()
    layers = [m for m in quantized.modules() if isinstance(m, causal_lm.int8_linear_type())]
    assert layers and not any(isinstance(m, (torch.nn.Linear, Conv1D)) for m in quantized.modules())
    assert all(m.weight_int8.dtype == torch.int8 for m in layers)
    texts = TEXTS[:4]
    full = _encoder(folder).encode("text", texts)
    int8 = encoder.encode("text", texts)
    cosine = (full * int8).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(int8, axis=1)
    assert cosine.min() > 0.99, cosine
    assert not np.array_equal(full, int8)  # really another computation


def test_int8_from_a_float16_checkpoint_runs_the_rest_in_float32(llama, tmp_path):
    """Llama-2's files are fp16: int8 loads them as stored, quantises, then casts the rest."""
    import torch
    from transformers import AutoModel

    for f in llama.iterdir():
        if f.suffix != ".safetensors" and f.name != "config.json":
            (tmp_path / f.name).symlink_to(f)
    AutoModel.from_pretrained(str(llama)).half().save_pretrained(tmp_path)
    _, model = _encoder(tmp_path, quantize="int8").load_model()
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # embeddings, norms
    texts = TEXTS[:4]
    full = _encoder(tmp_path).encode("text", texts)  # the fp16 weights, computed in float32
    int8 = _encoder(tmp_path, quantize="int8").encode("text", texts)
    cosine = (full * int8).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(int8, axis=1)
    assert cosine.min() > 0.99, cosine


def test_int8_layer_is_the_float_layer_with_rounded_weights():
    import torch

    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    layer = causal_lm.int8_linear_type()(linear.weight.detach(), linear.bias.detach())
    x = torch.randn(5, 16)
    with torch.inference_mode():
        dequantised = layer.weight_int8.float() * layer.scale[:, None]
        assert (dequantised - linear.weight).abs().max() <= layer.scale.max() / 2 + 1e-7  # half a step
        torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, dequantised, linear.bias))
        assert layer.to(torch.bfloat16).weight_int8.dtype == torch.int8  # a dtype cast keeps int8
        assert layer(x.bfloat16()).dtype == torch.bfloat16


def test_bfloat16_and_int8_with_bfloat16_are_close_to_float32(llama):
    texts = TEXTS[:4]
    full = _encoder(llama).encode("text", texts)
    for params in ({"dtype": "bfloat16"}, {"dtype": "bfloat16", "quantize": "int8"}):
        half = _encoder(llama, **params).encode("text", texts)
        assert half.dtype == np.float32
        cosine = (full * half).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(half, axis=1)
        assert cosine.min() > 0.98, (params, cosine)


def test_int8_on_a_gpu_device_is_a_user_error(llama):
    encoder = _encoder(llama, quantize="int8")
    encoder.device = "cuda:0"
    with pytest.raises(UserError, match="CPU only.*--device cpu"):
        encoder.encode("text", ["cat"])


def test_missing_model_says_what_to_download_and_where(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError) as info:
        CausalLM()  # the paper's model, not in this (empty) cache
    assert "meta-llama/Llama-2-7b-hf" in str(info.value) and "hf download" in str(info.value)
    with pytest.raises(UserError, match="is not a folder"):
        CausalLM(model=str(tmp_path / "nowhere" / "llama"))


def test_weights_that_do_not_fit_the_config_are_a_user_error(llama, tmp_path):
    for f in llama.iterdir():
        (tmp_path / f.name).symlink_to(f)
    (tmp_path / "config.json").unlink()
    config = json.loads((llama / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(UserError, match="lack .* tensors.*random"):
        _encoder(tmp_path).encode("text", ["cat"])


def test_fingerprint_follows_what_changes_vectors(llama, gpt2, tmp_path):
    base = _encoder(llama).fingerprint()
    assert _encoder(llama, batch_size=3).fingerprint() == base
    for changed in ({"pooling": "last"}, {"max_length": 32}, {"quantize": "int8"}, {"dtype": "bfloat16"},
                    {"normalize": True}):
        assert _encoder(llama, **changed).fingerprint() != base, changed
    assert _encoder(gpt2).fingerprint() != base
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in llama.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert _encoder(copy).fingerprint() == base  # the same files elsewhere: the same model
    tokenizer = json.loads((copy / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"]["cat"], tokenizer["model"]["vocab"]["dog"] = (
        tokenizer["model"]["vocab"]["dog"], tokenizer["model"]["vocab"]["cat"])
    (copy / "tokenizer.json").write_text(json.dumps(tokenizer))
    assert _encoder(copy).fingerprint() != base  # another tokenisation


def test_int8_fingerprint_names_the_torch_version(llama, monkeypatch):
    int8, full = _encoder(llama, quantize="int8").fingerprint(), _encoder(llama).fingerprint()
    real = causal_lm.package_version
    monkeypatch.setattr(causal_lm, "package_version",
                        lambda name, parts=1: "9.9" if name == "torch" else real(name, parts))
    assert _encoder(llama, quantize="int8").fingerprint() != int8
    assert _encoder(llama).fingerprint() == full


def test_fingerprint_in_a_fresh_process_is_the_same(llama):
    code = ("from mmbench_encoders.causal_lm import CausalLM; "
            f"print(CausalLM(model={str(llama)!r}, quantize='int8', max_length=48).fingerprint())")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == _encoder(llama, quantize="int8").fingerprint()


def test_a_suite_with_causal_lm_text_runs_end_to_end(llama, tmp_path):
    text = {"name": "causal_lm", "model": str(llama), "quantize": "int8", "max_length": 48}
    result = run_in_suite(tmp_path, {"image": "color_histogram", "text": text, "tabular": "tabular"})
    assert result["data"]["dims"]["text"] == 32
    assert "causal_lm" in json.dumps(result["labels"])
