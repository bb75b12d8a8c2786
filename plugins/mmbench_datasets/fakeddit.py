"""Fakeddit (Nakamura et al., LREC 2020): Reddit posts (title + image + metadata)
labelled true / fake at 2, 3 and 6 levels of detail.

Layout read (v2.0 from the authors' Google Drive; ``root`` is the folder that holds the
TSV files or the ``multimodal_only_samples`` / ``all_samples`` folders)::

    multimodal_only_samples/multimodal_{train,validate,test_public}.tsv   (or at root)
    all_samples/all_{train,validate,test_public}.tsv                        (samples = "all")
    public_image_set/{id}.jpg   (the image archive)  or  images/{id}.jpg   (image_downloader.py)

Columns used: ``id``, ``clean_title`` / ``title``, ``hasImage``, ``2_way_label``,
``3_way_label``, ``6_way_label`` and the tabular columns; ``Unnamed: ...`` index columns
are ignored (the authors' README says so). The official split comes from the file names.
The labels were assigned per subreddit, so ``subreddit`` (and ``author`` / ``domain``,
which follow it) would give the label away: they are never in the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading

#: class names per task, in the label column's index order (the authors' encoding)
CLASSES = {
    "2_way": ("fake", "true"),
    "3_way": ("true", "fake with true text", "fake with false text"),
    "6_way": ("true", "satire/parody", "misleading content", "imposter content", "false connection",
              "manipulated content"),
}
#: official split -> the part of the file name that holds it
SPLIT_FILES = {"train": "train", "val": "validate", "test": "test_public"}
#: where each kind of sample file sits under root (its own folder first, then root itself)
FOLDERS = {"multimodal": "multimodal_only_samples", "all": "all_samples"}
IMAGE_FOLDERS = ("public_image_set", "images")
PUBLISHED = "https://github.com/entitize/Fakeddit (v2.0 TSVs and public_image_set on Google Drive)"
ACCESS = "free for research use; cite Nakamura, Levy and Wang, 'r/Fakeddit', LREC 2020"
DEFAULT_TABULAR = ["score", "num_comments", "upvote_ratio"]


class Fakeddit(Dataset):
    """Fakeddit: Reddit post titles, images and metadata; 2-, 3- or 6-way fake-news labels."""

    name = "fakeddit"
    modalities = ("image", "text", "tabular")
    task_kinds = ("binary", "multiclass")
    parameters = (
        loading.ROOT,
        Param("task", str, "2_way", "label column: 2_way (fake / true, binary), 3_way or 6_way (multiclass)",
              choices=tuple(CLASSES)),
        Param("text", str, "clean_title", "text column: clean_title (the authors' filtered title, what their "
              "baselines read) or title (as posted)", choices=("clean_title", "title")),
        Param("samples", str, "multimodal", "multimodal: multimodal_*.tsv, posts with an image (the paper's "
              "setting); all: all_*.tsv, posts with and without one", choices=tuple(FOLDERS)),
        Param("no_image", str, "mask", "a post with hasImage False: mask (kept, image marked missing) or skip "
              "(left out and counted)", choices=("mask", "skip")),
        Param("tabular_columns", list, DEFAULT_TABULAR, "metadata columns of the tabular modality ([] for "
              "none); subreddit, author and domain follow the label and are left out by default"),
        Param("image_dir", str, "", "image folder relative to root; empty: public_image_set/ or images/ "
              "(beside root or the TSVs), else the TSVs' folder"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        columns = self.params["tabular_columns"]
        if not all(isinstance(c, str) and c for c in columns):
            raise UserError(f"fakeddit: tabular_columns must be column names, got {columns!r}")

    def task_kind(self) -> str:
        return "binary" if self.params["task"] == "2_way" else "multiclass"

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text", "tabular") if self.params["tabular_columns"] else ("image", "text")

    def info(self) -> dict[str, str]:
        return {"text template": f"{{{self.params['text']}}}",
                "label": f"{self.params['task']}_label: " + ", ".join(
                    f"{i} = {c}" for i, c in enumerate(CLASSES[self.params["task"]])),
                "images": str(self._image_dir(self._files())),
                "tabular columns": ", ".join(self.params["tabular_columns"]) or "(none)"}

    def fingerprint(self) -> str:
        files = self._files()
        return loading.fingerprint_files(self.name, self.params, list(files.values()),
                                         loading.list_files(self._image_dir(files)))

    def load(self):
        from mmbench.data import DatasetTable

        p = self.params
        files = self._files()
        image_dir = self._image_dir(files)
        present = {path.name for path in loading.list_files(image_dir)}
        bad = loading.BadSamples(self.name, p["on_bad_sample"])
        label_column = f"{p['task']}_label"
        n_classes = len(CLASSES[p["task"]])
        ids, labels, texts, images, split, rows, seen = [], [], [], [], [], [], {}
        for split_name, path in files.items():
            columns = list(dict.fromkeys(["id", label_column, p["text"], "hasImage", *p["tabular_columns"]]))
            frame = _read(path, columns)
            for values in zip(*(frame[c].tolist() for c in columns)):
                record = dict(zip(columns, values))
                sample_id = str(record["id"]).strip()
                if sample_id in seen:
                    bad.report(sample_id, f"id repeated in {path.name} (first in {seen[sample_id]})")
                    continue
                seen[sample_id] = path.name
                label = _class_index(record[label_column], n_classes)
                if label is None:
                    bad.report(sample_id, f"{label_column} {record[label_column]!r} in {path.name} is not "
                                          f"one of 0..{n_classes - 1}")
                    continue
                text = record[p["text"]]
                if loading.is_missing(text):
                    bad.report(sample_id, f"empty {p['text']} in {path.name}")
                    continue
                has_image = _flag(record["hasImage"])
                if has_image is None:
                    bad.report(sample_id, f"hasImage {record['hasImage']!r} in {path.name} is not True / False")
                    continue
                image = None
                if has_image:
                    if f"{sample_id}.jpg" not in present:
                        bad.report(sample_id, f"image {image_dir / f'{sample_id}.jpg'} is missing")
                        continue
                    image = str(image_dir / f"{sample_id}.jpg")
                elif p["no_image"] == "skip":
                    bad.skipped[sample_id] = "no image (hasImage = False; no_image = 'skip')"
                    continue
                ids.append(sample_id)
                labels.append(label)
                texts.append(str(text).strip())
                images.append(image)
                split.append(split_name)
                rows.append([record[c] for c in p["tabular_columns"]])
        modalities: dict[str, Any] = {"image": images, "text": texts}
        if p["tabular_columns"]:
            import pandas as pd

            modalities["tabular"] = pd.DataFrame(rows, columns=p["tabular_columns"])
        has_image = np.array([i is not None for i in images], dtype=bool)
        return loading.drop_broken_images(DatasetTable(
            ids=np.array(ids, dtype=str), labels=np.array(labels, dtype=np.int64), task=self.task_kind(),
            classes=CLASSES[p["task"]], modalities=modalities, split=np.array(split, dtype=str),
            masks={} if has_image.all() else {"image": has_image}, skipped=bad.skipped), bad)

    def _files(self) -> dict[str, Path]:
        """The sample file per official split, all in one folder (root or its samples folder)."""
        root = Path(self.params["root"])
        kind = self.params["samples"]
        names = {split: f"{kind}_{part}.tsv" for split, part in SPLIT_FILES.items()}
        for folder in (root / FOLDERS[kind], root):
            if all((folder / name).is_file() for name in names.values()):
                return {split: folder / name for split, name in names.items()}
        looked_for = [f"{FOLDERS[kind]}/{name} (or {name})" for name in names.values()]
        raise loading.missing_files(self.name, root, looked_for, PUBLISHED, ACCESS)

    def _image_dir(self, files: dict[str, Path]) -> Path:
        root = Path(self.params["root"])
        if self.params["image_dir"]:
            folder = root / self.params["image_dir"]
            if not folder.is_dir():
                raise UserError(f"fakeddit: image_dir {str(folder)!r} is not a folder; set image_dir to the "
                                "folder (relative to root) that holds the {id}.jpg images")
            return folder
        tsv_folder = files["train"].parent
        candidates = [base / name for base in dict.fromkeys((root, tsv_folder)) for name in IMAGE_FOLDERS]
        return next((c for c in candidates if c.is_dir()), tsv_folder)


def _read(path: Path, needed: list[str]):
    """One sample file, ids and texts as text; a missing column is a UserError naming it."""
    try:
        frame = loading.read_table(path, dtype={"id": str, "title": str, "clean_title": str}, keep_default_na=False,
                                   na_values=[""])
    except UserError:  # a byte that is not UTF-8: already says file and line
        raise
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for a malformed file
        raise UserError(f"fakeddit: cannot read {path} ({type(exc).__name__}: {exc}); re-download it") from None
    frame = frame.loc[:, [c for c in frame.columns if not str(c).startswith("Unnamed")]]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise UserError(f"fakeddit: {path} has no column(s) {', '.join(map(repr, absent))}; it has "
                        f"{', '.join(map(str, frame.columns))}")
    return frame


def _class_index(value: Any, n_classes: int) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not number.is_integer() or not 0 <= number < n_classes:
        return None
    return int(number)


def _flag(value: Any) -> bool | None:
    text = str(value).strip().lower()
    return True if text in ("true", "1", "1.0") else False if text in ("false", "0", "0.0") else None
