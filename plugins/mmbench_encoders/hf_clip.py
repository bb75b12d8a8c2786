"""Paired image + text embeddings from a transformers vision-language model: CLIP
(``CLIPModel``), SigLIP (``SiglipModel``, which MedSigLIP ``google/medsiglip-448`` is)
and SigLIP 2 (``Siglip2Model``), from local files only.

``model`` is a local folder or a hub id already in the local Hugging Face cache
(``hf_local.resolve_model_folder``: nothing is downloaded; a missing model is a
``UserError`` naming the ``hf download`` command and the cache folder). The family comes
from ``model_type`` in its config.json.

Vectors are what the model's own ``get_image_features`` / ``get_text_features`` return
(in transformers 5 these return a ``BaseModelOutputWithPooling`` whose ``pooler_output``
holds the projected embedding): CLIP's projected pooled token, SigLIP's attention-pooling
head (image) and the linear head on the last token (text); then L2-normalised unless
``normalize = false``. The image and text vectors live in one space, so the encoder
serves ``zero_shot`` (``logit_scale``) and its towers train end to end (``trainable``).

Text, as each family was trained:

- CLIP: truncated to ``max_length`` tokens (default: the model's 77 positions), padded to
  the batch's longest text, with the attention mask; the causal text transformer pools
  the end token, so padding does not change the vectors.
- SigLIP / SigLIP 2 / MedSigLIP: padded with the pad token to exactly ``max_length``
  (default: the model's positions, 64, the length they were trained with) and run
  WITHOUT an attention mask, as in big_vision and open_clip: the text tower pools the
  last position, which must be the sticky end / pad token, and it attends to the padding
  it saw in training.

Images are decoded (``batching.open_image``: paths, PIL images, arrays) and put through
the folder's image processor (``AutoImageProcessor``, transformers' default torchvision
backend) item by item in ``batching.prepared_batches`` threads, one batch ahead of the
forward pass, and the items' tensors are concatenated (SigLIP 2's patch tensors, masks
and spatial shapes included). Measured (256 random 256 x 256 PNGs, CLIP's 224 px
processor, batches of 32, one torch thread, 2 shared cores): decoding + processing costs
1.3 ms per image per item vs 1.1 ms when the processor takes the decoded batch; with one
decode thread, per item takes all of it off the calling thread, whereas the batched
processor still costs the calling thread ~0.9 ms per image. Against a ViT-B/32 forward
pass (85-150 ms per image on this machine) both are under 2 % and the end-to-end
difference was within noise, so per item in the threads it is: the forward pass never
waits for preprocessing. Missing items (None / NaN) give zero rows; an empty text is
encoded (it is present, just empty).

This module imports only the standard library, numpy and mmbench at import time; torch
and transformers are imported when the model is loaded.

Fingerprint: name, the model type, the sha256 of the weights, config, tokenizer and image
processor files (``hf_local.folder_identity``: the same files in another folder are the
same model), the image processor type and backend (torchvision and PIL resize
differently), the text length and padding, ``normalize``, the dtype (float32) and the
transformers major version. Not the folder path, ``batch_size`` or ``decode_workers``
(vectors differ by float rounding only), and never the device.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Encoder, stable_hash
from mmbench.trainable import Augment, TrainableEncoder
from mmbench_encoders.batching import decode_threads, open_image, prepared_batches
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

#: text handling per model family (see the module docstring)
FAMILIES = {
    "clip": {"padding": "longest", "attention_mask": True},
    "siglip": {"padding": "max_length", "attention_mask": False},
    "siglip2": {"padding": "max_length", "attention_mask": False},
}
NEEDS = ("config.json", "preprocessor_config.json", "tokenizer_config.json")

#: (model, tokenizer, image processor) per file state + device, shared by a suite's runs
#: in this process
_MODELS: ModelCache = ModelCache(2)


class HfClip(Encoder):
    """Image and text embeddings in one space from a transformers CLIP / SigLIP / SigLIP 2
    model (MedSigLIP included), offline only.

    Output: (n, d) float32 per modality, L2-normalised by default; d is CLIP's
    ``projection_dim`` (512 for ViT-B/32) or SigLIP's width (768 for base, 1152 for
    so400m and MedSigLIP).
    """

    name = "hf_clip"
    modalities = ("image", "text")
    shared_space = True
    citation = ("Radford et al., Learning Transferable Visual Models From Natural Language "
                "Supervision (CLIP), ICML 2021; Zhai et al., Sigmoid Loss for Language Image "
                "Pre-Training (SigLIP), ICCV 2023; Tschannen et al., SigLIP 2, 2025; Sellergren "
                "et al., MedGemma Technical Report (MedSigLIP), 2025")
    parameters = (
        Param("model", str, "openai/clip-vit-base-patch32", "local folder with the model's files, or a "
              "Hugging Face id already in the local cache (openai/clip-vit-base-patch32, "
              "google/siglip-base-patch16-224, google/medsiglip-448, ...); never downloaded"),
        Param("normalize", bool, True, "L2-normalise each vector (zero_shot's cosines need it)"),
        Param("max_length", int, 0, "text length in tokens, special tokens included; 0: the model's "
              "text positions (CLIP 77; SigLIP 64, to which its texts are always padded)", min=0),
        Param("batch_size", int, 32, "items per forward pass", min=1),
        Param("decode_workers", int, 2, "at most this many threads decode and preprocess images ahead "
              "of the forward pass, on cores torch's threads leave free (0: the calling thread)", min=0),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        # Cheap (stat calls and small JSON files): runs during `mmbench validate` too, so a
        # missing model is reported before any run starts.
        self.folder = resolve_model_folder(self.name, self.params["model"], NEEDS)
        self.config = _read_json(self.folder / "config.json", self.params["model"])
        self.model_type = self.config.get("model_type")
        if self.model_type not in FAMILIES:
            raise UserError(f"encoder 'hf_clip': {self.folder} holds a {self.model_type!r} model; hf_clip "
                            f"takes {', '.join(sorted(FAMILIES))} (CLIP, SigLIP, SigLIP 2, MedSigLIP) "
                            "models; use open_clip for open_clip checkpoints")
        self.family = FAMILIES[self.model_type]
        positions = int((self.config.get("text_config") or {}).get("max_position_embeddings") or
                        (77 if self.model_type == "clip" else 64))
        self.max_length = self.params["max_length"] or positions
        if self.max_length > positions:
            raise UserError(f"encoder 'hf_clip': max_length {self.max_length} exceeds the model's "
                            f"{positions} text positions; set max_length to at most {positions} (or 0)")
        processor = _read_json(self.folder / "preprocessor_config.json", self.params["model"])
        self.image_processor_type = processor.get("image_processor_type", "")

    # -- identity ---------------------------------------------------------------------

    def fingerprint(self) -> str:
        return stable_hash({
            "name": self.name,
            "model_type": self.model_type,
            "files": folder_identity(self.folder),
            "image_processor": {"type": self.image_processor_type, "backend": _image_backend()},
            "text": {"max_length": self.max_length, **self.family},
            "normalize": self.params["normalize"],
            "dtype": "float32",
            "transformers_major": transformers_major(),
        })

    def logit_scale(self) -> float:
        """exp(logit_scale): zero-shot logits are this times the cosines. SigLIP also
        learned a ``logit_bias`` for its sigmoid loss; a softmax over classes does not
        change when the same bias is added to every logit, so the scale is all zero-shot
        needs."""
        model, _, _ = self._load()
        return float(model.logit_scale.detach().exp().item())

    # -- extraction -------------------------------------------------------------------

    def encode(self, modality: str, items: Any) -> np.ndarray:
        import torch

        _check_modality(modality)
        items = list(items) if not isinstance(items, np.ndarray) else items
        model, tokenizer, processor = self._load()
        out = np.zeros((len(items), self.dim(modality)), dtype=np.float32)
        with torch.inference_mode():
            size = self.params["batch_size"]
            for k, (rows, batch) in enumerate(self._batches(modality, items, tokenizer, processor)):
                if rows:
                    vectors = self._features(model, modality, batch)
                    if self.params["normalize"]:
                        vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                    out[rows] = vectors.float().cpu().numpy()
                self.advance(min(size, len(items) - k * size))  # missing items are done too
        return out

    def dim(self, modality: str) -> int:
        """The embedding width of ``modality``'s tower, from config.json."""
        text, vision = self.config.get("text_config") or {}, self.config.get("vision_config") or {}
        if self.model_type == "clip":
            return int(self.config.get("projection_dim", 512))
        if modality == "image":
            return int(vision.get("hidden_size", 768))
        return int(text.get("projection_size") or text.get("hidden_size", 768))

    def _batches(self, modality: str, items: Sequence[Any], tokenizer: Any, processor: Any):
        """(rows, model inputs) per batch of present items: images processed in the
        decode threads, texts tokenised once and padded per batch."""
        import torch

        size = self.params["batch_size"]
        if modality == "image":
            def prepare(item: Any) -> dict[str, Any] | None:
                image = open_image(item)
                return None if image is None else dict(processor(images=image, return_tensors="pt"))

            workers = decode_threads(self.params["decode_workers"], torch.get_num_threads())
            for rows, prepared in prepared_batches(items, size, prepare, workers):
                yield rows, ({key: torch.cat([p[key] for p in prepared]) for key in prepared[0]}
                             if prepared else None)
            return
        texts = [text_or_none(self.name, item, i) for i, item in enumerate(items)]
        present = [i for i, text in enumerate(texts) if text is not None]
        ids = tokenizer([texts[i] for i in present], truncation=True, max_length=self.max_length)["input_ids"] \
            if present else []
        by_row = dict(zip(present, ids))
        for start in range(0, len(texts), size):
            rows = [i for i in range(start, min(start + size, len(texts))) if i in by_row]
            yield rows, self._pad(tokenizer, [by_row[i] for i in rows]) if rows else None

    def _pad(self, tokenizer: Any, ids: list[list[int]]) -> dict[str, Any]:
        """Token ids -> the family's text inputs (see the module docstring)."""
        batch = tokenizer.pad({"input_ids": ids}, padding=self.family["padding"], max_length=self.max_length,
                              return_tensors="pt", return_attention_mask=self.family["attention_mask"])
        return dict(batch)

    def _features(self, model: Any, modality: str, batch: dict[str, Any]) -> Any:
        from mmbench.trainable import to_device

        batch = to_device(batch, self.device)
        if modality == "image":
            return model.get_image_features(**batch).pooler_output
        return model.get_text_features(**batch).pooler_output

    # -- fine-tuning ------------------------------------------------------------------

    def trainable(self, modality: str) -> TrainableEncoder:
        """A deep copy of ``modality``'s tower and projection: ``module(batch)`` gives the
        vectors ``encode`` gives BEFORE L2 normalisation (the fusion decides whether to
        normalise), ``prepare`` makes the batch (images: decode, ``augment``, the model's
        image processor; texts: tokenise and pad as in extraction). Missing items become a
        black image / an empty text so rows stay aligned."""
        _check_modality(modality)
        model, tokenizer, processor = self._load()
        if modality == "image":
            tower, projection = model.vision_model, getattr(model, "visual_projection", None)
        else:
            tower, projection = model.text_model, getattr(model, "text_projection", None)
        module = _tower_class()(copy.deepcopy(tower), copy.deepcopy(projection))

        def prepare(items: Sequence[Any], augment: Augment | None = None) -> dict[str, Any]:
            if modality == "text":
                texts = [text_or_none(self.name, item, i) or "" for i, item in enumerate(items)]
                ids = tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
                return self._pad(tokenizer, ids)
            images = [_blank_if_missing(open_image(item)) for item in items]
            if augment is not None:
                images = [augment(image) for image in images]
            return dict(processor(images=images, return_tensors="pt"))

        return TrainableEncoder(module=module, dim=self.dim(modality), prepare=prepare)

    def _load(self) -> tuple[Any, Any, Any]:
        def load() -> tuple[Any, Any, Any]:
            model, tokenizer, processor = _load_model(self.folder, self.params["model"])
            return model.to(self.device), tokenizer, processor

        return _MODELS.get((folder_state(self.folder), self.device), load)


# -- helpers --------------------------------------------------------------------------


def _check_modality(modality: str) -> None:
    if modality not in HfClip.modalities:
        raise UserError(f"encoder 'hf_clip' encodes images and texts, not {modality!r}; give "
                        f"{modality!r} its own encoder")


def _read_json(path: Path, model: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"encoder 'hf_clip': cannot read {path} ({exc}); {how_to_download(model)}") from None


def _image_backend() -> str:
    """The backend AutoImageProcessor picks (torchvision when installed, else PIL), known
    without importing transformers: the two resize differently, so vectors differ."""
    return "torchvision" if importlib.util.find_spec("torchvision") is not None else "pil"


def _blank_if_missing(image: Any) -> Any:
    from PIL import Image

    return Image.new("RGB", (32, 32)) if image is None else image


def _load_model(folder: Path, model_id: str) -> tuple[Any, Any, Any]:
    import torch
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    try:
        with quiet_loading():
            model = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, ImportError) as exc:
        raise UserError(f"encoder 'hf_clip' could not load the model from {folder} ({str(exc)[:300]}); "
                        f"{how_to_download(model_id)}") from None
    model.eval()
    return model, tokenizer, processor


@functools.cache
def _tower_class() -> type:
    """The module class for a trainable tower, made on first use so that importing this
    module does not import torch."""
    import torch

    class Tower(torch.nn.Module):
        """One tower of a paired model + its projection (CLIP; SigLIP's heads are inside
        the tower): the features ``get_image_features`` / ``get_text_features`` return."""

        def __init__(self, tower: Any, projection: Any):
            super().__init__()
            self.tower = tower
            self.projection = projection if projection is not None else torch.nn.Identity()

        def forward(self, batch: dict[str, Any]) -> Any:
            return self.projection(self.tower(**batch).pooler_output)

    return Tower
