"""DAQUAR (Malinowski & Fritz 2014): questions about NYU-Depth v2 indoor scenes; an answer
is one or more objects ("chair, table"), so the task is multilabel.

Layout, under ``root``: the question files ``qa.894.raw.train.txt`` and
``qa.894.raw.test.txt`` (DAQUAR-all; ``subset = "reduced"`` reads DAQUAR-37's
``qa.37.raw.reduced.{train,test}.txt``, also published as ``qa.37.raw.{train,test}.txt``),
and the images ``imageN.png`` found anywhere under the root (the release unpacks them
into ``nyu_depth_images/``). The question files alternate a question line and an answer
line; the image is named inside the question: "what is on the desk in the image1 ?".

Labels: the answer split on commas, one 0/1 column per answer seen in either split.
Text: the question with its image reference reduced to "the image" (``{question}``), so
the text carries no sample identifier; ``{raw_question}`` is the line as published.
Groups are image ids (several questions per image); the official split is train / test
and validation is carved out of train by the harness, by image. DAQUAR has no metadata,
so it has no tabular modality.
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
#: question files per subset and split, newest name first
QA_FILES = {
    "all": {s: (f"qa.894.raw.{s}.txt",) for s in SPLITS},
    "reduced": {s: (f"qa.37.raw.reduced.{s}.txt", f"qa.37.raw.{s}.txt") for s in SPLITS},
}
PUBLISHED = ("https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-learning/research/"
             "vision-and-language/visual-turing-challenge (question files and nyu_depth_images.tar)")
ACCESS = "free download for research"
NYU_IMAGE = re.compile(r"image(\d+)\.(?:png|jpe?g)", re.IGNORECASE)
#: the image a question is about: "... in the image123 ?"
IMAGE_REFERENCE = re.compile(r"\bimage(\d+)\b", re.IGNORECASE)


class Daquar(Dataset):
    """DAQUAR: NYU-Depth indoor images + questions; the comma-separated answers are the labels."""

    name = "daquar"
    modalities = ("image", "text")
    task_kinds = ("multilabel",)
    citation = ("Malinowski & Fritz. A Multi-World Approach to Question Answering about Real-World Scenes "
                "based on Uncertain Input. NeurIPS 2014.")
    parameters = (
        loading.ROOT,
        Param("subset", str, "all", "DAQUAR-all (qa.894.*, 894 object classes) or DAQUAR-37 "
              "(qa.37.*, 37 classes)", choices=("all", "reduced")),
        Param("template", str, "{question}", "text of a sample; {question} names no image id "
              "('in the image ?'), {raw_question} is the published line ('in the image123 ?')"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def __init__(self, **params):
        super().__init__(**params)
        loading.check_template(self.name, self.params["template"],
                       {"question": "what is on the desk in the image ?", "raw_question": "what is on the desk "
                        "in the image1 ?"})
        self._images: dict[int, Path] | None = None

    def task_kind(self) -> str:
        return "multilabel"

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text")

    def info(self) -> dict[str, str]:
        return {"text template": self.params["template"]}

    def fingerprint(self) -> str:
        files = self._files()
        ids = {i for path in files.values() for _, question, _ in _pairs(path) if (i := _image_id(question)) is not None}
        images = self._image_index()
        return loading.fingerprint_files(self.name, self.params, list(files.values()),
                                         [images[i] for i in sorted(ids) if i in images])

    def load(self):
        from mmbench.data import DatasetTable

        images = self._image_index()
        bad = loading.BadSamples(self.name, self.params["on_bad_sample"])
        rows = []
        for split, path in self._files().items():
            for i, (line, question, answer) in enumerate(_pairs(path)):
                row = _sample(f"{split}-{i + 1:05d}", split, f"{path.name} line {line}", question, answer, images, bad)
                if row is not None:
                    rows.append(row)
        if not rows:
            raise UserError(f"daquar: no usable sample under {self.params['root']!r} ({len(bad.skipped)} skipped)")
        classes = sorted({a for r in rows for a in r["answers"]})
        index = {name: k for k, name in enumerate(classes)}
        labels = np.zeros((len(rows), len(classes)), dtype=np.int64)
        for k, row in enumerate(rows):
            labels[k, [index[a] for a in row["answers"]]] = 1
        return loading.drop_broken_images(DatasetTable(
            ids=np.array([r["id"] for r in rows]), labels=labels, task="multilabel", classes=tuple(classes),
            modalities={"image": [r["image"] for r in rows],
                        "text": [loading.render(self.params["template"], r) for r in rows]},
            groups=np.array([r["image_id"] for r in rows]), split=np.array([r["split"] for r in rows]),
            skipped=bad.skipped), bad)

    def _files(self) -> dict[str, Path]:
        root = Path(self.params["root"])
        names = QA_FILES[self.params["subset"]]
        found = {split: loading.first_existing(root, names[split]) for split in SPLITS}
        if None in found.values():
            looked = [" or ".join(names[s]) for s in SPLITS if found[s] is None]
            raise loading.missing_files(self.name, root, looked, PUBLISHED, ACCESS)
        return found

    def _image_index(self) -> dict[int, Path]:
        if self._images is None:
            self._images = loading.index_images(Path(self.params["root"]), NYU_IMAGE)
        return self._images


def _pairs(path: Path) -> list[tuple[int, str, str]]:
    """(question's line number, question, answer) per pair. Blank lines are dropped first
    (some copies separate pairs with them); an odd count means a line is missing somewhere,
    and pairing the rest would give every later question a wrong answer, so it stops the load."""
    lines = [(n, line.strip()) for n, line in enumerate(loading.read_lines(path), start=1) if line.strip()]
    if len(lines) % 2:
        raise UserError(f"daquar: {path} has {len(lines)} non-empty lines; it must alternate question and "
                        "answer lines, so one is missing or extra; re-download the file")
    return [(n, question, answer) for (n, question), (_, answer) in zip(lines[0::2], lines[1::2])]


def _image_id(question: str) -> int | None:
    """The last "imageN" of a question (the scene it is about)."""
    found = IMAGE_REFERENCE.findall(question)
    return int(found[-1]) if found else None


def _sample(sample: str, split: str, where: str, question: str, answer: str, images: dict[int, Path],
            bad: loading.BadSamples) -> dict | None:
    image_id = _image_id(question)
    answers = sorted({a.strip() for a in answer.split(",") if a.strip()})
    if image_id is None:
        return bad.report(sample, f"the question names no image ('... in the imageN ?'), {where}: "
                          f"{question!r}; is the file out of step (an answer line where a question should be)?")
    if not answers:
        return bad.report(sample, f"empty answer ({where})")
    if image_id not in images:
        return bad.report(sample, f"no image file image{image_id}.png under the root ({where})")
    return {"id": sample, "split": split, "raw_question": question, "answers": answers,
            "question": IMAGE_REFERENCE.sub("image", question), "image": str(images[image_id]),
            "image_id": str(image_id)}
