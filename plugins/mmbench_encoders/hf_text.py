"""Text embeddings from a transformers encoder (BERT, RoBERTa, PubMedBERT, ...), loaded
from local files only.

``model`` is a local folder or a Hugging Face id already in the local cache (see
``hf_local``): e.g. ``google-bert/bert-base-uncased``, ``FacebookAI/roberta-base``,
``microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract-fulltext``. Nothing is downloaded;
a missing model is a ``UserError`` naming the ``hf download`` command and the cache folder.

Pooling of the last hidden states: ``cls`` takes the first token ([CLS] / <s>) as it
leaves the last layer (not BERT's tanh ``pooler``, which only next-sentence prediction
trained); ``mean`` averages the tokens under the attention mask, special tokens included
(as sentence-transformers does). ``normalize`` then L2-normalises. ``max_length`` must fit
the model's position table: BERT-likes have ``max_position_embeddings`` positions,
RoBERTa-likes two fewer (their positions start after the padding index), and a larger
value is refused when the encoder is made, so ``mmbench validate`` reports it.

Texts are sorted by tokenised length before batching (as minilm and sentence-transformers
do), so batches hold similar lengths and little compute goes to padding.

Fingerprint: name, the sha256 of weights, config and tokenizer files (``folder_identity``),
pooling, max_length, normalize, tokens, dtype and the transformers major version. Not the
folder path (a copy elsewhere gives the same vectors), not ``batch_size`` (padding changes
vectors by float rounding only) and never the device.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Encoder, stable_hash
from mmbench.trainable import Augment, TrainableEncoder
from mmbench_encoders.hf_local import (
    folder_identity,
    folder_state,
    how_to_download,
    quiet_loading,
    resolve_model_folder,
    transformers_major,
)
from mmbench_encoders.model_cache import ModelCache
from mmbench_encoders.texts import text_or_none

#: (tokenizer, model) per file state + device, shared by a suite's runs in this process
_MODELS: ModelCache = ModelCache(2)
#: Model types whose position ids start after the padding index (fairseq's convention):
#: max_position_embeddings - (pad_token_id + 1) positions are usable.
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "mpnet",
                    "data2vec-text", "roberta-prelayernorm", "ibert", "luke", "xmod")


class HfText(Encoder):
    """Pooled last hidden states of a transformers text encoder (BERT, RoBERTa, PubMedBERT), offline only.

    Output: (n, hidden_size) float32 (768 for the base models). With ``tokens = true`` the
    per-token last hidden states (n, T, hidden_size) and their attention mask are returned
    too, for attention fusions (T = longest tokenised text, at most ``max_length``; padding
    rows are zero). Missing texts (None / NaN) are encoded as empty texts.
    """

    name = "hf_text"
    modalities = ("text",)
    citation = ("Devlin et al., BERT, NAACL 2019; Liu et al., RoBERTa, arXiv:1907.11692; Gu et al., "
                "Domain-Specific Language Model Pretraining for Biomedical NLP (PubMedBERT), ACM HEALTH 2021")
    parameters = (
        Param("model", str, "google-bert/bert-base-uncased", "local folder or Hugging Face id in the local "
              "cache (never downloaded): a BERT, RoBERTa or PubMedBERT checkpoint"),
        Param("pooling", str, "cls", "'cls': the first token's last hidden state; 'mean': the mean over "
              "the attention mask", choices=("cls", "mean")),
        Param("max_length", int, 512, "longest tokenised text, special tokens included; at most the "
              "model's usable positions (512 for BERT and RoBERTa base)", min=2),
        Param("normalize", bool, False, "L2-normalise each pooled vector"),
        Param("tokens", bool, False, "also return the per-token last hidden states and mask for "
              "attention fusions"),
        Param("batch_size", int, 32, "texts per forward pass", min=1),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        # cheap (stat calls, one small JSON file): runs in `mmbench validate` too
        self.folder = resolve_model_folder(self.name, self.params["model"], needs=("config.json",))
        if not any((self.folder / name).is_file() for name in ("tokenizer.json", "vocab.txt", "vocab.json")):
            raise UserError(f"encoder 'hf_text': {self.folder} holds no tokenizer (tokenizer.json, vocab.txt "
                            f"or vocab.json); {how_to_download(self.params['model'])}")
        limit = usable_positions(self.folder)
        if limit is not None and self.params["max_length"] > limit:
            raise UserError(f"encoder 'hf_text': max_length {self.params['max_length']} exceeds the "
                            f"{limit} positions of model {self.params['model']!r} (its config.json "
                            f"max_position_embeddings); set max_length to at most {limit}")

    # -- identity ---------------------------------------------------------------------

    def fingerprint(self) -> str:
        return stable_hash({
            "name": self.name,
            "files": folder_identity(self.folder),
            "params": {k: self.params[k] for k in ("pooling", "max_length", "normalize", "tokens")},
            "dtype": "float32",
            "transformers_major": transformers_major(),
        })

    # -- extraction -------------------------------------------------------------------

    def encode(self, modality: str, items: Any) -> Any:
        import torch

        from mmbench.data import Encoded, TokenSequence

        texts = [text_or_none(self.name, item, i) or "" for i, item in enumerate(items)]
        n = len(texts)
        tokenizer, model = self._load()
        dim = int(model.config.hidden_size)
        max_length, batch_size = self.params["max_length"], self.params["batch_size"]
        vectors = np.zeros((n, dim), dtype=np.float32)
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
                   ] if n else []
        order = sorted(range(n), key=lambda i: -lengths[i])
        token_values = token_mask = None
        if self.params["tokens"]:
            token_values = np.zeros((n, max(lengths, default=0), dim), dtype=np.float32)
            token_mask = np.zeros((n, max(lengths, default=0)), dtype=bool)
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                batch = self._tokenize(tokenizer, [texts[i] for i in rows])
                batch = {key: value.to(self.device) for key, value in batch.items()}
                hidden = model(**batch).last_hidden_state
                pooled = pool_states(hidden, batch["attention_mask"], self.params["pooling"], self.params["normalize"])
                vectors[rows] = pooled.float().cpu().numpy()
                if token_values is not None:
                    mask = batch["attention_mask"].cpu().bool()
                    values = hidden.float().cpu() * mask.unsqueeze(-1)
                    token_values[rows, :values.shape[1]] = values.numpy()
                    token_mask[rows, :values.shape[1]] = mask.numpy()
                self.advance(len(rows))
        if token_values is None:
            return vectors
        return Encoded(vectors, TokenSequence(token_values, token_mask))

    def _tokenize(self, tokenizer: Any, texts: list[str]) -> dict[str, Any]:
        """A padded, truncated batch as a plain dict of tensors (what ``to_device`` moves)."""
        return dict(tokenizer(texts, padding=True, truncation=True, max_length=self.params["max_length"],
                              return_tensors="pt"))

    # -- fine-tuning ------------------------------------------------------------------

    def trainable(self, modality: str) -> TrainableEncoder:
        """A deep copy of the backbone (the cached model is never trained) that pools as
        ``encode`` does; ``prepare`` tokenises (missing texts are empty texts)."""
        import copy

        tokenizer, model = self._load()
        backbone = copy.deepcopy(model).cpu().requires_grad_(True)

        def prepare(items: Sequence[Any], augment: Augment | None = None) -> dict[str, Any]:
            texts = [text_or_none(self.name, item, i) or "" for i, item in enumerate(items)]
            return self._tokenize(tokenizer, texts)

        pool = functools.partial(pool_states, pooling=self.params["pooling"], normalize=self.params["normalize"])
        return TrainableEncoder(_pooled_module(backbone, pool), int(model.config.hidden_size), prepare)

    def _load(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            tokenizer, model = _load_model(self.folder, self.params["model"])
            return tokenizer, model.to(self.device)

        return _MODELS.get((folder_state(self.folder), self.device), load)


# -- helpers --------------------------------------------------------------------------


def usable_positions(folder: Path) -> int | None:
    """How many tokens the model's position table takes, from config.json (None: the model
    has no absolute positions, or the config does not say)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"encoder 'hf_text': cannot read {folder / 'config.json'} ({exc})") from None
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int):
        return None
    if config.get("model_type") in OFFSET_POSITIONS:
        return positions - (int(config.get("pad_token_id", 1)) + 1)
    return positions


def _load_model(folder: Path, model_id: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise UserError(f"encoder 'hf_text' could not load {model_id!r} from {folder} ({str(exc)[:300]}); "
                        f"{how_to_download(model_id)}") from None
    model.eval()
    return tokenizer, model


def pool_states(hidden: Any, attention_mask: Any, pooling: str, normalize: bool) -> Any:
    """(b, t, d) last hidden states -> (b, d): the one pooling extraction and training share."""
    import torch

    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled


def _pooled_module(backbone: Any, pool: Any) -> Any:
    """``backbone`` wrapped so ``module(batch)`` gives the pooled (b, d) vectors."""
    import torch

    class PooledText(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return pool(self.backbone(**batch).last_hidden_state, batch["attention_mask"])

    return PooledText()
