"""The embedding cache: encoder outputs stored on disk, keyed by everything that makes them.

Extraction is the expensive step on a CPU, so nothing is encoded twice. Two kinds of entry,
each a folder ``<root>/embeddings/<key>/`` with a ``manifest.json``:

- **Sample stores** (encoders that are not ``fitted``: CLIP, DINOv2, MiniLM, colour
  histograms): a sample's vector cannot depend on the split, so one entry per (dataset
  name / version / params, modality, encoder name / version / ``fingerprint()``) keeps
  the vectors of every sample ever encoded, addressed by sample id and a digest of the
  sample's item (``mmbench.item_identity``), not by the dataset's fingerprint. A run
  gathers its split's rows and encodes only what the store lacks: a new seed, split or
  suite encodes nothing new; samples added to the dataset, or edited, are encoded, the
  rest is gathered (an edited sample's old row stays, unread, until ``mmbench cache rm``). The store grows by append-only *chunks*: ``chunk-<n>-<tag>.ids.npy``,
  ``.vectors.npy`` (and ``.token_values.npy`` / ``.token_mask.npy``), each file with its
  sha256 in the manifest, which is replaced atomically after the chunk's files are in
  place. An append is O(new rows), and a writer killed at any point leaves the previous
  manifest, so the previous complete state, readable; its debris is removed by the next
  append. Reads memory-map the chunks and copy only the rows asked for.
- **Split entries** (``fitted`` encoders: TF-IDF, scalers, whose vectors depend on the
  train split): one entry per encoded split, keyed also by its sample ids and the train
  split's ids; ``vectors.npy`` (+ token arrays) and the manifest.

Common to both:
- Safe format: ``.npy`` written with ``allow_pickle=False`` and read the same way.
- Writes are atomic (temporary file + rename), the manifest last. Readers and writers of
  one key serialise on ``<root>/locks/<key>.lock`` with ``fcntl.flock`` (shared to read,
  exclusive to write or remove), so concurrent runs (``--workers``, Dask workers, several
  shells) can fill one key and end with the union of what each wrote. Locks are advisory
  and need a local file system (or one with working flock, e.g. NFSv4); Linux and macOS
  only. A cache that is not writable (shared, mounted read-only) is read without the lock.
- A corrupt entry or chunk (missing manifest, unreadable or truncated array, shape / dtype /
  checksum mismatch) is reported with a ``CacheWarning``, removed and recomputed.
- ``FORMAT_VERSION`` is part of every key: entries of an older format are never read (they
  stay listed by ``mmbench cache ls`` until ``mmbench cache rm`` removes them).
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
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.data import Encoded, TokenSequence
from mmbench.files import sha256_file, write_bytes_atomic, write_text_atomic
from mmbench.hashing import stable_hash

#: Bump when the layout or the key changes: every older entry becomes a miss.
#: 2: sample stores for unfitted encoders (chunks addressed by sample id).
#: 3: store rows addressed by sample id and item digest; the store key leaves out the
#:    dataset fingerprint (a grown dataset keeps its store).
FORMAT_VERSION = 3
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


def store_key(*, dataset: dict[str, Any], modality: str, encoder: dict[str, Any]) -> str:
    """The key of one sample store (an unfitted encoder's vectors of one dataset and
    modality): no sample ids, so every split, seed and suite shares it, and no dataset
    fingerprint, so adding samples keeps it (rows are addressed by sample id and item
    digest: an edited sample is a new row)."""
    dataset = {k: v for k, v in dataset.items() if k != "fingerprint"}
    return stable_hash({"format_version": FORMAT_VERSION, "layout": "samples", "dataset": dataset,
                        "modality": modality, "encoder": encoder}, length=32)


@dataclass
class StoreRows:
    """What a sample store holds of the ids asked for."""

    #: per id asked: whether the store holds it
    found: np.ndarray
    #: the found ids' rows, in the order asked; None when none is found
    encoded: Encoded | None
    #: per found row: the extraction seconds measured when it was encoded
    s_per_sample: np.ndarray


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
        """When the entry was written; for a sample store, its last append (what
        ``mmbench cache rm --older-than`` ages it by: a store a run added to is in use)."""
        if self.manifest is not None:
            try:
                return datetime.fromisoformat(self.manifest.get("updated") or self.manifest["created"])
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
        """The key's flock: exclusive to write or remove, shared to read. A reader of a
        cache it cannot write (shared, mounted read-only) reads without it: no writer can
        change such a cache under it, and opening the lock file would fail."""
        locks = self.root / "locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            if exclusive:
                raise
            fd = None
        if fd is None:
            yield
            return
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
        except (CorruptEntry, OSError) as exc:
            self._unusable("embedding cache entry", key, exc)
            return None

    def _read(self, key: str) -> Hit:
        folder = self.path(key)
        manifest = _read_manifest(folder)
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
                    _save_npy(folder / f"{name}.npy", array)
                for stale in {p.name for p in folder.glob("*.npy")} - {f"{n}.npy" for n in arrays}:
                    (folder / stale).unlink(missing_ok=True)
                _write_manifest(folder, manifest)
        except OSError as exc:
            warnings.warn(f"could not write embedding cache entry {key} in {self.entries_dir}: {exc}",
                          CacheWarning, stacklevel=2)
            return False
        return True

    # -- sample stores ------------------------------------------------------------------
    def gather(self, key: str, ids: Sequence[Any] | np.ndarray) -> StoreRows:
        """The rows the store ``key`` holds for ``ids`` (verified; memory-mapped, so only
        the rows asked for are read into memory). A corrupt chunk is reported with a
        ``CacheWarning`` and dropped: its ids come back not found, so the caller encodes and
        appends them again. A corrupt manifest drops the whole store the same way."""
        ids = np.asarray(ids).astype(str)
        nothing = StoreRows(np.zeros(len(ids), dtype=bool), None, np.zeros(0))
        if not (self.path(key) / MANIFEST).exists():
            return nothing  # never appended to, or its first append was killed
        corrupt: list[tuple[str, str]] = []
        try:
            with self._lock(key, exclusive=False):
                manifest = self._store_manifest(key)
                rows = self._gather(self.path(key), manifest, ids, corrupt)
        except (CorruptEntry, OSError) as exc:
            self._unusable("embedding store", key, exc)
            return nothing
        for name, reason in corrupt:
            self._warn_corrupt(f"chunk {name} of embedding store {key} in {self.entries_dir} is corrupt "
                               f"({reason}); recomputing its rows")
        if corrupt:
            self._drop_chunks(key, {name for name, _ in corrupt})
        return rows

    def held(self, key: str, ids: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Which of ``ids`` the store ``key`` holds, from its ids alone (no vectors read, no
        warning: what ``mmbench run --dry-run`` counts; ``gather`` verifies the rest)."""
        ids = np.asarray(ids).astype(str)
        held: set[str] = set()
        try:
            with self._lock(key, exclusive=False):
                for chunk in self._store_manifest(key)["chunks"]:
                    held.update(_load_chunk_array(self.path(key), chunk, "ids").tolist())
        except (OSError, CorruptEntry):
            pass
        return np.fromiter((sample in held for sample in ids), dtype=bool, count=len(ids))

    def append(self, key: str, ids: Sequence[Any] | np.ndarray, encoded: Encoded, s_per_sample: float,
               meta: dict[str, Any]) -> bool:
        """Add the rows of ``ids`` the store does not hold yet as one new chunk (under the
        key's exclusive lock, so concurrent appenders end with the union). The chunk's files
        are written first, the manifest replaced last: a writer killed at any point leaves
        the previous state readable. A failure to write is a ``CacheWarning``."""
        ids = np.asarray(ids).astype(str)
        folder = self.path(key)
        try:
            with self._lock(key, exclusive=True):
                try:
                    manifest = self._store_manifest(key) if (folder / MANIFEST).exists() else None
                except CorruptEntry:
                    manifest = None  # gather() warned about it; start again
                    shutil.rmtree(folder, ignore_errors=True)
                if manifest is None:
                    manifest = {"format_version": FORMAT_VERSION, "key": key, "layout": "samples",
                                "created": _now(), **meta, "chunks": []}
                _remove_debris(folder, manifest)
                held: set[str] = set()
                for chunk in manifest["chunks"]:
                    held.update(_load_chunk_array(folder, chunk, "ids").tolist())
                new = np.array([i for i, sample in enumerate(ids) if sample not in held], dtype=np.int64)
                if not len(new):
                    return True
                arrays = {"ids": ids[new], "vectors": encoded.vectors[new]}
                if encoded.tokens is not None:
                    arrays["token_values"] = encoded.tokens.values[new]
                    arrays["token_mask"] = encoded.tokens.mask[new]
                name = f"chunk-{len(manifest['chunks']) + 1:06d}-{uuid.uuid4().hex[:8]}"
                files = {}
                for array_name, array in arrays.items():
                    path = _save_npy(folder / f"{name}.{array_name}.npy", array)
                    files[array_name] = {"shape": list(array.shape), "dtype": str(array.dtype),
                                         "sha256": sha256_file(path)}
                manifest["chunks"].append({"name": name, "n": len(new), "created": _now(),
                                           "extract_s_per_sample": float(s_per_sample), "files": files})
                n = sum(chunk["n"] for chunk in manifest["chunks"])
                manifest.update(updated=_now(), shape=[n, int(encoded.vectors.shape[1])],
                                dtype=str(encoded.vectors.dtype))
                _write_manifest(folder, manifest)
        except OSError as exc:
            warnings.warn(f"could not append to embedding store {key} in {self.entries_dir}: {exc}",
                          CacheWarning, stacklevel=2)
            return False
        return True

    def _store_manifest(self, key: str) -> dict[str, Any]:
        manifest = _read_manifest(self.path(key))
        if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION \
                or manifest.get("key") != key or manifest.get("layout") != "samples" \
                or not isinstance(manifest.get("chunks"), list):
            raise CorruptEntry("manifest does not describe this store")
        return manifest

    def _gather(self, folder: Path, manifest: dict[str, Any], ids: np.ndarray,
                corrupt: list[tuple[str, str]]) -> StoreRows:
        chunks, held = [], []
        for chunk in manifest["chunks"]:
            try:
                held.append(_load_chunk_array(folder, chunk, "ids"))
                chunks.append(chunk)
            except CorruptEntry as exc:
                corrupt.append((str(chunk.get("name")), str(exc)))
        starts = np.cumsum([0] + [len(h) for h in held])
        where = _positions(np.concatenate(held) if held else np.array([], dtype=str), ids)
        chunk_of = np.searchsorted(starts, where, side="right") - 1
        row_of = where - starts[np.maximum(chunk_of, 0)]
        found = where >= 0
        loaded = {}  # chunk number -> its arrays, memory-mapped
        for c in np.unique(chunk_of[found]):
            try:
                loaded[c] = {name: _load_chunk_array(folder, chunks[c], name, mmap=True)
                             for name in chunks[c]["files"] if name != "ids"}
                if "vectors" not in loaded[c] or ("token_values" in loaded[c]) != ("token_mask" in loaded[c]):
                    raise CorruptEntry("its arrays do not fit together")
            except CorruptEntry as exc:
                corrupt.append((str(chunks[c]["name"]), str(exc)))
                loaded.pop(c, None)
                found &= chunk_of != c
        if not found.any():
            return StoreRows(found, None, np.zeros(0))
        dims = {a["vectors"].shape[1] for a in loaded.values()}
        with_tokens = {"token_values" in a for a in loaded.values()}
        if len(dims) > 1 or len(with_tokens) > 1:
            raise CorruptEntry("its chunks do not fit together (different widths, or tokens in some only)")
        dest = np.cumsum(found) - 1  # the output row of each found id
        vectors = np.empty((int(found.sum()), dims.pop()), dtype=np.float32)
        costs = np.empty(len(vectors))
        token_values = token_mask = None
        if with_tokens.pop():
            longest = max(a["token_values"].shape[1] for a in loaded.values())
            width = {a["token_values"].shape[2] for a in loaded.values()}
            if len(width) > 1:
                raise CorruptEntry("its chunks' token vectors differ in width")
            token_values = np.zeros((len(vectors), longest, width.pop()), dtype=np.float32)
            token_mask = np.zeros((len(vectors), longest), dtype=bool)
        for c, arrays in loaded.items():
            mine = np.flatnonzero(found & (chunk_of == c))
            mine = mine[np.argsort(row_of[mine], kind="stable")]  # each chunk read front to back: 5x faster
            rows, out = row_of[mine], dest[mine]
            vectors[out] = arrays["vectors"][rows]
            costs[out] = float(chunks[c].get("extract_s_per_sample") or 0.0)
            if token_values is not None:
                length = arrays["token_values"].shape[1]
                token_values[out, :length] = arrays["token_values"][rows]
                token_mask[out, :length] = arrays["token_mask"][rows]
        tokens = TokenSequence(token_values, token_mask) if token_values is not None else None
        return StoreRows(found, Encoded(vectors, tokens), costs)

    def _drop_chunks(self, key: str, names: set[str]) -> None:
        """Take corrupt chunks out of the manifest and delete their files."""
        folder = self.path(key)
        try:
            with self._lock(key, exclusive=True):
                manifest = self._store_manifest(key)
                manifest["chunks"] = [c for c in manifest["chunks"] if c.get("name") not in names]
                _write_manifest(folder, manifest)
                _remove_debris(folder, manifest)
        except (OSError, CorruptEntry):
            pass  # a read-only cache keeps them; the rows are recomputed in memory

    @staticmethod
    def _warn_corrupt(message: str) -> None:
        warnings.warn(message, CacheWarning, stacklevel=4)

    def _unusable(self, kind: str, key: str, exc: Exception) -> None:
        """Warn that the entry or store ``key`` cannot be read; a corrupt one is removed (the
        next write recreates it), an unreadable one (permissions, I/O) is left as it is."""
        if isinstance(exc, CorruptEntry):
            self._warn_corrupt(f"{kind} {key} in {self.entries_dir} is corrupt ({exc}); recomputing it")
            try:
                self.remove(key)
            except OSError:
                pass  # the next write replaces it
        else:
            self._warn_corrupt(f"{kind} {key} is unreadable ({exc}); recomputing what it holds")

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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_manifest(folder: Path) -> Any:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise CorruptEntry("manifest missing") from None
    except (OSError, ValueError) as exc:
        raise CorruptEntry(f"manifest unreadable: {exc}") from None


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Replaced atomically, last: what it lists is complete on disk."""
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _save_npy(path: Path, array: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return write_bytes_atomic(path, buffer.getvalue())


def _positions(held: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Where each of ``ids`` is in ``held`` (its first copy), -1 where it is not: a sort and
    a binary search, no Python loop over the store's ids."""
    if not len(held):
        return np.full(len(ids), -1, dtype=np.int64)
    order = np.argsort(held, kind="stable")  # equal ids keep their order: the first copy first
    at = np.minimum(np.searchsorted(held, ids, sorter=order), len(held) - 1)
    where = order[at]
    return np.where(held[where] == ids, where, -1)


def _load_chunk_array(folder: Path, chunk: dict[str, Any], name: str, mmap: bool = False) -> np.ndarray:
    """One array of a store's chunk, checked against the manifest (sha256 of the file,
    computed once per process while the file is unchanged; shape and dtype)."""
    info = (chunk.get("files") or {}).get(name)
    if not isinstance(info, dict):
        raise CorruptEntry(f"the manifest lists no {name} array for it")
    path = folder / f"{chunk.get('name')}.{name}.npy"
    try:
        if sha256_file(path) != info.get("sha256"):
            raise CorruptEntry(f"{path.name} checksum mismatch")
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CorruptEntry(f"{path.name} unreadable: {exc}") from None
    if list(array.shape) != info.get("shape") or str(array.dtype) != info.get("dtype"):
        raise CorruptEntry(f"{path.name} is {array.dtype} {list(array.shape)}, the manifest says "
                           f"{info.get('dtype')} {info.get('shape')}")
    return array


def concat_encoded(pieces: list[Encoded], order: np.ndarray | None = None) -> Encoded:
    """Several ``Encoded`` as one (rows taken in ``order`` when given); token sequences of
    different lengths are padded, masked out, to the longest."""
    vectors = pieces[0].vectors if len(pieces) == 1 else np.concatenate([p.vectors for p in pieces])
    if order is not None and np.array_equal(order, np.arange(len(order))):
        order = None  # already in order: no copy
    tokens = None
    if any(p.tokens is not None for p in pieces):
        if not all(p.tokens is not None for p in pieces):
            raise ValueError("some rows have token sequences and others do not")
        longest = max(p.tokens.values.shape[1] for p in pieces)
        values = np.concatenate([np.pad(p.tokens.values, ((0, 0), (0, longest - p.tokens.values.shape[1]), (0, 0)))
                                 for p in pieces])
        mask = np.concatenate([np.pad(p.tokens.mask, ((0, 0), (0, longest - p.tokens.mask.shape[1])))
                               for p in pieces])
        tokens = TokenSequence(values, mask) if len(pieces) > 1 else pieces[0].tokens
    if order is not None:
        vectors = vectors[order]
        tokens = tokens.take(order) if tokens is not None else None
    return Encoded(vectors, tokens)


def _remove_debris(folder: Path, manifest: dict[str, Any]) -> None:
    """Delete files no manifest lists: a killed append's chunk and temporary files. Only
    under the key's exclusive lock, so no writer is in the middle of writing them."""
    if not folder.is_dir():
        return
    listed = {f"{c.get('name')}.{name}.npy" for c in manifest["chunks"] for name in c.get("files") or {}}
    for path in folder.iterdir():
        if path.is_file() and path.name != MANIFEST and path.name not in listed:
            path.unlink(missing_ok=True)


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
