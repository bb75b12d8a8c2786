"""Atomic file writes: a reader (or a killed writer) never sees half a file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

#: (resolved path, size, mtime_ns) -> sha256: weight files are hashed once per process
_HASHES: dict[tuple[str, int, int], str] = {}


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """UTF-8 with "\\n" line ends on every platform, so generated files are byte-identical."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def file_state(path: str | Path) -> tuple[str, int, int]:
    """(resolved path, size, mtime_ns): what says a file may have changed."""
    path = Path(path)
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes, computed once per process while the file is unchanged
    (the weights identity in encoder fingerprints)."""
    key = file_state(path)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]
