"""What a raw item *is*, as a short digest: the sample store addresses a row by its sample
id and this digest, so a sample that changes (an edited caption, a replaced image) is
encoded again while the rest of a grown or edited dataset is gathered from the store.

The digest covers the item as the dataset hands it over: a text's characters; for a
string naming a file (an image path), also the file's size and modification time, the
identity ``fingerprint()`` uses for images by default (an image rewritten in place keeps
neither); the bytes of an array row; the values of a table row.
"""

from __future__ import annotations

import hashlib
import os
from stat import S_ISREG
from collections.abc import Sequence
from typing import Any

import numpy as np

#: hex characters of an item digest (64 bits: a collision needs ~4e9 versions of one sample)
DIGEST_CHARS = 16


def item_digests(items: Sequence[Any] | np.ndarray | Any) -> list[str]:
    """One digest per item of a raw modality (a sequence, an array of rows, or a pandas
    DataFrame of rows), in order."""
    if hasattr(items, "iloc") and hasattr(items, "columns"):  # a DataFrame: one digest per row
        from pandas.util import hash_pandas_object

        return [f"{h:016x}" for h in hash_pandas_object(items, index=False).to_numpy(dtype=np.uint64)]
    if isinstance(items, np.ndarray) and items.dtype != object:
        shape = repr((items.dtype.str, items.shape[1:])).encode()
        return [_digest(shape, np.ascontiguousarray(row).tobytes()) for row in items]
    return [_item_digest(item) for item in items]


def addresses(ids: Sequence[Any] | np.ndarray, items: Sequence[Any] | np.ndarray | Any) -> np.ndarray:
    """``<sample id>@<item digest>`` per sample: unique per (id, content), since the
    digest has a fixed length."""
    digests = item_digests(items)
    ids = np.asarray(ids).astype(str)
    if len(digests) != len(ids):
        raise ValueError(f"{len(digests)} items for {len(ids)} sample ids")
    return np.char.add(np.char.add(ids, "@"), np.asarray(digests, dtype=f"<U{DIGEST_CHARS}"))


def _item_digest(item: Any) -> str:
    if isinstance(item, (str, os.PathLike)):
        text = os.fspath(item)
        return _digest(b"s", text.encode("utf-8", "surrogatepass"), _file_identity(text))
    if isinstance(item, (bytes, bytearray, memoryview)):
        return _digest(b"b", bytes(item))
    if isinstance(item, np.ndarray) and item.dtype != object:
        return _digest(b"a", repr((item.dtype.str, item.shape)).encode(), np.ascontiguousarray(item).tobytes())
    return _digest(b"r", repr(item).encode("utf-8", "surrogatepass"))


def _file_identity(text: str) -> bytes:
    """Size and modification time of the file ``text`` names, or nothing (a plain text: a
    failed stat costs about a microsecond)."""
    if not text or "\n" in text or len(text) > 4096:
        return b""
    try:
        info = os.stat(text)
    except (OSError, ValueError):
        return b""
    return f"{info.st_size}:{info.st_mtime_ns}".encode() if S_ISREG(info.st_mode) else b""


def _digest(*parts: bytes) -> str:
    digest = hashlib.blake2b(digest_size=DIGEST_CHARS // 2)
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()
