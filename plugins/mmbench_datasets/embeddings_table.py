"""Precomputed embeddings from a CSV or Parquet table: the way the source papers stored
theirs, and what ``mmbench export`` writes.

One row per sample: an id, a label, an optional official split, and one column per
dimension per modality. Column layouts (``layout``):

- ``img_emb`` (``mmbench export``): ``img_emb_0..`` is image, ``text_emb_0..`` text and
  ``<m>_emb_0..`` modality ``m``;
- ``image_text`` (the authors' CSVs): ``image_0..`` and ``text_0..``;
- ``auto`` picks ``img_emb`` when some column ends in ``_emb_<i>``, else ``image_text``;
- ``modalities = ["clip_img=image", "clin=tabular"]`` names the prefixes instead.

Other columns (metadata) are ignored. A split column (train / val / test; validation,
valid and dev read as val) is the official split: the runner uses it instead of its
seeded split, and carves validation out of train when the table has none. Multilabel
tables hold one 0/1 column per label, ``<label_column>:<name>`` (as export writes them).
Every modality is vectors already, so suites apply no encoder to this dataset. Missing
values are not masks here: a row with NaN is an error that names it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mmbench.data import SPLITS, TASK_KINDS
from mmbench.errors import UserError
from mmbench.files import sha256_file
from mmbench.params import Param
from mmbench.plugin import Dataset, stable_hash
from mmbench_datasets import loading

SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
LAYOUTS = ("auto", "img_emb", "image_text")
#: split names that mean validation in the tables people share
#: multilabel tables: one 0/1 column per label, "<label_column>:<name>"
LABEL_SEPARATOR = ":"


class EmbeddingsTable(Dataset):
    """Precomputed embeddings (CSV / Parquet): id, label, optional split, one column per dimension."""

    name = "embeddings_table"
    modalities = ()
    parameters = (
        Param("path", Path, Param.REQUIRED, "CSV, TSV or Parquet file of precomputed embeddings",
              must_exist=True),
        Param("id_column", str, "id", "sample id column (when the default 'id' is absent: row numbers)"),
        Param("label_column", str, "label", "class column; multilabel: the prefix of 0/1 columns "
              "'<label_column>:<name>'"),
        Param("split_column", str, "split", "official train/val/test split column (when the default "
              "'split' is absent: the runner's seeded split)"),
        Param("task", str, "binary", "task kind of the labels", choices=TASK_KINDS),
        Param("classes", list, [], "class (or label) names in order; default: sorted labels"),
        Param("layout", str, "auto", "embedding column names: img_emb (img_emb_0, text_emb_0, "
              "<m>_emb_0), image_text (image_0, text_0) or auto", choices=LAYOUTS),
        Param("modalities", list, [], 'explicit column prefixes instead of a layout, e.g. '
              '["img_emb=image", "clin=tabular"] for img_emb_0.., clin_0..'),
        loading.ENCODING,
    )

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        if Path(p["path"]).suffix.lower() not in SUFFIXES:
            raise UserError(f"embeddings_table: path {p['path']!r} must be a table file ending in "
                            f"{', '.join(SUFFIXES)}")
        if not Path(p["path"]).is_file():
            raise UserError(f"embeddings_table: path {p['path']!r} is not a file")
        self.prefixes = _parse_modalities(p["modalities"])
        if self.prefixes and p["layout"] != "auto":
            raise UserError("embeddings_table: give layout or modalities, not both")
        if not all(isinstance(c, str | int) and not isinstance(c, bool) for c in p["classes"]):
            raise UserError(f"embeddings_table: classes must be names, got {p['classes']!r}")

    def task_kind(self) -> str:
        return self.params["task"]

    def raw_modalities(self) -> tuple[str, ...]:
        return ()  # vectors only: no encoder applies

    def fingerprint(self) -> str:
        """The file's content, not only its name: an edited table is a new run, never a stale result."""
        return stable_hash({"name": self.name, "params": self.params, "sha256": sha256_file(self.params["path"])})

    def load(self):
        from mmbench.data import DatasetTable

        p = self.params
        frame = _read(Path(p["path"]), p["id_column"], p["encoding"])
        columns = [str(c) for c in frame.columns]
        frame.columns = columns
        reserved = {p["id_column"], p["label_column"], p["split_column"]}
        labels, classes = self._labels(frame, columns)
        ids = self._ids(frame, columns)
        modalities = {}
        for modality, names in self._modality_columns(columns, reserved).items():
            modalities[modality] = _vectors(frame, names, modality, ids)
        split = self._split(frame, columns, ids)
        return DatasetTable(ids=ids, labels=labels, task=p["task"], classes=classes, modalities=modalities,
                            split=split)

    # -- columns ---------------------------------------------------------------------------
    def _modality_columns(self, columns: list[str], reserved: set[str]) -> dict[str, list[str]]:
        """Column names per modality, in dimension order."""
        candidates = [c for c in columns if c not in reserved
                      and not c.startswith(self.params["label_column"] + LABEL_SEPARATOR)]
        layout = self.params["layout"]
        if self.prefixes:
            found = _by_prefix(candidates, r"(.+)_(\d+)", dict(self.prefixes))
            expected = ", ".join(f"{prefix}_0.. ({m})" for prefix, m in self.prefixes)
        else:
            emb = _by_prefix(candidates, r"(.+)_emb_(\d+)", lambda prefix: "image" if prefix == "img" else prefix)
            image_text = _by_prefix(candidates, r"(image|text)_(\d+)", lambda prefix: prefix)
            if layout == "auto":
                layout = "img_emb" if emb else "image_text"
            found = emb if layout == "img_emb" else image_text
            expected = "img_emb_0.., text_emb_0.. or <modality>_emb_0.." if layout == "img_emb" \
                else "image_0.. and text_0.."
        if not found:
            raise UserError(f"embeddings_table {self.params['path']}: no embedding columns like {expected}; "
                            f"found columns {loading.short_list(columns)}; set layout or modalities to match them")
        out = {}
        for modality, indexed in sorted(found.items()):
            indices = sorted(indexed)
            if indices != list(range(len(indices))):
                absent = sorted(set(range(indices[-1] + 1)) - set(indices))
                raise UserError(f"embeddings_table {self.params['path']}: modality {modality!r} has columns "
                                f"up to index {indices[-1]} but lacks {loading.short_list([str(i) for i in absent])}")
            out[modality] = [indexed[i] for i in indices]
        return out

    def _labels(self, frame, columns: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
        import pandas as pd

        p = self.params
        given = [str(c) for c in p["classes"]]
        if p["task"] == "multilabel":
            head = p["label_column"] + LABEL_SEPARATOR
            present = [c[len(head):] for c in columns if c.startswith(head)]
            classes = given or sorted(present, key=loading.natural_key)
            absent = [c for c in classes if c not in present]
            if not classes or absent:
                raise UserError(f"embeddings_table {p['path']}: a multilabel table needs one 0/1 column per "
                                f"label named {head}<name>; missing {loading.short_list([head + c for c in absent] or [head + '...'])}; "
                                f"found columns {loading.short_list(columns)}")
            values = frame[[head + c for c in classes]].apply(pd.to_numeric, errors="coerce")
            matrix = values.to_numpy(dtype=float, na_value=np.nan)
            if not np.isin(matrix, (0.0, 1.0)).all():
                raise UserError(f"embeddings_table {p['path']}: label columns {head}* must hold 0 or 1 only")
            return matrix.astype(np.int64), tuple(classes)
        column = p["label_column"]
        if column not in columns:
            raise UserError(f"embeddings_table {p['path']}: no label column {column!r} (label_column); "
                            f"found columns {loading.short_list(columns)}")
        values = frame[column]
        missing = np.flatnonzero(values.isna().to_numpy())
        if len(missing):
            raise UserError(f"embeddings_table {p['path']}: {len(missing)} rows have no label in {column!r} "
                            f"(rows {loading.short_list([str(i) for i in missing])}); drop them or fill them")
        names = _names(values)
        classes = given or sorted(set(names), key=loading.natural_key)
        unknown = sorted(set(names) - set(classes), key=loading.natural_key)
        if unknown:
            raise UserError(f"embeddings_table {p['path']}: labels {loading.short_list(unknown)} are not in classes "
                            f"{classes}; add them to classes")
        if p["task"] == "binary" and len(classes) != 2:
            raise UserError(f"embeddings_table {p['path']}: task = 'binary' needs 2 classes, found "
                            f"{len(classes)} ({loading.short_list(classes)}); set task = 'multiclass' or classes")
        index = {name: i for i, name in enumerate(classes)}
        return np.array([index[n] for n in names], dtype=np.int64), tuple(classes)

    def _ids(self, frame, columns: list[str]) -> np.ndarray:
        column = self.params["id_column"]
        if column not in columns:
            if column != "id":
                raise UserError(f"embeddings_table {self.params['path']}: no id column {column!r} "
                                f"(id_column); found columns {loading.short_list(columns)}")
            return np.array([str(i) for i in range(len(frame))])
        values = frame[column]
        if values.isna().any():
            raise UserError(f"embeddings_table {self.params['path']}: {int(values.isna().sum())} rows have "
                            f"no id in {column!r}")
        ids = _names(values)
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise UserError(f"embeddings_table {self.params['path']}: ids in {column!r} must be unique; "
                            f"repeated: {loading.short_list(list(unique[counts > 1]))}")
        return ids

    def _split(self, frame, columns: list[str], ids: np.ndarray) -> np.ndarray | None:
        column = self.params["split_column"]
        if column not in columns:
            if column != "split":
                raise UserError(f"embeddings_table {self.params['path']}: no split column {column!r} "
                                f"(split_column); found columns {loading.short_list(columns)}")
            return None
        values = frame[column]
        if values.isna().any():
            rows = ids[values.isna().to_numpy()]
            raise UserError(f"embeddings_table {self.params['path']}: samples {loading.short_list(list(rows))} have "
                            f"no split in {column!r}")
        split = np.array([loading.normalise_split(v) for v in values.astype(str)])
        unknown = sorted(set(split) - set(SPLITS))
        if unknown:
            raise UserError(f"embeddings_table {self.params['path']}: split column {column!r} holds "
                            f"{loading.short_list(unknown)}; expected {', '.join(SPLITS)}")
        for needed in ("train", "test"):
            if needed not in split:
                raise UserError(f"embeddings_table {self.params['path']}: split column {column!r} has no "
                                f"{needed!r} rows; an official split needs train and test (val is optional)")
        return split


def _read(path: Path, id_column: str, encoding: str):
    """The table, ids read as text so "007" stays "007"; text in UTF-8 unless ``encoding``
    (a byte that does not decode is named with its line, not pandas' byte position)."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return loading.read_table(path)
        return loading.read_table(path, encoding or None, encoding_param=True, dtype={id_column: str})
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - pandas and pyarrow raise many types for a bad file
        raise UserError(f"embeddings_table: cannot read {path} ({type(exc).__name__}: {exc})") from None


def _parse_modalities(entries: list) -> list[tuple[str, str]]:
    out = []
    for entry in entries:
        prefix, _, modality = str(entry).partition("=")
        if not isinstance(entry, str) or not prefix.strip() or not modality.strip():
            raise UserError(f"embeddings_table: modalities entries are 'prefix=modality' (e.g. "
                            f"'img_emb=image' for columns img_emb_0..), got {entry!r}")
        out.append((prefix.strip(), modality.strip()))
    if len({m for _, m in out}) != len(out):
        raise UserError(f"embeddings_table: two prefixes map to one modality in {entries!r}")
    return out


def _by_prefix(columns: list[str], pattern: str, modality_of) -> dict[str, dict[int, str]]:
    """{modality: {index: column}} for the columns matching ``pattern`` (prefix, index);
    ``modality_of`` maps a prefix to its modality (a dict maps only the prefixes it names)."""
    out: dict[str, dict[int, str]] = {}
    for column in columns:
        match = re.fullmatch(pattern, column)
        if match is None:
            continue
        prefix, index = match.groups()
        modality = modality_of.get(prefix) if isinstance(modality_of, dict) else modality_of(prefix)
        if modality is not None:
            out.setdefault(modality, {})[int(index)] = column
    return out


def _vectors(frame, names: list[str], modality: str, ids: np.ndarray) -> np.ndarray:
    import pandas as pd

    block = frame[names]
    for column in names:
        if not pd.api.types.is_numeric_dtype(block[column]):
            numbers = pd.to_numeric(block[column], errors="coerce")
            bad = block[column][numbers.isna() & block[column].notna()]
            if len(bad):
                raise UserError(f"embeddings_table: column {column!r} ({modality}) holds non-numeric values, "
                                f"e.g. {bad.iloc[0]!r} for sample {ids[bad.index[0]]!r}")
    values = block.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad_rows = ~np.isfinite(values).all(axis=1)
    if bad_rows.any():
        raise UserError(f"embeddings_table: {int(bad_rows.sum())} samples have empty, NaN or infinite {modality} "
                        f"values (samples {loading.short_list(list(ids[bad_rows]))}); drop or fill those rows")
    return values.astype(np.float32)


def _names(values) -> np.ndarray:
    """Labels and ids as text; integral numbers without a trailing ".0"."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return values.astype(int).astype(str).to_numpy()
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float)
        if np.all(numbers == np.round(numbers)):
            return numbers.astype(np.int64).astype(str)
    return values.astype(str).str.strip().to_numpy()
