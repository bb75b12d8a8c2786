"""Image embeddings from a transformers vision backbone (DINOv2, ViT, ...), loaded from
local files only.

``model`` is a local folder or a Hugging Face id already in the local cache (see
``hf_local``): e.g. ``facebook/dinov2-base``, ``google/vit-base-patch16-224-in21k``. It is
loaded with ``AutoModel`` and its own ``AutoImageProcessor`` (resize, crop, rescale,
normalise as its ``preprocessor_config.json`` says). The PIL backend of the processor is
always used, whether torchvision is installed or not, so the same files give the same
vectors on every machine (the torchvision backend resizes slightly differently).

Pooling of the last hidden states (after the model's final layer norm). The token
sequence of a ViT-like model is [CLS, register / distillation tokens..., patches...]; the
tokens beyond the patch grid (``(H / patch) * (W / patch)``) are the leading ones.

- ``cls``: the [CLS] token. For DINOv2 this is the ``pooler_output`` too.
- ``mean``: the mean of the PATCH tokens only (CLS and register tokens excluded).
- ``cls_mean``: [CLS] and the patch mean concatenated (2 x hidden): the features of
  DINOv2's linear evaluation, as its paper's linear probe and transformers'
  ``Dinov2ForImageClassification`` compute them.
- ``pooler``: the model's own ``pooler_output`` (ViT: tanh(dense(CLS)), pretrained with
  the in21k checkpoints; conv nets: their global average pool); refused when the model
  has none.

Models without a class token (Swin, conv nets, whose last states are a grid) take
``mean`` or ``pooler`` only. With ``tokens = true`` the patch tokens (n, P, hidden) are
returned too, with a mask (all true; false for missing images), for attention fusions.

Decoding, augmenting and preprocessing run per image in ``batching.prepared_batches``
(threads ahead of the forward pass when torch leaves cores free). Missing items (None /
NaN) give zero rows.

Fingerprint: name, the sha256 of weights, config and preprocessor files
(``folder_identity``), pooling, tokens, the processor backend, dtype and the transformers
major version. Not the folder path, ``batch_size`` or ``decode_workers`` (float rounding
only), and never the device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

#: (processor, model, layout) per file state + device, shared by a suite's runs in this process
_MODELS: ModelCache = ModelCache(2)
#: the image processor backend: fixed, so vectors do not depend on torchvision being installed
BACKEND = "pil"
POOLINGS = ("cls", "mean", "cls_mean", "pooler")


@dataclass(frozen=True)
class Layout:
    """What one forward pass of a blank image shows about the model's output."""

    hidden: int
    #: leading tokens before the patches (CLS, registers); 0 for models without a class token
    prefix: int
    #: patch tokens per image at the processor's output size
    patches: int
    #: width of ``pooler_output``, None when the model has no pooler
    pooler: int | None

    def dim(self, pooling: str) -> int:
        return {"cls": self.hidden, "mean": self.hidden, "cls_mean": 2 * self.hidden}.get(pooling, self.pooler or 0)


class HfVision(Encoder):
    """Pooled last hidden states of a transformers vision backbone (DINOv2, ViT), offline only.

    Output: (n, hidden) float32 (768 for the base models; 2 x hidden for ``cls_mean``).
    """

    name = "hf_vision"
    modalities = ("image",)
    citation = ("Oquab et al., DINOv2: Learning Robust Visual Features without Supervision, TMLR 2024; "
                "Dosovitskiy et al., An Image is Worth 16x16 Words (ViT), ICLR 2021")
    parameters = (
        Param("model", str, "facebook/dinov2-base", "local folder or Hugging Face id in the local cache "
              "(never downloaded): a DINOv2 or ViT checkpoint with its preprocessor_config.json"),
        Param("pooling", str, "cls", "'cls': the class token; 'mean': the mean of the patch tokens (class "
              "and register tokens excluded); 'cls_mean': both concatenated (DINOv2's linear probe); "
              "'pooler': the model's pooler_output", choices=POOLINGS),
        Param("tokens", bool, False, "also return the patch tokens and a mask for attention fusions"),
        Param("batch_size", int, 32, "images per forward pass", min=1),
        Param("decode_workers", int, 2, "at most this many threads decode and preprocess images ahead of "
              "the forward pass, on cores torch's threads leave free (0: in the calling thread)", min=0),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        # cheap (stat calls): runs in `mmbench validate` too
        self.folder = resolve_model_folder(self.name, self.params["model"],
                                           needs=("config.json", "preprocessor_config.json"))

    # -- identity ---------------------------------------------------------------------

    def fingerprint(self) -> str:
        return stable_hash({
            "name": self.name,
            "files": folder_identity(self.folder),
            "params": {k: self.params[k] for k in ("pooling", "tokens")},
            "image_backend": BACKEND,
            "dtype": "float32",
            "transformers_major": transformers_major(),
        })

    # -- extraction -------------------------------------------------------------------

    def encode(self, modality: str, items: Any) -> Any:
        import torch

        from mmbench.data import Encoded, TokenSequence

        processor, model, layout = self._load()
        items = items if isinstance(items, np.ndarray) else list(items)
        n, batch_size, pooling = len(items), self.params["batch_size"], self.params["pooling"]
        vectors = np.zeros((n, layout.dim(pooling)), dtype=np.float32)
        token_values = token_mask = None
        if self.params["tokens"]:
            token_values = np.zeros((n, layout.patches, layout.hidden), dtype=np.float32)
            token_mask = np.zeros((n, layout.patches), dtype=bool)
        workers = decode_threads(self.params["decode_workers"], torch.get_num_threads())
        done = 0
        with torch.inference_mode():
            for rows, pixels in prepared_batches(items, batch_size, pixel_values(processor), workers):
                if rows:
                    outputs = model(pixel_values=stack(pixels, self.params["model"]).to(self.device))
                    vectors[rows] = pool_outputs(outputs, pooling, layout.prefix).float().cpu().numpy()
                    if token_values is not None:
                        patches = token_states(outputs.last_hidden_state)[:, layout.prefix:]
                        token_values[rows] = patches.float().cpu().numpy()
                        token_mask[rows] = True
                count = min(batch_size, n - done)  # missing items are encoded too (as zeros)
                done += count
                self.advance(count)
        if token_values is None:
            return vectors
        return Encoded(vectors, TokenSequence(token_values, token_mask))

    # -- fine-tuning ------------------------------------------------------------------

    def trainable(self, modality: str) -> TrainableEncoder:
        """A deep copy of the backbone (the cached model is never trained) that pools as
        ``encode`` does; ``prepare`` gives pixel values, ``augment`` applied to each PIL
        image before the processor, a missing image a blank (black) one."""
        import copy

        import torch

        processor, model, layout = self._load()
        backbone = copy.deepcopy(model).cpu().requires_grad_(True)
        model_id = self.params["model"]

        def prepare(items: Sequence[Any], augment: Augment | None = None) -> torch.Tensor:
            convert = pixel_values(processor, augment, blank_if_missing=True)
            return stack([convert(item) for item in items], model_id)

        pool = functools.partial(pool_outputs, pooling=self.params["pooling"], prefix=layout.prefix)
        return TrainableEncoder(_pooled_module(backbone, pool), layout.dim(self.params["pooling"]), prepare)

    def _load(self) -> tuple[Any, Any, Layout]:
        def load() -> tuple[Any, Any, Layout]:
            processor, model = _load_model(self.folder, self.params["model"])
            model = model.to(self.device)
            return processor, model, probe(processor, model, self.params["model"], self.device)

        processor, model, layout = _MODELS.get((folder_state(self.folder), self.device), load)
        check_pooling(layout, self.params["pooling"], self.params["model"])
        return processor, model, layout


# -- helpers --------------------------------------------------------------------------


def pixel_values(processor: Any, augment: Augment | None = None,
                 blank_if_missing: bool = False) -> Callable[[Any], np.ndarray | None]:
    """item -> the processor's (3, H, W) float32 pixel values (None for a missing item,
    or those of a black image with ``blank_if_missing``)."""
    from PIL import Image

    def convert(item: Any) -> np.ndarray | None:
        image = open_image(item)
        if image is None:
            if not blank_if_missing:
                return None
            image = Image.new("RGB", (224, 224))
        if augment is not None:
            image = augment(image)
        return processor(images=image, return_tensors="np")["pixel_values"][0]

    return convert


def stack(pixels: Sequence[np.ndarray], model_id: str) -> Any:
    """One (b, 3, H, W) float tensor; images of different sizes are a UserError (the
    processor must resize or crop to one size)."""
    import torch

    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:
        raise UserError(f"encoder 'hf_vision': the image processor of {model_id!r} gives images of "
                        f"different sizes {sorted(shapes)}; its preprocessor_config.json must resize or "
                        "center-crop to one size (do_center_crop with crop_size, or a fixed size)")
    return torch.from_numpy(np.stack(pixels)).float()


def token_states(last_hidden_state: Any) -> Any:
    """(b, T, d) tokens; a conv net's (b, d, h, w) grid becomes its h * w positions."""
    if last_hidden_state.ndim == 4:
        return last_hidden_state.flatten(2).transpose(1, 2)
    return last_hidden_state


def pool_outputs(outputs: Any, pooling: str, prefix: int) -> Any:
    """The model's outputs -> (b, dim): the one pooling extraction and training share."""
    import torch

    if pooling == "pooler":
        return outputs.pooler_output.flatten(1)
    tokens = token_states(outputs.last_hidden_state)
    if pooling == "cls":
        return tokens[:, 0]
    mean = tokens[:, prefix:].mean(dim=1)
    return mean if pooling == "mean" else torch.cat([tokens[:, 0], mean], dim=1)


def probe(processor: Any, model: Any, model_id: str, device: str) -> Layout:
    """Run one blank image to learn the output layout: widths, and how many leading
    tokens precede the patch grid (``patch_size`` from the config)."""
    import torch

    x = stack([pixel_values(processor, blank_if_missing=True)(None)], model_id)
    try:
        with torch.inference_mode():
            outputs = model(pixel_values=x.to(device))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"encoder 'hf_vision': {model_id!r} is not an image backbone AutoModel can run on "
                        f"pixel values ({str(exc)[:300]}); give a vision model such as "
                        "facebook/dinov2-base or google/vit-base-patch16-224-in21k") from None
    hidden_state = outputs.last_hidden_state
    tokens = token_states(hidden_state)
    prefix = 0
    patch = getattr(model.config, "patch_size", None)
    if hidden_state.ndim == 3 and patch:
        ph, pw = (patch, patch) if isinstance(patch, int) else patch
        grid = (x.shape[2] // ph) * (x.shape[3] // pw)
        prefix = max(tokens.shape[1] - grid, 0)  # hierarchical models (Swin) end below the grid: no CLS
    pooler = getattr(outputs, "pooler_output", None)
    return Layout(hidden=int(tokens.shape[2]), prefix=prefix, patches=int(tokens.shape[1]) - prefix,
                  pooler=None if pooler is None else int(pooler.flatten(1).shape[1]))


def check_pooling(layout: Layout, pooling: str, model_id: str) -> None:
    if pooling in ("cls", "cls_mean") and layout.prefix == 0:
        raise UserError(f"encoder 'hf_vision': {model_id!r} has no class token, so pooling {pooling!r} is "
                        "not defined; use pooling = \"mean\" or \"pooler\"")
    if pooling == "pooler" and layout.pooler is None:
        raise UserError(f"encoder 'hf_vision': {model_id!r} has no pooler; use pooling = \"cls\", \"mean\" "
                        "or \"cls_mean\"")


def _load_model(folder: Path, model_id: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoImageProcessor, AutoModel

    try:
        with quiet_loading():
            processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True, backend=BACKEND)
            model = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise UserError(f"encoder 'hf_vision' could not load {model_id!r} from {folder} ({str(exc)[:300]}); "
                        f"{how_to_download(model_id)}") from None
    model.eval()
    return processor, model


def _pooled_module(backbone: Any, pool: Callable[[Any], Any]) -> Any:
    """``backbone`` wrapped so ``module(pixel_values)`` gives the pooled (b, dim) vectors."""
    import torch

    class PooledVision(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return pool(self.backbone(pixel_values=pixel_values))

    return PooledVision()
