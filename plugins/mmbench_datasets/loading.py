"""What every loader of a real dataset shares: the data root, the bad-sample policy, the
fingerprint of what was read, tolerant file reading and metadata text templates.

A loader reads a folder the user downloaded (often under credentialed access; nothing is
ever downloaded here). Three rules hold for all of them:

- A missing root or file is ONE message: what was looked for, where the dataset is
  published and under which access terms (``missing_files``).
- A bad sample (unreadable image, empty text, label out of range) stops the load naming
  the sample, unless the suite says ``on_bad_sample = "skip"``: then it is left out and
  the result counts it (``BadSamples`` -> ``DatasetTable.skipped``). A loader with an
  image modality ends ``load`` with ``drop_broken_images``, so an empty or truncated image
  file is such a bad sample in every dataset alike.
- The fingerprint covers the content of the label / metadata files and the list of
  images (names, sizes and modification times; or their bytes with ``fingerprint =
  "content"``), so a changed file is a new run and a new cache key, never a stale result
  (``fingerprint_files``). Images are not decoded at load time: the image modality holds
  paths.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench.errors import UserError
from mmbench.files import file_digest, sha256_file
from mmbench.params import Param
from mmbench.plugin import stable_hash

if TYPE_CHECKING:
    from mmbench.data import DatasetTable

ROOT = Param("root", Path, Param.REQUIRED, "the dataset's folder, as downloaded ($VARS and ~ expand)")
ON_BAD_SAMPLE = Param("on_bad_sample", str, "error", "a sample with an unreadable image, an empty text or a "
                      "label out of range: 'error' stops the load naming it; 'skip' leaves it out (the "
                      "result counts skipped samples)", choices=("error", "skip"))
FINGERPRINT = Param("fingerprint", str, "stat", "what tells that an image changed: 'stat' its name, size "
                    "and modification time (fast; copying the images without keeping their times re-runs "
                    "everything once); 'content' a hash of its bytes (certain; reads every image each time "
                    "a suite is loaded)", choices=("stat", "content"))
ENCODING = Param("encoding", str, "", "text encoding of a CSV / TSV table, e.g. 'cp1252' or 'latin-1'; "
                 "empty: UTF-8 (with or without BOM), and a byte that is not UTF-8 stops the load naming "
                 "the line")
#: what a missing metadata value reads as in a rendered text template
UNKNOWN = "unknown"
#: other spellings of the validation split in published files
SPLIT_ALIASES = {"validation": "val", "valid": "val", "validate": "val", "dev": "val"}


def list_files(folder: Path) -> list[Path]:
    """The files directly in ``folder``, in one directory read (image folders hold up to
    ~700,000 files: one ``scandir`` instead of a stat per name); [] when it is absent."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return [folder / e.name for e in entries if e.is_file()]


def normalise_split(value: str) -> str:
    """A split name as the harness spells it: "validation", "valid", "validate", "dev" -> "val"."""
    name = str(value).strip().lower()
    return SPLIT_ALIASES.get(name, name)


def index_images(root: Path, pattern: re.Pattern) -> dict[int, Path]:
    """Every file under ``root`` (symlinks followed) whose name matches ``pattern``, by
    the integer its first group holds. Datasets that ship images apart from their labels
    (COCO, NYU-Depth) are unpacked in many ways; finding files by id tolerates them all.
    Where two files carry one id (a 2014 and a 2017 copy of one COCO image), the first in
    sorted path order wins, so the choice never depends on the file system's order."""
    found: dict[int, Path] = {}
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders.sort()
        for name in sorted(files):
            match = pattern.fullmatch(name)
            if match is not None:
                found.setdefault(int(match.group(1)), Path(folder) / name)
    return found


def read_lines(path: Path) -> list[str]:
    """A file's lines (any line ending), trailing blank lines dropped: the releases end
    with one newline or several."""
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def check_template(dataset: str, template: str, fields: Mapping[str, str]) -> None:
    """Render ``template`` on example values: a bad field or brace fails when the suite is
    checked, not after the images are indexed."""
    try:
        render(template, fields)
    except (ValueError, IndexError) as exc:
        raise UserError(f"{dataset}: template {template!r} is not a format string ({exc}); use "
                        f"{', '.join('{' + f + '}' for f in fields)}") from None
    except UserError as exc:
        raise UserError(f"{dataset}: {exc}; the fields are {', '.join('{' + f + '}' for f in fields)}") from None


def natural_key(name: str) -> tuple:
    """Sort key: numbers by value ("2" before "10"), then names alphabetically (class order)."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def short_list(items: Iterable[Any], limit: int = 12) -> str:
    """At most ``limit`` quoted items, then how many more: column lists in error messages."""
    items = list(items)
    shown = ", ".join(repr(str(i)) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def missing_files(dataset: str, root: Path, looked_for: Sequence[str], published: str, access: str) -> UserError:
    """The one error for a dataset whose files are not where the loader looks."""
    where = f"{str(root)!r}" if Path(root).is_dir() else f"{str(root)!r} (which is not a folder)"
    return UserError(f"dataset {dataset!r}: under root {where} it looked for {', '.join(looked_for)} and "
                     f"did not find them. The dataset is published at {published} ({access}); download it "
                     "and set root to the folder that holds those files.")


def first_existing(root: Path, names: Iterable[str]) -> Path | None:
    """The first of ``names`` (relative to ``root``) that exists: for files whose name
    changed between releases (``labels.csv`` / ``labels_brset.csv``)."""
    for name in names:
        if (Path(root) / name).is_file():
            return Path(root) / name
    return None


class BadSamples:
    """Applies ``on_bad_sample``: ``report`` raises in "error" mode and records the sample
    in "skip" mode; ``skipped`` goes into ``DatasetTable.skipped``."""

    def __init__(self, dataset: str, policy: str):
        self.dataset, self.policy = dataset, policy
        self.skipped: dict[str, str] = {}

    def report(self, sample_id: Any, reason: str) -> None:
        if self.policy == "error":
            raise UserError(f"dataset {self.dataset!r}: sample {sample_id!s}: {reason}; fix or remove it, or "
                            'set on_bad_sample = "skip" to leave such samples out (results count them)')
        self.skipped[str(sample_id)] = reason


#: how a complete file of each format ends: JPEG's end-of-image marker, PNG's IEND chunk
IMAGE_ENDS = {b"\xff\xd8": b"\xff\xd9", b"\x89PNG": b"IEND\xaeB`\x82"}
#: TIFF tags (offsets, byte counts) that place an image's data: its strips, or its tiles
TIFF_DATA = ((273, 279), (324, 325))
#: TIFF field types an offset or count may have: SHORT, LONG
TIFF_INTEGERS = {3: "H", 4: "I"}


def image_problem(path: Path) -> str | None:
    """Why the image file at ``path`` cannot be used (empty, truncated), or None. Reads the
    first and last bytes only (and a TIFF's first directory): a truncated JPEG / PNG (a copy
    or download cut short) lacks its end marker, a truncated TIFF's data runs past its end,
    which Pillow would only find when an encoder decodes it mid-run."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 4096))
            tail = handle.read()
            end = _tiff_end(handle, head, size) if head[:4] in (b"II*\x00", b"MM\x00*") else 0
    except OSError as exc:
        return f"image file {str(path)!r} cannot be read ({exc.strerror or exc})"
    if size == 0:
        return f"image file {str(path)!r} is empty"
    for start, marker in IMAGE_ENDS.items():
        # some cameras pad a JPEG after its end marker: look in the last 4 KiB, not the last bytes
        if head.startswith(start) and marker not in tail:
            return f"image file {str(path)!r} is truncated ({size} bytes, no end-of-image marker)"
    if end > size:
        return f"image file {str(path)!r} is truncated ({size} bytes; its TIFF data runs to byte {end})"
    return None


def _tiff_end(handle: Any, head: bytes, size: int) -> int:
    """Where the first image of a (classic, not Big-) TIFF ends: past its directory and its
    last strip or tile. TIFF has no end marker, so a cut copy shows as data beyond the
    file's end; a read that comes back short means the same."""
    if len(head) < 8:
        return 8
    order = "<" if head[:2] == b"II" else ">"
    (directory,) = struct.unpack(order + "I", head[4:8])
    handle.seek(directory)
    raw = handle.read(2)
    if len(raw) < 2:
        return directory + 2
    (count,) = struct.unpack(order + "H", raw)
    entries = handle.read(12 * count)
    end = directory + 2 + 12 * count
    if len(entries) < 12 * count:
        return end
    values: dict[int, tuple[int, ...]] = {}
    wanted = {tag for pair in TIFF_DATA for tag in pair}
    for k in range(count):
        tag, kind, n, inline = struct.unpack(order + "HHI4s", entries[12 * k:12 * k + 12])
        if tag not in wanted or kind not in TIFF_INTEGERS:
            continue
        width = n * struct.calcsize(TIFF_INTEGERS[kind])
        if width > 4:  # the values are elsewhere in the file; the entry holds their offset
            (where,) = struct.unpack(order + "I", inline)
            if where + width > size:  # checked before reading: a garbage count must not allocate gigabytes
                return where + width
            handle.seek(where)
            data = handle.read(width)
        else:
            data = inline[:width]
        values[tag] = struct.unpack(f"{order}{n}{TIFF_INTEGERS[kind]}", data)
    for offsets, counts in TIFF_DATA:
        if offsets in values and counts in values:
            end = max([end, *(o + c for o, c in zip(values[offsets], values[counts]))])
    return end


def drop_broken_images(table: DatasetTable, bad: BadSamples) -> DatasetTable:
    """``table`` without the samples whose image file is empty, truncated or unreadable,
    each reported through ``bad`` (an error naming the file, or left out and counted in
    ``skipped``). Every loader with an image modality ends its ``load`` with this, so a cut
    copy is named at load time whatever the dataset, instead of failing the whole run when
    an encoder decodes it. Samples without an image (None, or masked out) are not checked."""
    import numpy as np

    images = table.modalities.get("image")
    if images is None:
        return table
    present = table.masks.get("image")
    keep = np.ones(len(table), dtype=bool)
    for k, path in enumerate(images):
        if path is None or (present is not None and not present[k]):
            continue
        problem = image_problem(Path(path))
        if problem is not None:
            bad.report(table.ids[k], problem)
            keep[k] = False
    if keep.all():
        return table
    if not keep.any():
        raise UserError(f"dataset {bad.dataset!r}: every sample is bad ({len(bad.skipped)} skipped, e.g. "
                        f"{next(iter(bad.skipped.values()), '')})")
    kept = table.subset(np.flatnonzero(keep))
    kept.skipped = {**table.skipped, **bad.skipped}
    return kept


def fingerprint_files(dataset: str, params: Mapping[str, Any], label_files: Sequence[Path],
                      images: Iterable[Path] = ()) -> str:
    """Identity of what a loader reads: the content of its label / metadata files, and per
    image its relative name with its size and modification time (an image edited in place
    keeping its size is new), or with ``params["fingerprint"] == "content"`` the hash of its
    bytes (hashing every image may take longer than the run: the user's choice)."""
    root = Path(params.get("root", "."))
    # string work, not pathlib: 100,000 images take ~1 s instead of ~1.4 s
    prefix = os.fspath(root).rstrip(os.sep) + os.sep
    names = (os.fspath(p) for p in images)
    identity = _content if params.get("fingerprint") == "content" else _stat
    image_list = sorted(f"{n[len(prefix):] if n.startswith(prefix) else os.path.basename(n)}:{identity(n)}"
                        for n in names)
    return stable_hash({
        "name": dataset,
        "params": {k: v for k, v in params.items() if k != "root"},  # a moved copy is the same data
        "files": {_relative(p, root): sha256_file(p) for p in label_files},
        "images": stable_hash(image_list, length=32),
        "n_images": len(image_list),
    })


def _stat(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def _content(path: str) -> str:
    return file_digest(path)  # not sha256_file: its cache trusts name, size and time


def read_text(path: Path) -> str:
    """A text file in UTF-8 (with or without BOM), else Windows-1252, else Latin-1: some
    datasets (MVSA) mix encodings file by file."""
    return _decode(Path(path).read_bytes())


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def read_table(path: Path, encoding: str | None = None, *, encoding_param: bool = False, **kwargs: Any) -> Any:
    """A CSV / TSV (optionally gzipped) / Parquet file as a pandas DataFrame (a tab separator
    is assumed for .tsv / .tab unless given). Text is UTF-8 (with or without BOM) unless
    ``encoding`` says otherwise: a table is one file in one encoding, and guessing another
    for all of it because of one bad byte would turn every accent into mojibake.
    ``encoding_param``: the calling dataset reads a user's table and has an ``encoding``
    parameter, which a decoding error then offers; without one the file is a published
    format read as UTF-8, and the error says to convert the copy back or download it again."""
    import io

    import pandas as pd

    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        return pd.read_parquet(path, **kwargs)
    if "sep" not in kwargs and any(s in (".tsv", ".tab") for s in suffixes):
        kwargs["sep"] = "\t"
    data = path.read_bytes()
    if suffixes[-1:] == [".gz"]:  # PhysioNet ships .csv.gz
        import gzip

        data = gzip.decompress(data)
    return pd.read_csv(io.StringIO(decode_table(data, path, encoding, encoding_param)), **kwargs)


def decode_table(data: bytes, path: Path, encoding: str | None = None, encoding_param: bool = False) -> str:
    """``data`` as text in ``encoding`` (default UTF-8); a byte that does not decode stops
    with the file, line and column, and what to do: give the dataset's ``encoding`` when it
    has one (``encoding_param``), else convert the copy back to UTF-8 or download it again."""
    try:
        return data.decode(encoding or "utf-8-sig")
    except LookupError:
        raise UserError(f"{path}: unknown encoding {encoding!r}; use a Python codec name such as "
                        "'utf-8', 'cp1252' or 'latin-1'") from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        advice = ("Re-save the file as UTF-8, or give its encoding in the dataset's entry (encoding = \"cp1252\" "
                  "for a Windows export, say)" if encoding_param else
                  "This dataset's files are read as UTF-8, as published: a copy re-saved in another encoding (a "
                  "spreadsheet program does that) must be converted back (iconv -f cp1252 -t utf-8, say) or "
                  "downloaded again")
        raise UserError(f"{path}: line {line}, column {column}: byte 0x{data[exc.start]:02x} is not "
                        f"{encoding or 'UTF-8'} ({exc.reason}). {advice}") from None


def render(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with ``{field}`` filled from ``values``; a missing value (None, NaN,
    empty) reads "unknown", so every sample gets the same sentence shape."""
    return template.format_map(_Filled(values))


def is_missing(value: Any) -> bool:
    """None, NaN or an empty / whitespace-only string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


class _Filled(dict):
    def __init__(self, values: Mapping[str, Any]):
        super().__init__(values)

    def __missing__(self, key: str) -> str:
        raise UserError(f"text template field {{{key}}} is not a column of this dataset")

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key) if key in self else self.__missing__(key)
        if is_missing(value):
            return UNKNOWN
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name
