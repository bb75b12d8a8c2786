"""MVSA-Single and MVSA-Multiple (Niu et al., MMM 2016): tweets, each a text and an
image, labelled positive / neutral / negative separately for the text and the image.

Layout read (the archives unpack to ``MVSA_Single/`` and ``MVSA/``; ``root`` may be that
folder or its parent)::

    labelResultAll.txt    ID<TAB>text,image            (Single: one annotator)
                          ID<TAB>text,image<TAB>text,image<TAB>text,image   (Multiple: three)
    data/{ID}.jpg         the tweet's image
    data/{ID}.txt         the tweet's text, in UTF-8, UTF-8 with BOM or Windows-1252 file by file

One label per pair, by Balaji's rule: a pair whose text and image labels contradict
(positive vs negative) is dropped; neutral + positive / negative takes the non-neutral
label; agreeing labels stay. MVSA-Multiple first takes, for the text and for the image
separately, the label at least two of the three annotators gave; a modality without such
a majority drops the pair. Pairs dropped by the rule are part of the task's definition,
not bad samples: ``info()`` counts them. The text is the tweet as written (it holds no
label field, so there is no template to leak through); MVSA has no metadata, so no
tabular modality. There is no official split; tweets whose normalised text is identical
(retweets, reposts) share a group so that near-duplicates never cross splits.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading

#: class order (index = label)
CLASSES = ("negative", "neutral", "positive")
PUBLISHED = ("http://mcrlab.net/research/mvsa-sentiment-analysis-on-multi-view-social-data/ "
             "(MCRLab, University of Ottawa)")
ACCESS = "free for research use; cite Niu et al., 'Sentiment Analysis on Multi-View Social Data', MMM 2016"
RULE = ("Balaji: text and image label agree -> that label; neutral + positive/negative -> the "
        "non-neutral one; positive vs negative -> dropped")
#: a retweet prefix and links: what differs between copies of one tweet
_NOISE = re.compile(r"^rt @\w+:?|https?://\S+|@\w+")


class _Mvsa(Dataset):
    """What MVSA-Single and MVSA-Multiple share; they differ in the annotator count and the
    folder the archive unpacks to."""

    modalities = ("image", "text")
    task_kinds = ("multiclass",)
    #: how many ``text,image`` annotations each line holds
    annotators: ClassVar[int] = 1
    #: where labelResultAll.txt may sit under root (the archive's own folder first)
    label_paths: ClassVar[tuple[str, ...]] = ()
    parameters = (
        loading.ROOT,
        Param("group_duplicates", bool, True, "tweets with the same text once retweet prefix, links and "
              "mentions are removed share a group, so near-duplicates never cross splits"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._dropped: Counter[str] = Counter()

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text")

    def info(self) -> dict[str, str]:
        out = {"text template": "the tweet's text as written (data/{ID}.txt)", "label rule": RULE}
        if self.annotators > 1:
            out["annotators"] = "text and image label each by majority of the 3 annotators (2 of 3), else dropped"
        if self._dropped:
            out["dropped by the label rule"] = ", ".join(f"{n} {why}" for why, n in sorted(self._dropped.items()))
        return out

    def fingerprint(self) -> str:
        label_file = self._label_file()
        # relative to the archive folder: root at it or at its parent is the same data
        params = {**self.params, "root": str(label_file.parent)}
        return loading.fingerprint_files(self.name, params, [label_file], loading.list_files(label_file.parent / "data"))

    def load(self):
        from mmbench.data import DatasetTable

        label_file = self._label_file()
        data = label_file.parent / "data"
        present = {p.name for p in loading.list_files(data)}
        bad = loading.BadSamples(self.name, self.params["on_bad_sample"])
        self._dropped = Counter()
        ids, labels, images, texts = [], [], [], []
        for sample_id, fields in _rows(label_file):
            label = self._label(sample_id, fields, bad)
            if label is None:
                continue
            if f"{sample_id}.jpg" not in present:
                bad.report(sample_id, f"image {data / f'{sample_id}.jpg'} is missing")
                continue
            if f"{sample_id}.txt" not in present:
                bad.report(sample_id, f"text {data / f'{sample_id}.txt'} is missing")
                continue
            text = loading.read_text(data / f"{sample_id}.txt").strip()
            if not text:
                bad.report(sample_id, f"text {data / f'{sample_id}.txt'} is empty")
                continue
            ids.append(sample_id)
            labels.append(label)
            images.append(str(data / f"{sample_id}.jpg"))
            texts.append(text)
        groups = _duplicate_groups(ids, texts) if self.params["group_duplicates"] else None
        return loading.drop_broken_images(DatasetTable(
            ids=np.array(ids, dtype=str), labels=np.array(labels, dtype=np.int64), task="multiclass",
            classes=CLASSES, modalities={"image": images, "text": texts}, groups=groups, skipped=bad.skipped), bad)

    def _label_file(self) -> Path:
        root = Path(self.params["root"])
        found = loading.first_existing(root, self.label_paths)
        if found is None or not (found.parent / "data").is_dir():
            looked_for = [*self.label_paths, "data/{ID}.jpg", "data/{ID}.txt"] if found is None \
                else [f"{found.parent / 'data'}/ (beside {found.name})"]
            raise loading.missing_files(self.name, root, looked_for, PUBLISHED, ACCESS)
        return found

    def _label(self, sample_id: str, fields: list[str], bad: loading.BadSamples) -> int | None:
        """The pair's class index, or None when the rule drops it (counted) or the line is bad
        (reported)."""
        cells = [c for c in fields if c.strip()]
        if len(cells) > self.annotators or not cells:
            bad.report(sample_id, f"expected {self.annotators} 'text,image' label cell(s), got {fields!r}")
            return None
        pairs = []
        for cell in cells:
            parts = [p.strip().lower() for p in cell.split(",")]
            if len(parts) != 2 or not set(parts) <= set(CLASSES):
                bad.report(sample_id, f"label {cell.strip()!r} is not 'text,image' with each of {', '.join(CLASSES)}")
                return None
            pairs.append(parts)
        text, image = (_majority([p[k] for p in pairs], self.annotators) for k in (0, 1))
        if text is None or image is None:
            self._dropped["without a 2-of-3 majority"] += 1
            return None
        if {text, image} == {"positive", "negative"}:
            self._dropped["positive vs negative"] += 1
            return None
        return CLASSES.index(image if text == "neutral" else text)


class MvsaSingle(_Mvsa):
    """MVSA-Single: tweets (text + image), one annotator, 3 sentiments by Balaji's rule."""

    name = "mvsa_single"
    annotators = 1
    label_paths = ("labelResultAll.txt", "MVSA_Single/labelResultAll.txt")


class MvsaMultiple(_Mvsa):
    """MVSA-Multiple: tweets (text + image), 3 annotators by majority, then Balaji's rule."""

    name = "mvsa_multiple"
    annotators = 3
    label_paths = ("labelResultAll.txt", "MVSA/labelResultAll.txt", "MVSA_Multiple/labelResultAll.txt")


def _rows(label_file: Path) -> list[tuple[str, list[str]]]:
    """(ID, label cells) per line; the header line (``ID``...) and blank lines skipped."""
    out = []
    for line in loading.read_text(label_file).splitlines():
        if not line.strip():
            continue
        sample_id, *fields = line.rstrip("\r\n").split("\t")
        if sample_id.strip().lower() == "id":
            continue
        out.append((sample_id.strip(), fields))
    return out


def _majority(votes: list[str], annotators: int) -> str | None:
    """The single annotator's label, or the label at least 2 of 3 annotators gave."""
    if annotators == 1:
        return votes[0]
    label, count = Counter(votes).most_common(1)[0]
    return label if count >= 2 else None


def _duplicate_groups(ids: list[str], texts: list[str]) -> np.ndarray:
    """Per sample, the id of the first sample with the same normalised text."""
    first: dict[str, str] = {}
    groups = []
    for sample_id, text in zip(ids, texts):
        key = " ".join(_NOISE.sub(" ", text.lower()).split())
        groups.append(first.setdefault(key, sample_id) if key else sample_id)
    return np.array(groups, dtype=str)
