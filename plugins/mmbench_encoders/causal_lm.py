"""Text embeddings from a decoder-only language model (LLaMA-2, GPT-2, Mistral, ... any
Hugging Face causal LM): the last hidden state pooled over each text's tokens, with an
int8 weight option so a 7B model fits a laptop. Restrepo et al. embeds text this way with
LLaMA-2-7B in 8 bits.

Model: a local folder or a hub id already in the local Hugging Face cache
(``hf_local.resolve_model_folder``); nothing is downloaded. Only the base model is loaded
(``AutoModel``: no LM head, whose vocab x hidden matrix the vectors never use; 131M
parameters for LLaMA-2-7B).

Tokens and padding: texts are tokenised as the model's tokenizer does (LLaMA adds BOS),
truncated to ``max_length`` tokens, sorted by length so a batch holds similar lengths,
and padded on the RIGHT with the pad id (LLaMA has none: the eos id stands in; padded
positions are masked, so the id never matters). With causal attention a token only sees
the tokens before it, so right padding leaves every real token's state exactly what it is
for the text alone: a text's vector does not depend on its batch. None, NaN and empty or
whitespace-only texts give zero vectors (a decoder without BOS cannot run on no tokens).

Pooling: ``mean`` (the paper's) averages the last hidden states over the attention mask,
BOS included. BOS sees only itself, so its state is the same for every text and shifts all
vectors by one constant (LLaMA's BOS state is large: the "attention sink"), which lowers
the embeddings' variance; a linear head is unaffected. ``last`` takes the last real
token's state, the only one that has seen the whole text: what decoder-only embedding
models (E5-Mistral, SGPT-style last-token pooling) use; for a base LM it mostly encodes
the next-token prediction.

int8 (``quantize = "int8"``, CPU only): every Linear layer (and GPT-2's Conv1D) keeps its
weights as int8 with one float scale per output channel (symmetric absmax / 127) and
dequantises them one layer at a time in the forward pass; activations, embeddings and
norms stay in ``dtype``. This is weight-only quantisation, chosen over
``torch.ao.quantization.quantize_dynamic`` because in torch 2.14.1 that API warns it is
deprecated (as do the quantised tensor constructors it relies on), takes float32
activations only, and quantises activations per tensor to 7 bits, which LLaMA's outlier
features at 6.7B+ parameters break (Dettmers et al., LLM.int8(), 2022); bitsandbytes'
LLM.int8(), what the paper used, keeps those outliers in 16 bits. Weight-only int8 saves
the same memory with activations untouched, and uses public torch ops only. Speed: a
float32 matmul plus the per-layer dequantisation (negligible beside the matmul for
batches of long texts); with ``dtype = "bfloat16"`` the matmul runs in bfloat16. To keep
the peak low the model is loaded in its checkpoint's own dtype (fp16 for LLaMA-2) and
quantised layer by layer, then the rest is cast to ``dtype``.

Memory for the weights (LLaMA-2-7B base: 6.61B parameters; the peak adds activations,
batch x tokens x hidden x a few, and the Python / torch runtime, ~0.5 GB):

=========================  ==============  ========================
setting                    bytes / param   LLaMA-2-7B weights
=========================  ==============  ========================
float32                    4               26.4 GB
bfloat16                   2               13.2 GB
int8 (+ fp32 embeddings)   ~1              6.5 + 0.5 = 7.0 GB
=========================  ==============  ========================

With int8 the peak is reached while loading: the checkpoint in its stored dtype (13.2 GB
for LLaMA-2's fp16 files), before the layers are quantised. Measured here
(``benchmarks/test_causal_lm_memory.py``: random-init LLaMA, 29M parameters of which 16.4M
embeddings, fp16 checkpoint, 64 texts of 16-128 tokens, 1 thread; RSS above the ~744 MiB
of torch + transformers): float32 111 MiB of weights, +130 MiB loaded, +183 MiB peak;
int8 75 MiB, +95 / +150 MiB; int8 + bfloat16 43 MiB, +64 / +119 MiB; cosine with float32
vectors >= 0.9995. On this CPU (AVX-512 bf16) bfloat16 encodes ~3x faster than float32,
and int8 + float32 as fast as float32.

This module imports only the standard library and mmbench at import time; torch and
transformers are imported when the model is first loaded.

Fingerprint: name, the model's files by content (``folder_identity``: weights, config,
tokenizer), pooling, max_length, quantize, dtype, normalize, the transformers major
version, and with int8 the torch major.minor (the dequantise-then-matmul kernels are
torch's). Not the folder path (the same files elsewhere give the same vectors), not the
batch size (right padding leaves the vectors unchanged up to float rounding) and never
the device.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Encoder, stable_hash
from mmbench_encoders.hf_local import (
    folder_identity,
    folder_state,
    quiet_loading,
    resolve_model_folder,
    transformers_major,
)
from mmbench_encoders.model_cache import ModelCache
from mmbench_encoders.texts import text_or_none
from mmbench_encoders.versions import package_version

PAPER_MODEL = "meta-llama/Llama-2-7b-hf"
POOLINGS = ("mean", "last")
QUANTIZE = ("none", "int8")
DTYPES = ("float32", "bfloat16")
INT8_SCHEME = "weight-only int8, symmetric per output channel (absmax / 127), dequantised per layer"

#: loaded (tokenizer, model) per file state + settings + device. One at a time (the previous
#: one is dropped before the next loads): a 7B model takes 7-26 GB, and a suite's runs of
#: one encoder entry come one after another.
_MODELS: ModelCache = ModelCache(1)


class CausalLM(Encoder):
    """Causal LM text embeddings (LLaMA-2, GPT-2, ...): the pooled last hidden state, int8 optional.

    Mean (the paper's) or last-token pooling; int8 weights on the CPU; offline only.

    Output: (n, hidden_size) float32, e.g. 4096 for LLaMA-2-7B.
    """

    name = "causal_lm"
    modalities = ("text",)
    citation = ("Touvron et al., Llama 2: Open Foundation and Fine-Tuned Chat Models, 2023; "
                "8-bit weights after Dettmers et al., LLM.int8(), NeurIPS 2022")
    parameters = (
        Param("model", str, PAPER_MODEL, "local folder or Hugging Face id of a causal LM already in the "
              "local Hugging Face cache (never downloaded)"),
        Param("max_length", int, 512, "longest tokenised text, in tokens (BOS included); at most the "
              "model's max_position_embeddings", min=1),
        Param("pooling", str, "mean", "'mean': attention-mask mean of the last hidden state (the "
              "paper's); 'last': the last real token's state (decoder-only embedding models)",
              choices=POOLINGS),
        Param("quantize", str, "none", "'int8': int8 Linear weights, dequantised per layer (CPU only, "
              "~1 byte per parameter); 'none': weights in dtype", choices=QUANTIZE),
        Param("dtype", str, "float32", "compute dtype of the activations and unquantised weights: "
              "'float32' (4 bytes per parameter) or 'bfloat16' (2)", choices=DTYPES),
        Param("normalize", bool, False, "L2-normalise each vector"),
        Param("batch_size", int, 8, "texts per forward pass (memory grows with batch x max_length)", min=1),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        # defaults for parameters not given (the runner passes them all; direct use may not)
        self.params = {**{p.name: p.default for p in self.parameters}, **self.params}
        for key, allowed in (("pooling", POOLINGS), ("quantize", QUANTIZE), ("dtype", DTYPES)):
            if self.params[key] not in allowed:
                raise UserError(f"encoder 'causal_lm': {key} {self.params[key]!r} is not one of "
                                f"{', '.join(allowed)}")
        # Cheap (stat calls and one small JSON file): runs during `mmbench validate` too, so
        # a missing model or a too long max_length is reported before any run starts.
        self.folder = resolve_model_folder(self.name, self.params["model"])
        _check_config(self.folder, self.params["max_length"])

    # -- identity ---------------------------------------------------------------------

    def fingerprint(self) -> str:
        identity: dict[str, Any] = {
            "name": self.name,
            "files": folder_identity(self.folder),
            "params": {k: self.params[k] for k in ("pooling", "max_length", "quantize", "dtype", "normalize")},
            "padding": "right",
            "transformers_major": transformers_major(),
        }
        if self.params["quantize"] == "int8":
            identity["int8"] = {"scheme": INT8_SCHEME, "torch": package_version("torch", parts=2)}
        return stable_hash(identity)

    # -- extraction -------------------------------------------------------------------

    def encode(self, modality: str, items: Any) -> Any:
        import numpy as np
        import torch

        texts = [text_or_none(self.name, item, i) for i, item in enumerate(items)]
        tokenizer, model = self.load_model()
        vectors = np.zeros((len(texts), int(model.config.hidden_size)), dtype=np.float32)
        ids = {i: tokens for i, tokens in _token_ids(tokenizer, texts, self.params["max_length"]).items()
               if tokens}
        skipped = len(texts) - len(ids)
        if skipped:
            self.advance(skipped)  # missing and empty texts: zero rows, nothing to run
        # Longest first: batches hold similar lengths, so little compute goes to padding,
        # and a too-large batch fails at once rather than at the end.
        order = sorted(ids, key=lambda i: -len(ids[i]))
        pad_id = _pad_id(tokenizer)
        batch_size = self.params["batch_size"]
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                input_ids, mask = _right_padded([ids[i] for i in rows], pad_id)
                hidden = model(input_ids=input_ids.to(self.device),
                               attention_mask=mask.to(self.device)).last_hidden_state.float().cpu()
                pooled = pool(hidden, mask, self.params["pooling"])
                if self.params["normalize"]:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                vectors[rows] = pooled.numpy()
                self.advance(len(rows))
        return vectors

    def load_model(self) -> tuple[Any, Any]:
        """(tokenizer, base model in eval mode on ``self.device``), cached per process by
        the files' state, the settings that change the weights, and the device."""
        if self.params["quantize"] == "int8" and self.device != "cpu":
            raise UserError(f"encoder 'causal_lm': quantize = 'int8' runs on the CPU only, but the run's "
                            f"device is {self.device!r}; run with --device cpu, or on the GPU set "
                            "quantize = 'none' with dtype = 'bfloat16' (2 bytes per parameter)")

        def load() -> tuple[Any, Any]:
            tokenizer, model = _load(self.folder, self.params["dtype"], self.params["quantize"])
            return tokenizer, model.to(self.device)

        key = (folder_state(self.folder), self.params["quantize"], self.params["dtype"], self.device)
        return _MODELS.get(key, load)


# -- pooling and batching ---------------------------------------------------------------


def pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """(b, t, d) last hidden states and their (b, t) right-padded attention mask -> (b, d):
    the mean over real tokens, or the last real token's state."""
    import torch

    if pooling == "last":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0]), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _right_padded(sequences: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """Token id lists -> (ids, mask) tensors padded on the right: real tokens keep
    positions 0..L-1, and under causal attention never see the padding."""
    import torch

    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, tokens in enumerate(sequences):
        ids[row, :len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, :len(tokens)] = 1
    return ids, mask


def _token_ids(tokenizer: Any, texts: list[str | None], max_length: int) -> dict[int, list[int]]:
    """Token ids per non-empty text (special tokens added, truncated), by row."""
    rows = [i for i, text in enumerate(texts) if text is not None and text.strip()]
    if not rows:
        return {}
    encoded = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length,
                        add_special_tokens=True)["input_ids"]
    return dict(zip(rows, (list(e) for e in encoded)))


def _pad_id(tokenizer: Any) -> int:
    """The pad id, else eos (LLaMA, GPT-2 have no pad token), else 0: padded positions are
    masked, so any valid id does."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


# -- loading ----------------------------------------------------------------------------


def _check_config(folder: Path, max_length: int) -> None:
    """Refuse a max_length beyond the model's positions (RoPE models would extrapolate,
    learned position tables would index out of range)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"encoder 'causal_lm': cannot read {folder / 'config.json'} ({exc})") from None
    limit = config.get("max_position_embeddings") or config.get("n_positions") or config.get("n_ctx")
    if limit and max_length > int(limit):
        raise UserError(f"encoder 'causal_lm': max_length {max_length} exceeds the {int(limit)} positions of "
                        f"the model in {folder}; set max_length to at most {int(limit)}")


def _load(folder: Path, dtype: str, quantize: str) -> tuple[Any, Any]:
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise UserError(f"encoder 'causal_lm' needs torch and transformers ({exc}); "
                        "`pip install transformers`") from None
    compute = getattr(torch, dtype)
    try:
        with quiet_loading(), _no_load_report():
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            # int8: load in the checkpoint's own dtype (fp16 for LLaMA-2), not float32, so
            # the peak is the stored size; the layers are quantised from the stored values.
            model, info = AutoModel.from_pretrained(str(folder), local_files_only=True,
                                                    dtype="auto" if quantize == "int8" else compute,
                                                    output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise UserError(f"encoder 'causal_lm' could not load the model in {folder} "
                        f"({type(exc).__name__}: {str(exc)[:300]})") from None
    if info.get("missing_keys"):
        missing = sorted(info["missing_keys"])
        raise UserError(f"encoder 'causal_lm': the weights in {folder} lack {len(missing)} tensors of the "
                        f"{type(model).__name__} its config.json describes (e.g. {missing[0]}); they would be "
                        "random. Is it a causal LM checkpoint with its own config.json?")
    model.eval()
    if quantize == "int8":
        quantize_linears(model)
    return tokenizer, model.to(compute)


@contextlib.contextmanager
def _no_load_report() -> Iterator[None]:
    """transformers logs a table for the LM head's weights that the base model does not
    use; expected here (missing weights are checked instead), so not shown each run."""
    from transformers.utils import logging

    before = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(before)


# -- int8 weights -------------------------------------------------------------------------


def quantize_linears(model: Any) -> None:
    """Replace every Linear (and GPT-2's Conv1D) in ``model`` with an int8-weight layer,
    one layer at a time so only one layer's float32 temporaries exist at once."""
    import torch
    from transformers.pytorch_utils import Conv1D

    names = [name for name, module in model.named_modules()
             if isinstance(module, (torch.nn.Linear, Conv1D))]
    for name in names:
        module = model.get_submodule(name)
        weight = module.weight.detach()
        if isinstance(module, Conv1D):  # (in, out), applied as x @ W
            weight = weight.t()
        bias = module.bias.detach() if module.bias is not None else None
        model.set_submodule(name, int8_linear_type()(weight, bias))


@functools.cache
def int8_linear_type() -> type:
    """The int8-weight Linear layer (made on first use: torch is not imported with the module)."""
    import torch

    class Int8Linear(torch.nn.Module):
        """y = x W^T + b with W stored as int8 rows times a float scale per row
        (``.to(dtype)`` casts the scales and bias, never the int8 weights)."""

        def __init__(self, weight: Any, bias: Any | None):
            super().__init__()
            weight = weight.float()
            scale = torch.linalg.vector_norm(weight, float("inf"), dim=1).clamp_(min=1e-12) / 127.0
            # float32 temporaries of this layer only (LLaMA-2-7B's largest: 180 MB each)
            self.register_buffer("weight_int8", torch.div(weight, scale[:, None]).round_().clamp_(-127, 127)
                                 .to(torch.int8))
            self.register_buffer("scale", scale)
            self.bias = torch.nn.Parameter(bias.clone(), requires_grad=False) if bias is not None else None
            self.in_features, self.out_features = weight.shape[1], weight.shape[0]

        def forward(self, x: Any) -> Any:
            weight = (self.weight_int8 * self.scale[:, None]).to(x.dtype)
            return torch.nn.functional.linear(x, weight, None if self.bias is None else self.bias.to(x.dtype))

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights"

    return Int8Linear
