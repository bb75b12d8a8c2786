"""Paired image + text embeddings from open_clip models (CLIP ViT-B/32, SigLIP, BiomedCLIP,
...), one object for both modalities of one shared space, loaded from local files only.

Where the model comes from (``model``):

- a built-in open_clip architecture name (``ViT-B-32``, ``ViT-B-16-SigLIP``, see
  ``open_clip.list_models()``), with ``pretrained`` one of its tags (``openai``, ``webli``,
  ...): the tag's weights file must already be in the local Hugging Face cache
  (``$HF_HOME/hub``), or, for tags published only by URL, in open_clip's own download
  folder (``~/.cache/clip``);
- ``hf-hub:org/repo`` (BiomedCLIP): a repository already in the local Hugging Face cache;
- ``local-dir:/path`` or a plain folder path: a copy of such a repository
  (``open_clip_config.json``, ``open_clip_pytorch_model.bin`` or ``.safetensors``, and the
  tokenizer files if the config names an HF tokenizer).

``pretrained`` can also be a path to a weights file (for any of the above), ``""`` (a hub
or folder model's own weights) or ``"none"``: random initialisation, seeded, for tests and
benchmarks only, marked in the fingerprint so it never mixes with real vectors in a cache.
Nothing is ever downloaded: open_clip itself would try the network and, offline, fail
with "Failed to download weights for tag"; here every file is looked up first and a
missing one is a ``UserError`` naming what to download and where to put it, raised when
the encoder is made (so ``mmbench validate`` reports it).

Models whose text tower is a Hugging Face transformer (BiomedCLIP's PubMedBERT) need that
transformer's ``config.json`` to build it (not its weights: the open_clip checkpoint holds
them). It is read from the model's folder when there is one there, else from the local
Hugging Face cache; open_clip would fetch it from the hub. HF tokenizers are read the same
way (the model folder, else the cached tokenizer repository).

Two deliberate departures from a bare ``open_clip.create_model(name, pretrained=tag)``:
a tag's preprocessing (mean, std, interpolation, resize mode) is applied even when its
weights come from a file, and a tag trained with QuickGELU (``openai``) gets QuickGELU
(open_clip only warns about the mismatch, and the vectors are then slightly wrong).

Images go through open_clip's eval transform for the model (resize, crop or squash,
normalise), applied per item in ``batching.prepared_batches`` threads one batch ahead of
``model.encode_image``; texts through the model's tokenizer (``context_length`` tokens)
and ``model.encode_text``. Missing items (None / NaN) give zero rows.

This module imports only the standard library, numpy and mmbench at import time; open_clip
(and with it torch) is imported when an encoder is made, to read the model's config.

Fingerprint: the architecture config (for hub and folder models the sha256 of
``open_clip_config.json`` and the tokenizer files instead of their location), the weights
(sha256 of the file, or the random-init marker), QuickGELU, the image preprocessing, the
tokenizer (kind, context length, options), ``normalize``, the dtype and the open_clip
major version. Not included: paths (a copy elsewhere gives the same vectors),
``batch_size`` and ``decode_workers`` (float rounding only), and never the device.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError, did_you_mean
from mmbench.files import file_state, sha256_file
from mmbench.params import Param
from mmbench.plugin import Encoder, stable_hash
from mmbench.trainable import Augment, TrainableEncoder
from mmbench_encoders.batching import decode_threads, open_image, prepared_batches
from mmbench_encoders.hf_local import (
    IDENTITY_FILES,
    cached_file,
    how_to_download,
    resolve_model_folder,
)
from mmbench_encoders.model_cache import ModelCache
from mmbench_encoders.texts import text_or_none
from mmbench_encoders.versions import package_version

RANDOM_INIT = "none"
HUB_PREFIX = "hf-hub:"
LOCAL_PREFIX = "local-dir:"
#: open_clip's own order of preference for the weights in a model folder
FOLDER_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                  "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth", "model.safetensors",
                  "pytorch_model.bin", "pytorch_model.pth", "model.pth")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".npz")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")

#: (model, tokenizer) per weights identity + device, shared by a suite's runs in this process
_MODELS: ModelCache = ModelCache(2)


class OpenClip(Encoder):
    """Image and text embeddings of an open_clip model in one shared space, offline only.

    Output: (n, embed_dim) float32 per modality (512 for ViT-B-32 and BiomedCLIP, 768 for
    ViT-B-16-SigLIP), L2-normalised unless ``normalize = false``.
    """

    name = "open_clip"
    modalities = ("image", "text")
    shared_space = True
    citation = ("Ilharco et al., OpenCLIP, github.com/mlfoundations/open_clip; Radford et al., "
                "Learning Transferable Visual Models From Natural Language Supervision, ICML 2021")
    parameters = (
        Param("model", str, "ViT-B-32", "open_clip model: a built-in name (ViT-B-32, ViT-B-16-SigLIP, "
              "...), 'hf-hub:org/repo' already in the local Hugging Face cache, or a local copy of "
              "such a repository ('local-dir:/path' or a folder path)"),
        Param("pretrained", str, "openai", "a pretrained tag of a built-in model (openai, webli, ...; "
              "read from the local cache only), a weights file, '' for a hub / folder model's own "
              "weights, or 'none': random init, for tests and benchmarks only"),
        Param("normalize", bool, True, "L2-normalise each vector (cosines are what CLIP compares)"),
        Param("batch_size", int, 32, "images or texts per forward pass", min=1),
        Param("decode_workers", int, 2, "at most this many threads decode and preprocess images "
              "ahead of the forward pass, on cores torch's threads leave free (0: always in the "
              "calling thread)", min=0),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        model = self.params["model"].strip()
        pretrained = self.params["pretrained"].strip()
        self.folder = _model_folder(model, weights_needed=pretrained == "")
        tag_cfg: dict[str, Any] = {}
        if self.folder is not None:
            config = _read_folder_config(self.folder)
            self.model_cfg = config["model_cfg"]
            preprocess_overlay = config.get("preprocess_cfg", {})
        else:
            self.model_cfg = _builtin_config(model)
            if pretrained not in ("", RANDOM_INIT) and not _looks_like_path(pretrained):
                tag_cfg = _tag_config(model, pretrained)
            preprocess_overlay = tag_cfg
        self.weights_file = self._weights_file(model, pretrained, tag_cfg)
        self.quick_gelu = bool(self.model_cfg.get("quick_gelu") or tag_cfg.get("quick_gelu"))
        self.preprocess = _preprocess(self.model_cfg, preprocess_overlay)
        text_cfg = self.model_cfg.get("text_cfg", {})
        self.text_tower_dir = _hf_text_tower_dir(model, self.folder, text_cfg.get("hf_model_name"))
        self.tokenizer_dir = _hf_tokenizer_dir(model, self.folder, text_cfg.get("hf_tokenizer_name"))

    def _weights_file(self, model: str, pretrained: str, tag_cfg: dict[str, Any]) -> Path | None:
        if pretrained == RANDOM_INIT:
            return None
        if tag_cfg:
            return _cached_tag_file(model, pretrained, tag_cfg)
        if pretrained:
            path = Path(pretrained).expanduser()
            if not path.is_file() and self.folder is not None:
                raise UserError(f"encoder 'open_clip': pretrained {pretrained!r} is not an existing weights file; "
                                f"hf-hub: and folder models take pretrained = '' (their own weights), the path "
                                "of a weights file, or 'none' (pretrained tags are for built-in model names)")
            if not path.is_file():
                raise UserError(f"encoder 'open_clip': pretrained {pretrained!r} is neither a pretrained tag "
                                f"of {model!r} nor an existing weights file; give a tag "
                                f"({_tags(model)}), the path of a .safetensors / .bin / .pt file, or 'none'")
            return path
        if self.folder is None:
            raise UserError(f"encoder 'open_clip': built-in model {model!r} needs pretrained = a tag "
                            f"({_tags(model)}), a weights file, or 'none' (random init); '' is for "
                            "hf-hub: and folder models only")
        return _folder_weights(self.folder, model)

    # -- identity ---------------------------------------------------------------------

    def fingerprint(self) -> str:
        folder_files = {}
        if self.folder is not None:  # content, not location: config and tokenizer files
            folder_files = {name: sha256_file(self.folder / name) for name in IDENTITY_FILES
                            if (self.folder / name).is_file()}
        text_cfg = self.model_cfg.get("text_cfg", {})
        return stable_hash({
            "name": self.name,
            "model": self.params["model"] if self.folder is None else "folder",
            "architecture": self.model_cfg,
            "folder_files": folder_files,
            "weights": ({"random_init": True} if self.weights_file is None
                        else {"file_sha256": sha256_file(self.weights_file)}),
            "quick_gelu": self.quick_gelu,
            "preprocess": self.preprocess,
            "tokenizer": {"hf": text_cfg.get("hf_tokenizer_name") or "",
                          "context_length": text_cfg.get("context_length", 77),
                          "kwargs": text_cfg.get("tokenizer_kwargs", {}),
                          "files": ({} if self.tokenizer_dir is None or self.tokenizer_dir == self.folder
                                    else {name: sha256_file(self.tokenizer_dir / name) for name in TOKENIZER_FILES
                                          if (self.tokenizer_dir / name).is_file()})},
            "normalize": self.params["normalize"],
            "dtype": "float32",
            "open_clip_major": package_version("open_clip_torch"),
        })

    # -- extraction -------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self.model_cfg["embed_dim"])

    def encode(self, modality: str, items: Any) -> np.ndarray:
        if modality == "image":
            return self._encode_images(items)
        if modality == "text":
            return self._encode_texts(items)
        raise UserError(f"encoder 'open_clip' encodes image and text, not {modality!r}; "
                        f"give {modality!r} another [[encoders]] entry")

    def _encode_images(self, items: Any) -> np.ndarray:
        import torch

        model, _ = self.load_model()
        items = items if isinstance(items, np.ndarray) else list(items)
        n, batch_size = len(items), self.params["batch_size"]
        out = np.zeros((n, self.dim), dtype=np.float32)
        transform = self.image_transform()

        def prepare(item: Any) -> Any:
            image = open_image(item)
            return None if image is None else transform(image)

        workers = decode_threads(self.params["decode_workers"], torch.get_num_threads())
        with torch.inference_mode():
            batches = prepared_batches(items, batch_size, prepare, workers)
            for start, (rows, tensors) in zip(range(0, n, batch_size), batches):
                if rows:
                    x = torch.stack(tensors).to(self.device)
                    out[rows] = model.encode_image(x, normalize=self.params["normalize"]).float().cpu().numpy()
                self.advance(min(batch_size, n - start))
        return out

    def _encode_texts(self, items: Any) -> np.ndarray:
        import torch

        model, tokenizer = self.load_model()
        texts = [text_or_none(self.name, item, i) for i, item in enumerate(items)]
        present = [i for i, text in enumerate(texts) if text is not None]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batch_size = self.params["batch_size"]
        with torch.inference_mode():
            for start in range(0, len(present), batch_size):
                rows = present[start:start + batch_size]
                tokens = tokenizer([texts[i] for i in rows]).to(self.device)
                out[rows] = model.encode_text(tokens, normalize=self.params["normalize"]).float().cpu().numpy()
                self.advance(len(rows))
        if len(present) < len(texts):
            self.advance(len(texts) - len(present))
        return out

    def image_transform(self) -> Any:
        """open_clip's eval transform for this model: PIL image -> normalised (3, H, W) tensor."""
        from open_clip.transform import PreprocessCfg, image_transform_v2

        return image_transform_v2(PreprocessCfg(**self.preprocess), is_train=False)

    def logit_scale(self) -> float:
        model, _ = self.load_model()
        return float(model.logit_scale.detach().exp().item())

    def trainable(self, modality: str) -> TrainableEncoder:
        """A deep copy of the image tower (``visual``) or the text tower (the model without
        ``visual`` and its logit scale / bias), as a module whose ``forward(batch)`` returns
        (b, embed_dim) vectors exactly as ``encode`` computes them: L2-normalised when
        ``normalize`` is true. The copy is in eval mode; the fusion switches it to train."""
        if modality not in ("image", "text"):
            return super().trainable(modality)
        import torch

        model, tokenizer = self.load_model()
        if modality == "image":
            net = copy.deepcopy(model.visual)
            transform, side = self.image_transform(), _side(self.preprocess["size"])

            def prepare(items: Sequence[Any], augment: Augment | None = None) -> Any:
                from PIL import Image

                tensors = []
                for item in items:
                    image = open_image(item)
                    if image is None:  # a blank image keeps the rows aligned with the labels
                        image = Image.new("RGB", side)
                    if augment is not None:
                        image = augment(image)
                    tensors.append(transform(image))
                return torch.stack(tensors)
        else:
            # the memo makes deepcopy put None where the image tower and temperature were
            memo: dict[int, Any] = {id(model.visual): None}
            for name in ("logit_scale", "logit_bias"):
                if getattr(model, name, None) is not None:
                    memo[id(getattr(model, name))] = None
            net = copy.deepcopy(model, memo)

            def prepare(items: Sequence[Any], augment: Augment | None = None) -> Any:
                texts = [text_or_none(self.name, item, i) for i, item in enumerate(items)]
                return tokenizer([text if text is not None else "" for text in texts])

        net.requires_grad_(True)
        module = _tower_class()(net, modality, self.params["normalize"])
        return TrainableEncoder(module=module, dim=self.dim, prepare=prepare)

    # -- loading ----------------------------------------------------------------------

    def load_model(self) -> tuple[Any, Any]:
        """(model in eval mode on ``self.device``, tokenizer), cached per process."""
        key = (self.params["model"], str(self.folder), self.quick_gelu, stable_hash(self.model_cfg),
               file_state(self.weights_file) if self.weights_file else RANDOM_INIT, self.device)

        def load() -> tuple[Any, Any]:
            model, tokenizer = self._create()
            return model.to(self.device), tokenizer

        return _MODELS.get(key, load)

    def _create(self) -> tuple[Any, Any]:
        import open_clip
        import torch

        model_name = self.params["model"].strip()
        name = f"{LOCAL_PREFIX}{self.folder}" if self.folder is not None else model_name
        kwargs: dict[str, Any] = {}
        text_cfg = dict(self.model_cfg.get("text_cfg", {}))
        if self.text_tower_dir is not None:  # read the transformer's config locally, no weights
            kwargs["text_cfg"] = {**text_cfg, "hf_model_name": str(self.text_tower_dir),
                                  "hf_model_pretrained": False}
        try:
            with torch.random.fork_rng(devices=[]), _quiet_open_clip():
                torch.manual_seed(0)  # random init is the same in every process
                model = open_clip.create_model(
                    name, pretrained=None, load_weights=False, pretrained_image=False, pretrained_text=False,
                    force_quick_gelu=self.quick_gelu, force_preprocess_cfg=self.preprocess, **kwargs)
        except (RuntimeError, ValueError, KeyError, TypeError, OSError, AssertionError) as exc:
            raise UserError(f"encoder 'open_clip': could not build {model_name!r} "
                            f"({type(exc).__name__}: {str(exc)[:300]})") from None
        if self.weights_file is not None:
            try:
                open_clip.load_checkpoint(model, str(self.weights_file), strict=True, weights_only=True)
            except Exception as exc:  # noqa: BLE001 - wrong architecture, unreadable or unsafe (pickled) file
                raise UserError(f"encoder 'open_clip': cannot load the weights in {self.weights_file} into "
                                f"{model_name!r} ({type(exc).__name__}: {str(exc)[:300]}); the file must hold "
                                "open_clip weights for this architecture (.safetensors or a torch state "
                                "dict)") from None
        model.eval()
        return model, self._tokenizer(name, text_cfg)

    def _tokenizer(self, name: str, text_cfg: dict[str, Any]) -> Any:
        import open_clip
        from open_clip.tokenizer import HFTokenizer

        try:
            if self.tokenizer_dir is not None:
                return HFTokenizer(str(self.tokenizer_dir), context_length=text_cfg.get("context_length", 77),
                                   tokenizer_mode=text_cfg.get("tokenizer_mode"),
                                   **text_cfg.get("tokenizer_kwargs", {}))
            return open_clip.get_tokenizer(name)
        except Exception as exc:  # noqa: BLE001 - a tokenizer open_clip would fetch from the network
            raise UserError(f"encoder 'open_clip': cannot make the tokenizer of {self.params['model']!r} "
                            f"offline ({type(exc).__name__}: {str(exc)[:300]}); use a model whose tokenizer "
                            "files are local (a folder copy holding them)") from None


# -- helpers --------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """No "initialized randomly" warning from open_clip: the weights are loaded next."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(before)


@functools.cache
def _tower_class() -> type:
    """The module class of a trainable tower, made on first use (torch is imported lazily)."""
    import torch

    class OpenClipTower(torch.nn.Module):
        """One tower of an open_clip model: a prepared batch -> (b, embed_dim) vectors."""

        def __init__(self, net: Any, modality: str, normalize: bool):
            super().__init__()
            self.net, self.modality, self.normalize = net, modality, normalize

        def forward(self, batch: Any) -> Any:
            if self.modality == "image":
                out = self.net(batch)  # what CLIP.encode_image computes
            else:
                out = self.net.encode_text(batch)
            return torch.nn.functional.normalize(out, dim=-1) if self.normalize else out

    return OpenClipTower


def _looks_like_path(value: str) -> bool:
    return "/" in value or "\\" in value or value.startswith("~") or value.endswith(WEIGHT_SUFFIXES)


def _model_folder(model: str, weights_needed: bool) -> Path | None:
    """The folder of a hub or local model (None for a built-in name), checked to hold the
    open_clip config (and weights when they come from it)."""
    if model.startswith(HUB_PREFIX):
        repo = model[len(HUB_PREFIX):].strip("/")
        return resolve_model_folder("open_clip", repo, needs=("open_clip_config.json",))
    if model.startswith((LOCAL_PREFIX, "/", ".", "~")) or Path(model).expanduser().is_dir():
        raw = model[len(LOCAL_PREFIX):] if model.startswith(LOCAL_PREFIX) else model
        folder = Path(raw).expanduser()
        advice = ("it must hold open_clip_config.json and the weights (open_clip_pytorch_model.bin or "
                  ".safetensors), e.g. a copy of https://huggingface.co/microsoft/BiomedCLIP-PubMedBERT_256-"
                  "vit_base_patch16_224 made with `hf download <repo> --local-dir <folder>`")
        if not folder.is_dir():
            raise UserError(f"encoder 'open_clip': model folder {raw!r} does not exist; {advice}")
        if not (folder / "open_clip_config.json").is_file():
            raise UserError(f"encoder 'open_clip': model folder {raw!r} lacks open_clip_config.json; {advice}")
        if weights_needed:
            _folder_weights(folder, model)
        return folder
    return None


def _folder_weights(folder: Path, model: str) -> Path:
    """The weights file open_clip would pick in ``folder``, or a UserError."""
    for name in FOLDER_WEIGHTS:
        if (folder / name).is_file():
            return folder / name
    found = sorted((p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()),
                   key=lambda p: (p.suffix != ".safetensors", p.name))
    if found:
        return found[0]
    raise UserError(f"encoder 'open_clip': {folder} holds no weights (open_clip_pytorch_model.bin or "
                    f"open_clip_model.safetensors); download them from the model's repository into that "
                    f"folder, or set pretrained to a weights file or 'none' (model {model!r})")


def _read_folder_config(folder: Path) -> dict[str, Any]:
    path = folder / "open_clip_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"encoder 'open_clip': cannot read {path} ({exc})") from None
    if not isinstance(config, dict) or "model_cfg" not in config:
        raise UserError(f"encoder 'open_clip': {path} has no 'model_cfg'; it is not an open_clip model "
                        "config (the repository's open_clip_config.json is)")
    return config


def _builtin_config(model: str) -> dict[str, Any]:
    import open_clip

    name = model.replace("/", "-")
    config = open_clip.get_model_config(name)
    if config is None:
        raise UserError(f"encoder 'open_clip': unknown model {model!r}; {did_you_mean(name, open_clip.list_models())} "
                        "(or 'hf-hub:org/repo' for a Hugging Face model, or a local folder)")
    return config


def _tags(model: str) -> str:
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(model.replace("/", "-"))
    return "one of " + ", ".join(repr(t) for t in tags) if tags else "it has none in open_clip"


def _tag_config(model: str, tag: str) -> dict[str, Any]:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model.replace("/", "-"), tag)
    if not cfg:
        raise UserError(f"encoder 'open_clip': {tag!r} is not a pretrained tag of {model!r} (nor an existing "
                        f"file); give {_tags(model)}, a weights file, or 'none'")
    return dict(cfg)


def _cached_tag_file(model: str, tag: str, cfg: dict[str, Any]) -> Path:
    """The tag's weights in the local HF cache (the source open_clip prefers) or in
    open_clip's URL download folder, or a UserError saying what to download and where."""
    tried = []
    if cfg.get("file"):
        path = Path(cfg["file"]).expanduser()
        if path.is_file():
            return path
        tried.append(f"the file {cfg['file']}")
    if cfg.get("hf_hub"):
        from huggingface_hub import constants

        # "org/name/" means the default file; "org/name/file.bin" a named one
        repo, filename = cfg["hf_hub"].rsplit("/", 1)
        filename = filename or "open_clip_pytorch_model.bin"
        # open_clip tries a safetensors copy first
        if filename == "open_clip_pytorch_model.bin":
            names = ["open_clip_model.safetensors", filename]
        elif filename.endswith((".bin", ".pth")):
            names = [filename[:-4] + ".safetensors", filename]
        else:
            names = [filename]
        found = cached_file(repo, names)
        if found is not None:
            return found
        tried.append(f"https://huggingface.co/{repo} ({' or '.join(names)}) into the Hugging Face "
                     f"cache {constants.HF_HUB_CACHE} (`hf download {repo} {filename}` on a machine with "
                     "network, then copy the cache folder)")
    if cfg.get("url"):
        candidate = Path("~/.cache/clip").expanduser() / cfg["url"].rsplit("/", 1)[-1]
        if candidate.is_file():
            return candidate
        tried.append(f"{cfg['url']} to {candidate}")
    raise UserError(f"encoder 'open_clip': the {tag!r} weights of {model!r} are not in the local cache and "
                    "nothing is downloaded; download " + ", or ".join(tried) +
                    "; or save them to a file and set pretrained = \"/path/to/file\"")


def _preprocess(model_cfg: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """The image preprocessing open_clip would attach to the model: its defaults, the
    repository's or tag's values, the vision tower's input size."""
    from dataclasses import asdict

    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    merged = merge_preprocess_dict(asdict(PreprocessCfg()), overlay or {})
    merged["size"] = model_cfg.get("vision_cfg", {}).get("image_size", merged["size"])
    return {k: list(v) if isinstance(v, tuple) else v for k, v in merged.items()}


def _side(size: Any) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(width), int(height)


def _hf_text_tower_dir(model: str, folder: Path | None, hf_name: str | None) -> Path | None:
    """Where the config of an HF transformer text tower is read (None: not such a tower)."""
    if not hf_name:
        return None
    if folder is not None and _is_transformers_config(folder / "config.json"):
        return folder
    if Path(hf_name).expanduser().is_dir():
        return Path(hf_name).expanduser()
    from huggingface_hub import constants

    found = cached_file(hf_name, ["config.json"])
    if found is not None:
        return found.parent
    where = f"into the model folder {str(folder)!r} or " if folder is not None else ""
    raise UserError(f"encoder 'open_clip': the text tower of {model!r} is the Hugging Face model {hf_name!r}, "
                    f"whose config.json (only that file: the weights are in the open_clip checkpoint) is "
                    f"not local; download it {where}into the Hugging Face cache {constants.HF_HUB_CACHE} "
                    f"(`hf download {hf_name} config.json` on a machine with network)")


def _is_transformers_config(path: Path) -> bool:
    try:
        return path.is_file() and "model_type" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _hf_tokenizer_dir(model: str, folder: Path | None, hf_name: str | None) -> Path | None:
    """Where an HF tokenizer's files are read (None: open_clip's bundled tokenizer)."""
    if not hf_name:
        return None
    if folder is not None:  # open_clip reads a folder model's tokenizer from the folder
        if not any((folder / name).is_file() for name in TOKENIZER_FILES):
            raise UserError(f"encoder 'open_clip': {folder} lacks the tokenizer files ({', '.join(TOKENIZER_FILES[:3])}"
                            f", ...) of {hf_name!r}; copy them from the model's repository into that folder")
        return folder
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(hf_name, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        raise UserError(f"encoder 'open_clip': the tokenizer of {model!r} ({hf_name!r}) is not in the local "
                        f"Hugging Face cache and nothing is downloaded; {how_to_download(hf_name)}") from None
