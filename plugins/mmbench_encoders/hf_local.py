"""Finding and identifying Hugging Face models offline: what every transformers-based
encoder shares.

A model is named by a local folder or by a hub id (``google/siglip-base-patch16-224``)
that must already be in the local Hugging Face cache (``$HF_HOME/hub``): nothing is ever
downloaded. When it is absent the error names the command that fetches it and where the
files must end up. An encoder's fingerprint covers the files that decide its vectors
(weights, config, tokenizer, image processor) by content hash, so the same files in
another folder give the same cache key and any changed file gives a new one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from mmbench.errors import UserError
from mmbench.files import file_state, sha256_file
from mmbench_encoders.versions import package_version

#: Weight files, by suffix; sharded checkpoints list every shard.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
#: Files besides the weights that change what a model computes from an input.
IDENTITY_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
    "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model",
    "special_tokens_map.json", "added_tokens.json", "preprocessor_config.json",
    "processor_config.json", "open_clip_config.json",
)


def resolve_model_folder(encoder: str, model: str, needs: tuple[str, ...] = ("config.json",)) -> Path:
    """The local folder holding ``model`` (a folder path or a hub id already in the local
    Hugging Face cache), checked to hold ``needs`` and some weights; else a UserError
    saying what to download and where to put it."""
    if not model:
        raise UserError(f"encoder {encoder!r}: set model to a local folder or a Hugging Face model id")
    path = Path(model).expanduser()
    if path.is_dir():
        folder, where = path, f"folder {str(path)!r}"
    elif path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise UserError(f"encoder {encoder!r}: model {model!r} is not a folder; give the folder that holds "
                        f"the model's files ({', '.join(needs)} and the weights) or a Hugging Face id")
    else:
        folder, where = _cached_snapshot(encoder, model), f"the cached copy of {model!r} ({{folder}})"
        where = where.format(folder=folder)
    missing = [name for name in needs if not (folder / name).is_file()]
    if not weight_files(folder):
        missing.append("weights (*.safetensors or pytorch_model.bin)")
    if missing:
        raise UserError(f"encoder {encoder!r}: {where} lacks {', '.join(missing)}; "
                        f"{how_to_download(model)}")
    return folder


def how_to_download(model: str) -> str:
    """Advice for getting a model's files onto a machine without network."""
    from huggingface_hub import constants

    return (f"on a machine with network run `hf download {model}` (or `huggingface-cli download "
            f"{model}`; gated models such as Llama-2 or MedSigLIP need their licence accepted on the "
            f"model page and `hf auth login` first), then copy its cache folder to "
            f"{constants.HF_HUB_CACHE} here, or download the files into a folder and set model to "
            "that folder's path")


def _cached_snapshot(encoder: str, model: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        raise UserError(f"encoder {encoder!r}: model {model!r} is not in the local Hugging Face cache "
                        f"and nothing is downloaded; {how_to_download(model)}") from None
    except HFValidationError as exc:
        raise UserError(f"encoder {encoder!r}: {model!r} is neither a folder nor a Hugging Face id "
                        f"({exc})") from None


def cached_file(repo: str, names: Iterable[str]) -> Path | None:
    """The first of ``names`` that the local Hugging Face cache holds for ``repo`` (nothing
    is downloaded), or None."""
    from huggingface_hub import try_to_load_from_cache

    for name in names:
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def weight_files(folder: Path) -> list[Path]:
    """The weight files in ``folder``: safetensors when there are any (transformers prefers
    them), else torch checkpoints."""
    safetensors = sorted(folder.glob("*.safetensors"))
    if safetensors:
        return safetensors
    return sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def folder_identity(folder: Path) -> dict[str, str]:
    """sha256 per file that decides the vectors (weights + config + tokenizer / image
    processor): the weights identity in a fingerprint. Hashed once per process per file."""
    files = {p.name: sha256_file(p) for p in weight_files(folder)}
    files.update({name: sha256_file(folder / name) for name in IDENTITY_FILES if (folder / name).is_file()})
    return files


def transformers_major() -> str:
    """The major version only: minor releases keep the forward passes the same; v5
    reworked the tokenizer backends, so a major change is a new fingerprint."""
    return package_version("transformers")


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No "Loading weights" progress bar per run: the suite has its own progress."""
    import transformers

    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()


def folder_state(folder: Path) -> tuple:
    """(path, size, mtime) of every file ``folder_identity`` hashes: a cheap key for the
    per-process model cache that changes whenever one of those files does."""
    files = weight_files(folder) + [folder / name for name in IDENTITY_FILES if (folder / name).is_file()]
    return tuple(file_state(path) for path in files)
