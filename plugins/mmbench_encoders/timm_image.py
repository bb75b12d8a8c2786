"""Image embeddings from any timm model (ResNet, VGG, ViT, ...): the pooled features
before the classifier (``num_classes=0``), loaded from local files only.

Weights (``weights``):

- a path to a local file: ``.safetensors``, or a torch state dict / checkpoint (read with
  ``torch.load(weights_only=True)``; ``state_dict`` / ``model`` / EMA wrappers and a
  ``module.`` prefix are unwrapped as timm does). Classifier weights in it are dropped.
- ``""`` (the default): the model's pretrained timm weights, taken from an EXISTING local
  Hugging Face hub cache (``$HF_HOME/hub``) or torch hub cache
  (``$TORCH_HOME/hub/checkpoints``). Nothing is downloaded; when the file is absent the
  encoder raises a ``UserError`` naming the file to fetch and where to put it.
- ``"none"``: random initialisation (seeded, so the same in every process). For tests and
  benchmarks only: the vectors mean nothing, and their fingerprint is marked so they never
  mix with real ones in a cache.

Items are what the other image encoders take (``mmbench_encoders.image.to_rgb``): file
paths, PIL images, H x W (x 3 / x 4) arrays; missing items give zero vectors. Each image
is resized (shorter side to ``image_size / crop_pct``, the model's interpolation) and
center-cropped to ``image_size`` with timm's own eval transform for the model, then
normalised with the model's mean and std (``timm.data.resolve_data_config``). Decoding,
resizing and cropping run in a small thread pool (Pillow releases the GIL) one batch
ahead of the forward pass when torch's threads leave cores free (``decode_threads``),
else in the calling thread; normalisation is one vectorised step per batch, fed to the
model in channels-last layout under ``torch.inference_mode()``.

This module imports only numpy and mmbench at import time; timm and torch are imported
when an encoder is made (to read the model's pretrained config) or run.

Fingerprint: name, model (with the resolved pretrained tag for ``""``), the weights
identity (sha256 of the file; for ``"none"`` a random-init marker), image_size, the
preprocessing (resize side, crop, interpolation, mean, std), the pooling and the timm
major version. Not included: the path of the weights file (a copy elsewhere gives the
same vectors), ``batch_size`` and ``decode_workers`` (vectors differ by float rounding
only), and never the device.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError, did_you_mean
from mmbench.files import file_state, sha256_file
from mmbench.params import Param
from mmbench.plugin import Encoder, stable_hash
from mmbench_encoders.batching import decode_threads, open_image, prepared_batches
from mmbench_encoders.hf_local import cached_file
from mmbench_encoders.model_cache import ModelCache
from mmbench_encoders.versions import package_version

#: loaded models per file state + device, shared by a suite's runs in this process
_MODELS: ModelCache = ModelCache(2)
RANDOM_INIT = "none"


class TimmImage(Encoder):
    """Pooled features of a timm image model (``num_classes=0``), offline only.

    Output: (n, num_features) float32, e.g. 512 for resnet18/34, 2048 for resnet50, 768
    for vit_base_patch16_224 (``pooling = "default"``: the model's own global pool).
    """

    name = "timm"
    modalities = ("image",)
    citation = "Wightman, PyTorch Image Models (timm), github.com/huggingface/pytorch-image-models"
    parameters = (
        Param("model", str, "resnet50", "timm model name, optionally with a pretrained tag "
              "(resnet18, resnet50.a1_in1k, vgg16, vit_base_patch16_224, ...)"),
        Param("weights", str, "", "local weights file (.safetensors or a torch state dict); "
              "empty: the pretrained weights from the local timm / Hugging Face cache (never "
              "downloaded); 'none': random init, for tests and benchmarks only"),
        Param("image_size", int, 0, "side of the square model input; 0: the model's pretrained "
              "input size (224 for most)", min=0),
        Param("batch_size", int, 32, "images per forward pass", min=1),
        Param("pooling", str, "default", "global pooling of the final feature map: 'default' (the "
              "model's own), or a timm global_pool such as 'avg', 'max', 'avgmax', 'token'"),
        Param("decode_workers", int, 2, "at most this many threads decode and resize images "
              "ahead of the forward pass, on cores torch's threads leave free (0: always in the "
              "calling thread)", min=0),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        import timm
        from timm.data import resolve_data_config

        model = self.params["model"]
        if not timm.is_model(model):
            raise UserError(f"encoder 'timm': unknown model {model!r}; "
                            f"{did_you_mean(model, timm.list_models())}")
        try:
            cfg = timm.models.get_pretrained_cfg(model, allow_unregistered=True)
        except RuntimeError as exc:  # an unknown pretrained tag
            raise UserError(f"encoder 'timm': {exc}; timm.list_pretrained({model.split('.')[0] + '*'!r}) "
                            "lists the tags") from None
        self.pretrained_cfg = dict(cfg.to_dict()) if cfg is not None else {}
        weights = self.params["weights"]
        self.weights_file: Path | None = None
        if weights == RANDOM_INIT:
            self.weights_identity = {"random_init": True}
        elif weights:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise UserError(f"encoder 'timm': weights file {weights!r} does not exist; give the path "
                                "of a .safetensors or torch state-dict file for model "
                                f"{model!r}, '' for the cached pretrained weights, or 'none'")
            self.weights_file = path
            self.weights_identity = {"file_sha256": None}  # filled lazily by fingerprint()
        else:
            self.weights_file = _cached_pretrained_file(model, self.pretrained_cfg)
            self.weights_identity = {"pretrained": self.pretrained_cfg.get("hf_hub_id") or
                                     f"{self.pretrained_cfg.get('architecture')}.{self.pretrained_cfg.get('tag')}",
                                     "file_sha256": None}
        size = self.params["image_size"] or int((self.pretrained_cfg.get("input_size") or (3, 224, 224))[-1])
        self.image_size = size
        config = resolve_data_config({"input_size": (3, size, size)}, pretrained_cfg=self.pretrained_cfg
                                     or {"input_size": (3, size, size)})
        self.data_config = config
        scale = math.floor(size / config["crop_pct"]) if config.get("crop_mode", "center") == "center" else size
        self.preprocessing = {"resize_shorter_side": scale, "crop": config.get("crop_mode", "center"),
                              "crop_size": size, "interpolation": config["interpolation"],
                              "mean": [float(v) for v in config["mean"]],
                              "std": [float(v) for v in config["std"]]}

    # -- identity ---------------------------------------------------------------------

    def fingerprint(self) -> str:
        identity = dict(self.weights_identity)
        if self.weights_file is not None:
            identity["file_sha256"] = sha256_file(self.weights_file)
        return stable_hash({
            "name": self.name,
            "model": self.params["model"],
            "weights": identity,
            "image_size": self.image_size,
            "preprocessing": self.preprocessing,
            "pooling": self.params["pooling"],
            "dtype": "float32",
            "timm_major": package_version("timm"),
        })

    # -- extraction -------------------------------------------------------------------

    def encode(self, modality: str, items: Any) -> np.ndarray:
        import torch

        model = self.load_model()
        items = list(items) if not isinstance(items, np.ndarray) else items
        out = np.zeros((len(items), int(model.num_features)), dtype=np.float32)
        workers = decode_threads(self.params["decode_workers"], torch.get_num_threads())
        batch_size = self.params["batch_size"]
        with torch.inference_mode():
            for k, (rows, crops) in enumerate(prepared_batches(items, batch_size, self.image_transform(),
                                                               workers)):
                if rows:
                    x = self.to_tensor(crops).to(self.device)
                    out[rows] = model(x).float().cpu().numpy()
                self.advance(min(batch_size, len(items) - k * batch_size))  # missing items count too
        return out

    def image_transform(self) -> Any:
        """item -> the resized, center-cropped H x W x 3 uint8 array (or None if missing):
        timm's eval transform for the model up to (not including) the tensor conversion."""
        from timm.data import create_transform

        compose = create_transform(**self.data_config, is_training=False)
        steps = []
        for step in compose.transforms:
            if type(step).__name__ in ("MaybeToTensor", "ToTensor", "Normalize", "MaybePILToTensor",
                                       "PILToTensor", "ToNumpy"):
                break
            steps.append(step)

        def prepare(item: Any) -> np.ndarray | None:
            image = open_image(item)
            if image is None:
                return None
            for step in steps:
                image = step(image)
            return np.asarray(image)

        return prepare

    def to_tensor(self, crops: list[np.ndarray]) -> Any:
        """Stacked uint8 crops -> a normalised float (b, 3, H, W) batch in channels-last
        layout (the permuted uint8 view already is; one conversion, one fused normalise)."""
        import torch

        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)  # NCHW view, NHWC memory
        mean = torch.tensor(self.preprocessing["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocessing["std"], dtype=torch.float32).view(1, 3, 1, 1)
        x = batch.to(torch.float32, memory_format=torch.channels_last)
        return x.mul_(1.0 / (255.0 * std)).sub_(mean / std)

    def load_model(self) -> Any:
        """The model (eval mode, channels-last, classifier removed, on ``self.device``),
        cached per process."""
        key = (self.params["model"], self.params["pooling"], self.image_size, self.device,
               *(file_state(self.weights_file) if self.weights_file else (self.params["weights"],)))
        return _MODELS.get(key, lambda: self._create().to(self.device))

    def trainable(self, modality: str) -> Any:
        """A copy of the extraction model in train mode, whose ``prepare`` is the extraction
        preprocessing with the fusion's augmentation inserted after decoding: an untrained
        copy in eval mode gives exactly the vectors ``encode`` gives. The cached model is
        never handed out, so fine-tuning cannot change what later runs extract."""
        import copy

        from PIL import Image

        from mmbench.trainable import TrainableEncoder

        if modality != "image":
            return super().trainable(modality)
        module = copy.deepcopy(self.load_model()).train()
        transform = self.image_transform()

        def prepare(items: Any, augment: Any = None) -> Any:
            crops = []
            for item in items:
                image = open_image(item)
                if image is None:  # a blank row keeps the batch aligned; the fusion masks it
                    image = Image.new("RGB", (self.image_size, self.image_size))
                crops.append(transform(augment(image) if augment is not None else image))
            return self.to_tensor(crops)

        return TrainableEncoder(module=module, dim=int(module.num_features), prepare=prepare)

    def _create(self) -> Any:
        import timm
        import torch

        kwargs: dict[str, Any] = {"num_classes": 0}
        if self.params["pooling"] != "default":
            kwargs["global_pool"] = self.params["pooling"]
        if self.pretrained_cfg.get("fixed_input_size") and self.params["image_size"]:
            kwargs["img_size"] = self.image_size  # ViTs: position embeddings sized for the input
        model_name = self.params["model"]
        if self.weights_file is None:  # random init, seeded: the same vectors in every process
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    model = timm.create_model(model_name, pretrained=False, **kwargs)
            except (RuntimeError, ValueError, KeyError, AssertionError, TypeError) as exc:
                raise UserError(f"encoder 'timm': could not build {model_name!r} with pooling "
                                f"{self.params['pooling']!r} ({str(exc)[:300]})") from None
        else:
            state = _load_state_dict(self.weights_file, self.pretrained_cfg)
            try:
                model = timm.create_model(model_name, pretrained=True, **kwargs,
                                          pretrained_cfg_overlay={"state_dict": state, "num_classes": 0})
            except (RuntimeError, ValueError, KeyError, AssertionError, TypeError) as exc:
                raise UserError(f"encoder 'timm': could not build {model_name!r} (pooling "
                                f"{self.params['pooling']!r}) with the weights in {self.weights_file} "
                                f"({str(exc)[:300]}); the file must hold weights for this "
                                "architecture") from None
        model.eval()
        return model.to(memory_format=torch.channels_last)


# -- helpers --------------------------------------------------------------------------


def _cached_pretrained_file(model: str, cfg: dict) -> Path:
    """The model's pretrained weights in the local HF hub or torch hub cache, or a
    UserError saying what to download and where to put it."""
    hub_id, url = cfg.get("hf_hub_id"), cfg.get("url")
    if not hub_id and not url:
        raise UserError(f"encoder 'timm': model {model!r} has no pretrained weights in timm; give a "
                        "weights file (weights = \"/path/to/file.safetensors\")")
    tried = []
    if hub_id:
        from huggingface_hub import constants

        names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else \
            ["model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin"]
        found = cached_file(hub_id, names)
        if found is not None:
            return found
        tried.append(f"https://huggingface.co/{hub_id} ({names[0]}) into the Hugging Face cache "
                     f"{constants.HF_HUB_CACHE} (e.g. `huggingface-cli download {hub_id}` on a "
                     "machine with network, then copy the cache folder)")
    if url:
        import torch.hub

        candidate = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        if candidate.is_file():
            return candidate
        tried.append(f"{url} to {candidate}")
    raise UserError(f"encoder 'timm': the pretrained weights of {model!r} are not in the local cache "
                    f"and nothing is downloaded; download " + ", or ".join(tried) +
                    "; or save them to a file and set weights = \"/path/to/file\"")


def _load_state_dict(path: Path, cfg: dict) -> dict:
    """timm's checkpoint reader (safetensors, or torch.load(weights_only=True)), with the
    classifier removed (the features come from before it)."""
    from timm.models import load_state_dict

    try:
        state = load_state_dict(str(path), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable, unsafe (pickled objects), safetensors errors
        raise UserError(f"encoder 'timm': cannot read weights file {str(path)!r} ({type(exc).__name__}: "
                        f"{str(exc)[:200]}); give a .safetensors file or a torch state dict") from None
    heads = cfg.get("classifier") or ()
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    return {k: v for k, v in state.items() if not any(k.startswith(h + ".") for h in heads)}
