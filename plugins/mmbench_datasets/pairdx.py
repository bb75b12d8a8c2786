"""PairDx (2025): 22,665 medical image-caption pairs in six document classes, from
MultiCaRe case reports; Zenodo record 17452236.

The record's exact file layout could not be read here (no network), so the loader is
config-driven: ``csv`` names the table (relative to ``root``), and the ``*_column``
parameters name its columns. With the defaults it finds the common layouts without
configuration:

- one table (``pairdx.csv``, ``PairDx.csv``, ``metadata.csv``, ``labels.csv``,
  ``captions.csv``, ``data.csv``, or the only CSV / Parquet file in ``root``) with an
  optional split column, or one table per split (``train.csv``, ``val.csv`` /
  ``valid.csv`` / ``validation.csv``, ``test.csv``), whose file gives the official split;
- columns found without regard to case: image ``image`` / ``image_path`` / ``file_name``
  / ``filename`` / ``file`` / ``path``; caption ``caption`` / ``text`` / ``captions``;
  label ``label`` / ``class`` / ``modality`` / ``category``; split ``split``;
- image paths relative to ``image_dir`` when given, else to the table's folder, then
  ``root/images``.

Labels are the class names, read without regard to case, spaces or hyphens
("Medical Photograph" is ``medical_photograph``). A table of class NUMBERS needs
``classes`` in the numbers' order: the loader never guesses which number is which class
(zero-shot prompts are built from the names). The official 70/15/15 stratified split is
used when the table carries it; groups come from a case / patient id column when there is
one (several figures of one case report must not cross splits).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading
from mmbench_datasets.table import (
    Columns,
    Rules,
    existing_images,
    find_column,
    read_frame,
    read_rows,
    require_train_and_test,
)

#: the six classes of the paper (Table 3, Figure 2), in alphabetical order
CLASSES = ("chart", "electrography", "endoscopy", "medical_photograph", "ophthalmic_imaging", "radiology")
TABLE_NAMES = ("pairdx.csv", "PairDx.csv", "metadata.csv", "labels.csv", "captions.csv", "data.csv",
               "pairdx.parquet", "metadata.parquet")
#: one table per split: the file names each split goes by
SPLIT_FILES = {"train": ("train.csv", "train.parquet"),
               "val": ("val.csv", "valid.csv", "validation.csv", "val.parquet", "validation.parquet"),
               "test": ("test.csv", "test.parquet")}
IMAGE_COLUMNS = ("image", "image_path", "file_name", "filename", "file", "path")
CAPTION_COLUMNS = ("caption", "text", "captions")
LABEL_COLUMNS = ("label", "class", "modality", "category")
ID_COLUMNS = ("image_id", "pair_id", "uid")
GROUP_COLUMNS = ("case_id", "patient_id", "article_id", "pmcid")
PUBLISHED = "https://zenodo.org/records/17452236"
ACCESS = "open access on Zenodo; cite the PairDx paper and MultiCaRe"


class PairDx(Dataset):
    """PairDx medical image-caption pairs, 6 document classes (config-driven columns)."""

    name = "pairdx"
    modalities = ("image", "text", "tabular")
    task_kinds = ("multiclass",)
    citation = "PairDx (2025), Zenodo record 17452236"
    parameters = (
        loading.ROOT,
        Param("csv", str, "", "the table, relative to root (CSV / TSV / Parquet); empty: pairdx.csv, "
              "metadata.csv, labels.csv..., one table per split (train.csv, val.csv, test.csv), or the only "
              "table in root"),
        Param("image_dir", str, "", "folder the image paths are relative to (relative to root); empty: the "
              "table's folder, then root/images"),
        Param("id_column", str, "id", "pair id column (default: id, image_id, pair_id, uid; else row numbers)"),
        Param("image_column", str, "image", "image path column (default: image, image_path, file_name, ...)"),
        Param("caption_column", str, "caption", "caption column (default: caption, text, captions)"),
        Param("label_column", str, "label", "class column (default: label, class, modality, category)"),
        Param("split_column", str, "split", "official split column (train/val/test); when the default 'split' "
              "is absent: the split files, else the runner's seeded stratified split"),
        Param("group_column", str, "case_id", "case / patient id column; when the default is absent: "
              "patient_id, article_id or pmcid, else no groups"),
        Param("classes", list, [], "class names; default: the six PairDx classes. A table of class numbers "
              "needs them in the numbers' order"),
        Param("tabular_columns", list, [], "metadata columns for the tabular modality (e.g. age, gender); "
              "default: none"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
        loading.ENCODING,
    )

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text", "tabular") if self.params["tabular_columns"] else ("image", "text")

    def task_kind(self) -> str:
        return "multiclass"

    def info(self) -> dict[str, str]:
        return {"text template": "{caption} (the pair's own caption, unchanged)"}

    def fingerprint(self) -> str:
        tables = self._tables()
        images = []
        for path in tables.values():
            frame = read_frame(self.name, path, self.params["encoding"])
            column = find_column(frame, self.params["image_column"], "image", IMAGE_COLUMNS, self.name,
                                 "image_column", required=False)
            images += existing_images(frame, column, self._image_dirs(path))
        return loading.fingerprint_files(self.name, self.params, list(tables.values()), images)

    def load(self):
        import pandas as pd

        from mmbench.data import DatasetTable

        tables = self._tables()
        parts = []
        for split_name, path in tables.items():
            frame = read_frame(self.name, path, self.params["encoding"])
            if split_name:
                frame["__split"] = split_name
            parts.append(read_rows(frame, self._columns(frame, bool(split_name)), self._rules(frame, path),
                                   source=str(path), whole_split=not split_name))
        if len(parts) == 1:
            return parts[0]
        # one table per split: ids are unique within a file only
        ids = [f"{name}/{i}" for name, t in zip(tables, parts) for i in t.ids]
        skipped = {f"{name}/{k}": v for name, t in zip(tables, parts) for k, v in t.skipped.items()}
        splits = np.concatenate([t.split for t in parts])
        require_train_and_test(splits, self.name, "split files " + ", ".join(t.name for t in tables.values()))
        modalities = {m: [v for t in parts for v in t.modalities[m]] for m in ("image", "text")}
        if self.params["tabular_columns"]:
            modalities["tabular"] = pd.concat([t.modalities["tabular"] for t in parts], ignore_index=True)
        groups = None
        if all(t.groups is not None for t in parts):
            groups = np.concatenate([t.groups for t in parts])
        return DatasetTable(ids=np.array(ids), labels=np.concatenate([t.labels for t in parts]), task="multiclass",
                            classes=parts[0].classes, modalities=modalities, groups=groups, split=splits,
                            skipped=skipped)

    # -- layout ------------------------------------------------------------------------------
    def _tables(self) -> dict[str, Path]:
        """{split or '': table path}: the one table, or one per split."""
        root = Path(self.params["root"])
        given = self.params["csv"]
        if given:
            path = root / given
            if not path.is_file():
                raise loading.missing_files(self.name, root, [given], PUBLISHED, ACCESS)
            return {"": path}
        single = loading.first_existing(root, TABLE_NAMES)
        if single is not None:
            return {"": single}
        per_split = {s: loading.first_existing(root, names) for s, names in SPLIT_FILES.items()}
        if per_split["train"] is not None and per_split["test"] is not None:
            return {s: path for s, path in per_split.items() if path is not None}
        others = sorted(p for p in root.glob("*") if p.suffix.lower() in (".csv", ".tsv", ".parquet")) \
            if root.is_dir() else []
        if len(others) == 1:
            return {"": others[0]}
        looked = [*TABLE_NAMES[:6], "train.csv + test.csv (+ val.csv)"]
        if len(others) > 1:
            looked.append(f"(several tables: {', '.join(p.name for p in others)}; set csv to the one to read)")
        raise loading.missing_files(self.name, root, looked, PUBLISHED, ACCESS)

    def _image_dirs(self, table: Path) -> list[Path]:
        root = Path(self.params["root"])
        if self.params["image_dir"]:
            return [root / self.params["image_dir"]]
        return [table.parent, root / "images"]

    def _columns(self, frame, split_from_file: bool) -> Columns:
        p, name = self.params, self.name
        if split_from_file:
            split = "__split"
        else:
            split = find_column(frame, p["split_column"], "split", (), name, "split_column", required=False)
        return Columns(
            id=find_column(frame, p["id_column"], "id", ID_COLUMNS, name, "id_column", required=False),
            label=find_column(frame, p["label_column"], "label", LABEL_COLUMNS, name, "label_column"),
            image=find_column(frame, p["image_column"], "image", IMAGE_COLUMNS, name, "image_column"),
            text=[find_column(frame, p["caption_column"], "caption", CAPTION_COLUMNS, name, "caption_column")],
            split=split,
            group=find_column(frame, p["group_column"], "case_id", GROUP_COLUMNS, name, "group_column",
                              required=False),
            tabular=list(p["tabular_columns"]),
        )

    def _rules(self, frame, table: Path) -> Rules:
        classes = [_class_name(c) for c in self.params["classes"]] or list(CLASSES)
        normalise = _class_name
        if self._class_numbers(frame):
            if not self.params["classes"]:
                raise UserError("dataset 'pairdx': the labels are class numbers; set classes to the six class "
                                f"names in the numbers' order (e.g. classes = {list(CLASSES)!r} if 0 is chart); "
                                "the loader does not guess which number is which class")
            names = dict(enumerate(classes))

            def normalise(value: str) -> str:  # 3 -> the fourth name of classes
                return names.get(int(float(value)), value)
        return Rules(dataset=self.name, task="multiclass", classes=classes,
                     on_bad_sample=self.params["on_bad_sample"], image_dirs=self._image_dirs(table),
                     normalise_label=normalise)

    def _class_numbers(self, frame) -> bool:
        column = find_column(frame, self.params["label_column"], "label", LABEL_COLUMNS, self.name, "label_column")
        values = frame[column].dropna().astype(str).str.strip()
        return bool(len(values)) and bool(values.str.fullmatch(r"\d+(\.0)?").all())


def _class_name(value: Any) -> str:
    """'Medical Photograph', 'medical-photograph' and 'medical_photograph' are one class."""
    return re.sub(r"[\s\-]+", "_", str(value).strip().lower())
