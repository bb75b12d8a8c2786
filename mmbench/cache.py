"""The embedding cache: encoder outputs stored on disk, keyed by everything that makes them.

Extraction is the expensive step on a CPU, so each encoded split of a modality is kept as
one entry: ``<root>/embeddings/<key>/`` holds ``vectors.npy`` (and ``token_values.npy`` /
``token_mask.npy`` when the encoder returns token sequences) plus ``manifest.json`` with
each array's shape, dtype and sha256, the extraction seconds per sample, the encoder's
name / version / fingerprint, the creation time and the cache format version.

- Key: hash of the cache format version, the dataset identity and fingerprint, the sample
  ids, the modality, the encoder's name, version and ``fingerprint()``, and for
  ``fitted`` encoders the train split's sample ids. A change to any of them is a miss.
- Safe format: ``.npy`` written with ``allow_pickle=False`` and read the same way.
- Writes are atomic (temporary file + rename), the manifest last. Readers and writers of
  one key serialise on ``<root>/locks/<key>.lock`` with ``fcntl.flock`` (shared to read,
  exclusive to write or remove), so concurrent runs (``--workers``, several shells) can
  write the same key and leave one valid entry. Locks are advisory and need a local
  file system (or one with working flock, e.g. NFSv4); Linux and macOS only.
- A corrupt entry (missing manifest, unreadable or truncated array, shape / dtype /
  checksum mismatch) is reported with a ``CacheWarning``, removed and recomputed.
- Location: ``$MMBENCH_CACHE``, else ``$XDG_CACHE_HOME/mmbench``, else
  ``~/.cache/mmbench``; never inside the package.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.data import Encoded, TokenSequence
from mmbench.files import write_bytes_atomic, write_text_atomic
from mmbench.plugin import stable_hash

#: Bump when the layout or the key changes: every older entry becomes a miss.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class CacheWarning(UserWarning):
    """A cache entry could not be used (corrupt, unreadable) or written; the run goes on."""


def cache_root() -> Path:
    """``$MMBENCH_CACHE``, else ``$XDG_CACHE_HOME/mmbench``, else ``~/.cache/mmbench``."""
    explicit = os.environ.get("MMBENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mmbench"


def ids_digest(ids: Sequence[Any] | np.ndarray) -> str:
    """sha256 of sample ids in order (the order of the rows the vectors belong to)."""
    digest = hashlib.sha256()
    for sample_id in np.asarray(ids).astype(str):
        digest.update(sample_id.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def entry_key(*, dataset: dict[str, Any], ids: Sequence[Any] | np.ndarray, modality: str,
              encoder: dict[str, Any], train_ids: Sequence[Any] | np.ndarray | None = None) -> str:
    """The key of one encoded set of samples.

    ``dataset``: the dataset's identity and fingerprint; ``encoder``: name, version and
    ``fingerprint()``; ``train_ids``: only for ``fitted`` encoders, whose vectors depend on
    the train split they were fitted on."""
    return stable_hash({
        "format_version": FORMAT_VERSION,
        "dataset": dataset,
        "ids": ids_digest(ids),
        "modality": modality,
        "encoder": encoder,
        "train_ids": None if train_ids is None else ids_digest(train_ids),
    }, length=32)


@dataclass
class Hit:
    encoded: Encoded
    manifest: dict[str, Any]

    @property
    def s_per_sample(self) -> float:
        return float(self.manifest.get("extract_s_per_sample") or 0.0)


@dataclass
class Entry:
    """One entry as ``mmbench cache ls`` shows it; ``manifest`` is None when unreadable."""

    key: str
    path: Path
    manifest: dict[str, Any] | None
    size_bytes: int

    @property
    def created(self) -> datetime:
        if self.manifest is not None:
            try:
                return datetime.fromisoformat(self.manifest["created"])
            except (KeyError, TypeError, ValueError):
                pass
        return datetime.fromtimestamp(self.path.stat().st_mtime, UTC)


class CorruptEntry(Exception):
    pass


class EmbeddingCache:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_root()

    @property
    def entries_dir(self) -> Path:
        return self.root / "embeddings"

    def path(self, key: str) -> Path:
        return self.entries_dir / key

    @contextmanager
    def _lock(self, key: str, exclusive: bool) -> Iterator[None]:
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # -- read ---------------------------------------------------------------------------
    def get(self, key: str) -> Hit | None:
        """The entry's arrays, verified; None on a miss. A corrupt entry is reported with
        a ``CacheWarning`` and removed, so the caller recomputes it."""
        if not self.path(key).exists():
            return None
        try:
            with self._lock(key, exclusive=False):
                return self._read(key)
        except CorruptEntry as exc:
            warnings.warn(f"embedding cache entry {key} in {self.entries_dir} is corrupt ({exc}); "
                          "recomputing it", CacheWarning, stacklevel=2)
            try:
                self.remove(key)
            except OSError:
                pass  # the next put overwrites it
            return None
        except OSError as exc:
            warnings.warn(f"embedding cache entry {key} is unreadable ({exc}); recomputing it",
                          CacheWarning, stacklevel=2)
            return None

    def _read(self, key: str) -> Hit:
        folder = self.path(key)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            raise CorruptEntry("manifest missing") from None
        except (OSError, ValueError) as exc:
            raise CorruptEntry(f"manifest unreadable: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION \
                or manifest.get("key") != key or "vectors" not in manifest.get("arrays", {}):
            raise CorruptEntry("manifest does not describe this entry")
        arrays = {name: _load_checked(folder, name, info) for name, info in manifest["arrays"].items()}
        tokens = None
        if "token_values" in arrays or "token_mask" in arrays:
            if not {"token_values", "token_mask"} <= set(arrays):
                raise CorruptEntry("token values without a mask, or a mask without values")
            tokens = TokenSequence(arrays["token_values"], arrays["token_mask"])
        try:
            encoded = Encoded(arrays["vectors"], tokens)
        except ValueError as exc:
            raise CorruptEntry(str(exc)) from None
        return Hit(encoded, manifest)

    # -- write --------------------------------------------------------------------------
    def put(self, key: str, encoded: Encoded, s_per_sample: float, meta: dict[str, Any]) -> bool:
        """Store ``encoded`` under ``key`` (atomically, under the key's lock). A failure
        to write (read-only or full disk) is a ``CacheWarning``, never a failed run."""
        arrays = {"vectors": encoded.vectors}
        if encoded.tokens is not None:
            arrays["token_values"] = encoded.tokens.values
            arrays["token_mask"] = encoded.tokens.mask
        described = {name: {"file": f"{name}.npy", "shape": list(a.shape), "dtype": str(a.dtype),
                            "sha256": _checksum(a)} for name, a in arrays.items()}
        vectors = described["vectors"]
        manifest = {
            "format_version": FORMAT_VERSION,
            "key": key,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "shape": vectors["shape"],
            "dtype": vectors["dtype"],
            "sha256": vectors["sha256"],
            "extract_s_per_sample": float(s_per_sample),
            **meta,
            "arrays": described,
        }
        folder = self.path(key)
        try:
            with self._lock(key, exclusive=True):
                folder.mkdir(parents=True, exist_ok=True)
                # no manifest while the arrays change: a crash in between leaves a detectable entry
                (folder / MANIFEST).unlink(missing_ok=True)
                for name, array in arrays.items():
                    buffer = io.BytesIO()
                    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
                    write_bytes_atomic(folder / f"{name}.npy", buffer.getvalue())
                for stale in {p.name for p in folder.glob("*.npy")} - {f"{n}.npy" for n in arrays}:
                    (folder / stale).unlink(missing_ok=True)
                write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            warnings.warn(f"could not write embedding cache entry {key} in {self.entries_dir}: {exc}",
                          CacheWarning, stacklevel=2)
            return False
        return True

    # -- manage -------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        if not self.entries_dir.is_dir():
            return []
        out = []
        for folder in sorted(self.entries_dir.iterdir()):
            if not folder.is_dir():
                continue
            try:
                manifest = json.loads((folder / MANIFEST).read_text())
                manifest = manifest if isinstance(manifest, dict) else None
            except (OSError, ValueError):
                manifest = None
            out.append(Entry(folder.name, folder, manifest, _folder_size(folder)))
        return out

    def remove(self, key: str) -> int:
        """Delete one entry (under its lock); returns the bytes freed."""
        folder = self.path(key)
        size = 0
        with self._lock(key, exclusive=True):
            if folder.is_dir():
                size = _folder_size(folder)
                shutil.rmtree(folder, ignore_errors=True)
        # the lock file stays: deleting it could let two writers lock different files
        return size


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _checksum(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _load_checked(folder: Path, name: str, info: dict[str, Any]) -> np.ndarray:
    path = folder / f"{name}.npy"
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CorruptEntry(f"{path.name} unreadable: {exc}") from None
    if list(array.shape) != info.get("shape") or str(array.dtype) != info.get("dtype"):
        raise CorruptEntry(f"{path.name} is {array.dtype} {list(array.shape)}, the manifest says "
                           f"{info.get('dtype')} {info.get('shape')}")
    if _checksum(array) != info.get("sha256"):
        raise CorruptEntry(f"{path.name} checksum mismatch")
    return array
