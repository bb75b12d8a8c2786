"""COCO-QA (Ren, Kiros & Zemel 2015): questions generated from COCO captions, each with a
one-word answer; the answer is the class (430 in the test split), the question the text.

Layout (the ``cocoqa-2015-05-17`` release), under ``root``::

    train/questions.txt  train/answers.txt  train/img_ids.txt  train/types.txt
    test/questions.txt   test/answers.txt   test/img_ids.txt   test/types.txt

Line ``i`` of the four files of a split is one sample. ``img_ids.txt`` holds COCO image
ids (integers); the images are COCO's own files, found by id anywhere under ``root``
(a symlinked COCO folder works): ``COCO_train2014_000000xxxxxx.jpg``,
``COCO_val2014_...`` or the 2017-style ``000000xxxxxx.jpg``. ``types.txt`` is the
question generator: 0 object, 1 number, 2 color, 3 location.

The official split is train / test (validation is carved out of train by the harness),
and every question of one image shares a group, so validation never sees an image that
training saw. The question type is chosen by the kind of answer, so it is a cue about
the label: it is not a modality unless ``tabular_columns = ["type"]`` asks for it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading

SPLITS = ("train", "test")
#: the files every split folder holds; ``types.txt`` is read only when it is used
FILES = ("questions.txt", "answers.txt", "img_ids.txt")
TYPES = ("object", "number", "color", "location")
TABULAR_COLUMNS = ("type",)
PUBLISHED = ("http://www.cs.toronto.edu/~mren/research/imageqa/data/cocoqa/ (questions); "
             "https://cocodataset.org (images: train2014 and val2014)")
ACCESS = "free download; COCO annotations CC BY 4.0, images under the Flickr terms of use"
#: COCO file names: COCO_train2014_000000123456.jpg, COCO_val2014_..., 000000123456.jpg
COCO_IMAGE = re.compile(r"(?:COCO_[a-z]+\d{4}_)?(\d{12})\.jpe?g", re.IGNORECASE)


class CocoQa(Dataset):
    """COCO-QA: COCO images + generated questions; the one-word answer is the class."""

    name = "coco_qa"
    modalities = ("image", "text", "tabular")
    task_kinds = ("multiclass",)
    citation = "Ren, Kiros & Zemel. Exploring Models and Data for Image Question Answering. NeurIPS 2015."
    parameters = (
        loading.ROOT,
        Param("template", str, "{question}", "text of a sample; fields {question} and {type} "
              "(object / number / color / location, a cue about the answer)"),
        Param("tabular_columns", list, [], f"metadata columns as a tabular modality: [] or {list(TABULAR_COLUMNS)} "
              "(the question type is picked by the kind of answer: a label cue)"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def __init__(self, **params):
        super().__init__(**params)
        unknown = [c for c in self.params["tabular_columns"] if c not in TABULAR_COLUMNS]
        if unknown:
            raise UserError(f"coco_qa: tabular_columns {unknown} are not columns of COCO-QA; "
                            f"the only one is {TABULAR_COLUMNS[0]!r}")
        loading.check_template(self.name, self.params["template"], {"question": "what is on the table ?", "type": "object"})
        self._images: dict[int, Path] | None = None

    def task_kind(self) -> str:
        return "multiclass"

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text", "tabular") if self.params["tabular_columns"] else ("image", "text")

    def info(self) -> dict[str, str]:
        return {"text template": self.params["template"]}

    def fingerprint(self) -> str:
        files = self._files()
        ids = {_image_id(line) for split in SPLITS for line in loading.read_lines(files[split]["img_ids.txt"])}
        images = self._image_index()
        return loading.fingerprint_files(self.name, self.params, [p for f in files.values() for p in f.values()],
                                         [images[i] for i in sorted(ids - {None}) if i in images])

    def load(self):
        import pandas as pd

        from mmbench.data import DatasetTable

        files, images = self._files(), self._image_index()
        bad = loading.BadSamples(self.name, self.params["on_bad_sample"])
        rows: list[dict] = []
        for split in SPLITS:
            columns = {name: loading.read_lines(path) for name, path in files[split].items()}
            _check_aligned(split, columns)
            for i in range(len(columns["questions.txt"])):
                row = self._sample(split, i, columns, images, bad)
                if row is not None:
                    rows.append(row)
        if not rows:
            raise UserError(f"coco_qa: no usable sample under {self.params['root']!r} ({len(bad.skipped)} skipped)")
        classes = sorted({r["answer"] for r in rows})
        index = {name: k for k, name in enumerate(classes)}
        modalities = {"image": [r["image"] for r in rows],
                      "text": [loading.render(self.params["template"], r) for r in rows]}
        if self.params["tabular_columns"]:
            modalities["tabular"] = pd.DataFrame({c: [r[c] for r in rows] for c in self.params["tabular_columns"]})
        return loading.drop_broken_images(DatasetTable(
            ids=np.array([r["id"] for r in rows]), labels=np.array([index[r["answer"]] for r in rows], dtype=np.int64),
            task="multiclass", classes=tuple(classes), modalities=modalities,
            groups=np.array([r["image_id"] for r in rows]), split=np.array([r["split"] for r in rows]),
            skipped=bad.skipped), bad)

    def _sample(self, split: str, i: int, columns: dict[str, list[str]], images: dict[int, Path],
                bad: loading.BadSamples) -> dict | None:
        """One line of the split's files as a row, or None (reported) when it is unusable."""
        sample = f"{split}-{i + 1:06d}"
        where = f"{split}/*.txt line {i + 1}"
        question, answer = columns["questions.txt"][i].strip(), columns["answers.txt"][i].strip()
        image_id = _image_id(columns["img_ids.txt"][i])
        if image_id is None:
            return bad.report(sample, f"image id {columns['img_ids.txt'][i].strip()!r} ({where}) is not a COCO id")
        if not question:
            return bad.report(sample, f"empty question ({where})")
        if not answer:
            return bad.report(sample, f"empty answer ({where})")
        if image_id not in images:
            return bad.report(sample, f"no image file for COCO id {image_id} ({where}): looked under the root for "
                              f"COCO_train2014_{image_id:012d}.jpg, COCO_val2014_{image_id:012d}.jpg or "
                              f"{image_id:012d}.jpg")
        row = {"id": sample, "split": split, "question": question, "answer": answer,
               "image": str(images[image_id]), "image_id": str(image_id), "type": None}
        if "types.txt" in columns:
            code = columns["types.txt"][i].strip()
            if code not in ("0", "1", "2", "3"):
                return bad.report(sample, f"question type {code!r} ({where}) is not 0-3")
            row["type"] = TYPES[int(code)]
        return row

    def _files(self) -> dict[str, dict[str, Path]]:
        """The split files, checked; ``types.txt`` only when the text or the table uses it."""
        root = Path(self.params["root"])
        names = FILES + (("types.txt",) if self._uses_type() else ())
        wanted = [f"{split}/{name}" for split in SPLITS for name in names]
        missing = [name for name in wanted if not (root / name).is_file()]
        if missing:
            raise loading.missing_files(self.name, root, missing, PUBLISHED, ACCESS)
        return {split: {name: root / split / name for name in names} for split in SPLITS}

    def _uses_type(self) -> bool:
        return "type" in self.params["tabular_columns"] or "{type" in self.params["template"]

    def _image_index(self) -> dict[int, Path]:
        if self._images is None:
            self._images = loading.index_images(Path(self.params["root"]), COCO_IMAGE)
        return self._images


def _image_id(line: str) -> int | None:
    text = line.strip()
    return int(text) if text.isdigit() else None


def _check_aligned(split: str, columns: dict[str, list[str]]) -> None:
    """Files of one split with different line counts are misaligned: pairing them line by
    line would give questions the wrong answers without any error."""
    counts = {name: len(lines) for name, lines in columns.items()}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{split}/{name}: {n}" for name, n in counts.items())
        raise UserError(f"coco_qa: the files of split {split!r} must have one line per question, but their "
                        f"line counts differ ({listing}); re-extract the release")
