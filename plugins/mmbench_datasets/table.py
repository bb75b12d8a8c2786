"""Any user dataset without code: one CSV / TSV / Parquet file, one row per sample.

The suite names the columns: an id, a label (and the task and classes it holds), an
optional official split and group (patient, lesion) column, an image-path column (relative
to the table's folder, or absolute), the text (one column, several joined, or a template
over any columns) and the tabular columns. ``pairdx`` reads its record the same way, so
the row rules live here (``read_rows``):

- a row with no label, a label outside ``classes``, an empty text, an image path that is
  not a file (or an empty or truncated one) or an unknown split value is a bad sample: the
  load stops naming it, or, with ``on_bad_sample = "skip"``, leaves it out and the result
  counts it;
- a split column holds train / val / test (validation, valid and dev read as val) and
  needs train and test rows; without one the runner makes its seeded, grouped split;
- the tabular modality is the raw columns (the ``tabular`` encoder scales / one-hot
  encodes them, fitted on train only).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.data import SPLITS, TASK_KINDS
from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading

SUFFIXES = (".csv", ".tsv", ".tab", ".parquet", ".pq")


@dataclass
class Columns:
    """Which column holds what ('' / [] for absent roles)."""

    label: str
    id: str = ""
    split: str = ""
    group: str = ""
    image: str = ""
    text: list[str] = field(default_factory=list)
    text_template: str = ""
    tabular: list[str] = field(default_factory=list)


@dataclass
class Rules:
    """How a loader reads the values of its columns."""

    dataset: str
    task: str
    classes: list[str]
    on_bad_sample: str
    #: folders an image path is tried against, in order (absolute paths are taken as they are)
    image_dirs: list[Path]
    text_separator: str = ". "
    label_separator: str = "|"
    #: a label as read (text) -> the class name it stands for
    normalise_label: Callable[[str], str] = str.strip


class Table(Dataset):
    """A user's CSV / Parquet table of samples: columns for id, label, split, group, image path, text, tabular."""

    name = "table"
    modalities = ("image", "text", "tabular")
    parameters = (
        Param("path", Path, Param.REQUIRED, "CSV, TSV or Parquet file, one row per sample ($VARS and ~ expand)"),
        Param("id_column", str, "id", "sample id column (when the default 'id' is absent: row numbers)"),
        Param("label_column", str, "label", "label column; multilabel: names joined by label_separator"),
        Param("task", str, "multiclass", "task kind of the labels", choices=TASK_KINDS),
        Param("classes", list, [], "class (or label) names in order; default: the sorted labels (a binary "
              "task's second class is the positive one)"),
        Param("label_separator", str, "|", "multilabel: separator between the label names of one row"),
        Param("split_column", str, "", "official train/val/test split column; empty: the runner's seeded split"),
        Param("group_column", str, "", "group column (patient, lesion): a group never crosses splits"),
        Param("image_column", str, "", "image path column, relative to the table's folder or absolute"),
        Param("text_columns", list, [], "text column(s); several are joined with text_separator"),
        Param("text_separator", str, ". ", "what joins several text columns"),
        Param("text_template", str, "", "text from a template over any columns, e.g. '{title}. Tags: {tags}' "
              "(instead of text_columns; a missing value reads 'unknown')"),
        Param("tabular_columns", list, [], "metadata columns that form the tabular modality"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
        loading.ENCODING,
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        if Path(p["path"]).suffix.lower() not in SUFFIXES:
            raise UserError(f"table: path {str(p['path'])!r} must be a table file ending in {', '.join(SUFFIXES)}")
        if p["text_columns"] and p["text_template"]:
            raise UserError("table: give text_columns or text_template, not both")
        if not self.raw_modalities():
            raise UserError("table: name at least one modality: image_column, text_columns (or text_template) "
                            "or tabular_columns")
        for key in ("text_columns", "tabular_columns", "classes"):
            if not all(isinstance(v, str) for v in p[key]):
                raise UserError(f"table: {key} must be a list of names, got {p[key]!r}")

    def task_kind(self) -> str:
        return self.params["task"]

    def raw_modalities(self) -> tuple[str, ...]:
        p = self.params
        present = {"image": bool(p["image_column"]), "text": bool(p["text_columns"] or p["text_template"]),
                   "tabular": bool(p["tabular_columns"])}
        return tuple(m for m in ("image", "text", "tabular") if present[m])

    def info(self) -> dict[str, str]:
        p = self.params
        if p["text_template"]:
            return {"text template": p["text_template"]}
        if p["text_columns"]:
            return {"text template": p["text_separator"].join("{" + c + "}" for c in p["text_columns"])}
        return {}

    def fingerprint(self) -> str:
        """Also what ``mmbench validate`` learns of the table: its columns and that it has
        rows are checked here, before any run (a run would fail on them much later)."""
        path = self._path()
        frame = read_frame(self.name, path, self.params["encoding"])
        _require_columns(frame, self._columns(frame), self.name, str(path))
        if frame.empty:
            raise UserError(f"dataset {self.name!r} ({path}): the table has a header but no rows")
        images = existing_images(frame, self.params["image_column"], [path.parent])
        return loading.fingerprint_files(self.name, self.params, [path], images)

    def _columns(self, frame) -> Columns:
        p = self.params
        return Columns(label=p["label_column"], id=_optional(frame, p["id_column"], "id", self.name, "id_column"),
                       split=p["split_column"], group=p["group_column"], image=p["image_column"],
                       text=list(p["text_columns"]), text_template=p["text_template"],
                       tabular=list(p["tabular_columns"]))

    def load(self):
        p = self.params
        path = self._path()
        frame = read_frame(self.name, path, p["encoding"])
        columns = self._columns(frame)
        rules = Rules(dataset=self.name, task=p["task"], classes=[str(c) for c in p["classes"]],
                      on_bad_sample=p["on_bad_sample"], image_dirs=[path.parent],
                      text_separator=p["text_separator"], label_separator=p["label_separator"])
        return read_rows(frame, columns, rules, source=str(path))

    def _path(self) -> Path:
        path = Path(self.params["path"])
        if not path.is_file():
            raise UserError(f"table: path {str(path)!r} is not a file; set path to your CSV, TSV or Parquet table")
        return path


# -- shared with the loaders of published image-caption tables (pairdx) --------------------
def read_frame(dataset: str, path: Path, encoding: str = ""):
    """The table with every column read as text (ids "007" stay "007"; numbers are parsed
    where a column needs them), column names as strings; text in UTF-8 unless ``encoding``
    (a user's table: its dataset has the ``encoding`` parameter the errors offer)."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = loading.read_table(path)
        else:
            frame = loading.read_table(path, dtype=str, keep_default_na=True, encoding=encoding or None,
                                       encoding_param=True)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - pandas and pyarrow raise many types for a bad file
        raise UserError(f"dataset {dataset!r}: cannot read {path} ({type(exc).__name__}: {exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.reset_index(drop=True)


def existing_images(frame, column: str, image_dirs: Sequence[Path]) -> list[Path]:
    """The image files the table's rows name (for the fingerprint: names and sizes)."""
    if not column or column not in frame.columns:
        return []
    found = (resolve_image(v, image_dirs) for v in frame[column])
    return [p for p in found if p is not None]


def resolve_image(value: Any, image_dirs: Sequence[Path]) -> Path | None:
    """An image cell as an existing file: absolute as given, else under the first of
    ``image_dirs`` that holds it; None when no such file exists."""
    if loading.is_missing(value):
        return None
    given = Path(str(value).strip()).expanduser()
    candidates = [given] if given.is_absolute() else [Path(d) / given for d in image_dirs]
    return next((c for c in candidates if c.is_file()), None)


def read_rows(frame, columns: Columns, rules: Rules, source: str, whole_split: bool = True):
    """A ``DatasetTable`` from ``frame`` by the column roles and value rules; bad rows go
    through the ``on_bad_sample`` policy. ``whole_split``: the split column must hold train
    and test rows (False for a table that is one split file of several)."""
    from mmbench.data import DatasetTable

    _require_columns(frame, columns, rules.dataset, source)
    bad = loading.BadSamples(rules.dataset, rules.on_bad_sample)
    ids = _ids(frame, columns.id, rules.dataset, source)
    names = _label_names(frame, columns.label, rules)
    classes = rules.classes or _default_classes(names, rules.task)
    _check_classes(classes, rules, source)
    keep, labels, images, texts, splits = [], [], [], [], []
    index = {c: i for i, c in enumerate(classes)}
    records = frame.to_dict("records")
    for row, (sample, record, label) in enumerate(zip(ids, records, names)):
        encoded, problem = _encode_label(label, index, rules, columns.label)
        image = None
        if problem is None and columns.image:
            image = resolve_image(record[columns.image], rules.image_dirs)
            if image is None:
                problem = _image_problem(record[columns.image], rules.image_dirs)
        text = None
        if problem is None and (columns.text or columns.text_template):
            text = _text(record, columns, rules.text_separator)
            if not text.strip():
                problem = f"empty text in {', '.join(columns.text) or 'text_template'}"
        split = None
        if problem is None and columns.split:
            split, problem = _split(record[columns.split], columns.split)
        if problem is not None:
            bad.report(sample, problem)
            continue
        keep.append(row)
        labels.append(encoded)
        images.append(str(image) if image is not None else None)
        texts.append(text)
        splits.append(split)
    if not keep:
        raise UserError(f"dataset {rules.dataset!r} ({source}): every sample is bad ({len(bad.skipped)} skipped, "
                        f"e.g. {next(iter(bad.skipped.items()), ('', ''))[1]})")
    rows = np.array(keep, dtype=np.int64)
    modalities: dict[str, Any] = {}
    if columns.image:
        modalities["image"] = images
    if columns.text or columns.text_template:
        modalities["text"] = texts
    if columns.tabular:
        modalities["tabular"] = frame.iloc[rows][columns.tabular].apply(numeric_where_possible).reset_index(drop=True)
    groups = None
    if columns.group:
        values = frame[columns.group].iloc[rows]
        groups = np.where(values.isna(), ids[rows], values.astype(str).str.strip()).astype(str)
    label_array = np.array(labels, dtype=np.int64)
    table = loading.drop_broken_images(DatasetTable(
        ids=ids[rows], labels=label_array, task=rules.task, classes=tuple(classes), modalities=modalities,
        groups=groups, split=np.array(splits) if columns.split else None, skipped=bad.skipped), bad)
    if columns.split and whole_split:
        require_train_and_test(table.split, rules.dataset, f"{source}: split column {columns.split!r}")
    return table


def require_train_and_test(split: np.ndarray, dataset: str, where: str) -> None:
    """An official split without train or test rows is a wrong column or file, not a split."""
    for needed in ("train", "test"):
        if needed not in split:
            raise UserError(f"dataset {dataset!r} ({where}) has no {needed!r} rows; an official split needs "
                            "train and test (val is optional)")


def find_column(frame, given: str, default: str, variants: Sequence[str], dataset: str, param: str,
                required: bool = True) -> str:
    """The column for a role: ``given`` when set to something other than ``default``
    (it must exist), else the first of ``variants`` (default first) the table has, matched
    without regard to case; '' for an optional role the table lacks."""
    columns = [str(c) for c in frame.columns]
    if given != default:
        if given and given not in columns:
            raise UserError(f"dataset {dataset!r}: no column {given!r} ({param}); found columns {loading.short_list(columns)}")
        return given
    lowered = {c.lower(): c for c in columns}
    for name in (default, *variants):
        if name and name.lower() in lowered:
            return lowered[name.lower()]
    if required:
        raise UserError(f"dataset {dataset!r}: no {param} column (looked for {loading.short_list([default, *variants])}); "
                        f"found columns {loading.short_list(columns)}; set {param}")
    return ""


def _optional(frame, given: str, default: str, dataset: str, param: str) -> str:
    """An optional column: the default name may be absent, a name the user set may not."""
    if given in frame.columns:
        return given
    if given and given != default:
        raise UserError(f"dataset {dataset!r}: no column {given!r} ({param}); found columns "
                        f"{loading.short_list(list(frame.columns))}")
    return ""


def _require_columns(frame, columns: Columns, dataset: str, source: str) -> None:
    named = [("label_column", columns.label), ("split_column", columns.split), ("group_column", columns.group),
             ("image_column", columns.image)]
    named += [("text_columns", c) for c in columns.text] + [("tabular_columns", c) for c in columns.tabular]
    absent = [f"{name!r} ({param})" for param, name in named if name and name not in frame.columns]
    if absent:
        raise UserError(f"dataset {dataset!r} ({source}): no column {', '.join(absent)}; found columns "
                        f"{loading.short_list(list(frame.columns))}")
    if columns.text_template:
        fields = set(re.findall(r"{([^{}:!]+)", columns.text_template))
        unknown = sorted(fields - set(frame.columns))
        if unknown:
            raise UserError(f"dataset {dataset!r} ({source}): text_template fields {loading.short_list(unknown)} are not "
                            f"columns; found columns {loading.short_list(list(frame.columns))}")


def _ids(frame, column: str, dataset: str, source: str) -> np.ndarray:
    if not column:
        return np.array([str(i) for i in range(len(frame))])
    values = frame[column]
    if values.isna().any():
        rows = np.flatnonzero(values.isna().to_numpy())
        raise UserError(f"dataset {dataset!r} ({source}): rows {loading.short_list([str(r) for r in rows])} have no id "
                        f"in {column!r}")
    ids = values.astype(str).str.strip().to_numpy()
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise UserError(f"dataset {dataset!r} ({source}): ids in {column!r} must be unique; repeated: "
                        f"{loading.short_list(list(unique[counts > 1]))}")
    return ids


def _label_names(frame, column: str, rules: Rules) -> list[Any]:
    """Each row's label as text (numbers without a trailing '.0'), a list of names for
    multilabel rows, or None when the cell is empty."""
    out: list[Any] = []
    for value in frame[column]:
        if loading.is_missing(value):
            out.append(None)
            continue
        if rules.task == "multilabel":
            parts = [p for p in str(value).split(rules.label_separator) if p.strip()]
            out.append([rules.normalise_label(_number_text(p.strip())) for p in parts])
        else:
            out.append(rules.normalise_label(_number_text(value)))
    return out


def _default_classes(names: list[Any], task: str) -> list[str]:
    if task == "multilabel":
        seen = {n for row in names if row is not None for n in row}
    else:
        seen = {n for n in names if n is not None}
    return sorted(seen, key=loading.natural_key)


def _check_classes(classes: list[str], rules: Rules, source: str) -> None:
    if rules.task == "binary" and len(classes) != 2:
        raise UserError(f"dataset {rules.dataset!r} ({source}): task = 'binary' needs 2 classes, found "
                        f"{len(classes)} ({loading.short_list(classes)}); set task = 'multiclass' or classes")
    if len(set(classes)) != len(classes) or not classes:
        raise UserError(f"dataset {rules.dataset!r} ({source}): classes must be distinct names, got {classes!r}")


def _encode_label(label: Any, index: dict[str, int], rules: Rules, column: str) -> tuple[Any, str | None]:
    if label is None:
        return None, f"no label in {column!r}"
    if rules.task == "multilabel":
        unknown = [n for n in label if n not in index]
        if unknown:
            return None, f"labels {loading.short_list(unknown)} in {column!r} are not among the classes {list(index)}"
        vector = np.zeros(len(index), dtype=np.int64)
        vector[[index[n] for n in label]] = 1
        return vector, None
    if label not in index:
        return None, f"label {label!r} in {column!r} is not one of the classes {list(index)}"
    return index[label], None


def _image_problem(value: Any, image_dirs: Sequence[Path]) -> str:
    if loading.is_missing(value):
        return "no image path"
    where = " or ".join(repr(str(d)) for d in image_dirs)
    return f"image file {str(value).strip()!r} not found (relative paths are read under {where})"


def _text(record: dict[str, Any], columns: Columns, separator: str) -> str:
    if columns.text_template:
        return loading.render(columns.text_template, record)
    parts = [str(record[c]).strip() for c in columns.text if not loading.is_missing(record[c])]
    return separator.join(parts)


def _split(value: Any, column: str) -> tuple[str | None, str | None]:
    if loading.is_missing(value):
        return None, f"no split in {column!r}"
    split = loading.normalise_split(value)
    if split not in SPLITS:
        return None, f"split {value!r} in {column!r} is not one of {', '.join(SPLITS)}"
    return split, None


def numeric_where_possible(values):
    """A text column as numbers when every present value parses (so the tabular encoder
    scales it), else as it is (categories)."""
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    if (numbers.notna() | values.isna()).all():
        return numbers
    return values


def _number_text(value: Any) -> str:
    """'1', '1.0' and 1.0 all read '1'; other values stripped."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number.is_integer() else text
