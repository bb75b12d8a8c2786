"""HAM10000 (Tschandl et al. 2018): 10,015 dermatoscopic images of 7,470 pigmented skin
lesions, 7 diagnoses, with the patient's age, sex and the lesion's body site.

Published on the Harvard Dataverse (doi:10.7910/DVN/DBW86T, CC BY-NC 4.0) and mirrored on
Kaggle ("skin-cancer-mnist-ham10000"). The copies differ in layout, so the loader reads
what they share:

- the metadata table ``HAM10000_metadata.csv``, or the Dataverse's tab-separated
  ``HAM10000_metadata.tab`` (it adds a ``dataset`` column), at the root or in any folder
  below it (the Dataverse bundle unpacks into ``dataverse_files/``); columns
  ``lesion_id, image_id, dx, dx_type, age, sex, localization``;
- the images ``<image_id>.jpg`` found by id ANYWHERE under the root
  (``HAM10000_images_part_1/``, ``_part_2/``, one flat folder, Kaggle's duplicated
  upper- and lower-case folders, ...): the tree is indexed once per loader. An image
  found twice is the one with the smallest relative path, so the choice is stable.

The label is ``dx``. The text is Restrepo et al.'s metadata sentence; its ``dx_type``
(how the diagnosis was confirmed: histopathology for most melanomas, follow-up for nevi)
is nearly a label by itself, so the default template leaves it out, and the tabular
modality carries it only when asked. ``tabular_columns = []`` drops the table: Restrepo et al. and
the modality-gap paper fuse image and text only. Several images show one lesion: ``lesion_id`` is the
group, so no lesion crosses splits. HAM10000 has no official split (the ISIC 2018 test
images are a separate set), so the runner's seeded, stratified, grouped split applies.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading

CLASSES = ("nv", "mel", "bkl", "bcc", "akiec", "vasc", "df")
#: metadata file names of the known releases, the preferred first (matched case-insensitively)
METADATA_NAMES = ("HAM10000_metadata.csv", "HAM10000_metadata.tab", "HAM10000_metadata.tsv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: folders a zip tool or an OS adds that never hold the dataset's images
IGNORED_FOLDERS = ("__MACOSX",)
TEMPLATES = {
    "leak_free": "Age: {age} years. Sex: {sex}. Localization: {localization}.",
    "paper": "Patient diagnosed via {dx_type}. Age: {age} years. Sex: {sex}. Localization: {localization}.",
}
#: columns that may form the tabular modality (not the label, not the ids)
TABULAR = ("age", "sex", "localization", "dx_type", "dataset")
#: how HAM10000 writes a missing sex / localization: missing in the tabular modality
UNKNOWN_MARKER = "unknown"
PUBLISHED = "https://doi.org/10.7910/DVN/DBW86T (Harvard Dataverse; mirror: kaggle.com/datasets/kmader/skin-cancer-mnist-ham10000)"
ACCESS = "free download, CC BY-NC 4.0"


class Ham10000(Dataset):
    """HAM10000 dermatoscopic images, metadata text and table; 7 diagnoses (dx)."""

    name = "ham10000"
    modalities = ("image", "text", "tabular")
    task_kinds = ("multiclass",)
    citation = ("Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of multi-source "
                "dermatoscopic images of common pigmented skin lesions. Sci Data 5, 180161 (2018).")
    parameters = (
        loading.ROOT,
        Param("template", str, "leak_free", "text template: 'leak_free' (age, sex, localization) or 'paper' "
              "(Restrepo et al.'s, which starts with dx_type and so nearly states the label)",
              choices=tuple(TEMPLATES)),
        Param("tabular_columns", list, ["age", "sex", "localization"], "metadata columns of the tabular "
              f"modality, from {', '.join(TABULAR)} (dx_type nearly states the label: add it knowingly); "
              "[]: no tabular modality (image and text only, as Restrepo et al. and the modality-gap paper)"),
        Param("metadata", str, "", "metadata file relative to root (or absolute) when it is not named "
              f"{' / '.join(METADATA_NAMES)}; empty: found by those names under root"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        columns = self.params["tabular_columns"]
        wrong = [c for c in columns if c not in TABULAR]
        if wrong or len(set(columns)) != len(columns):
            raise UserError(f"ham10000: tabular_columns must be distinct names from {list(TABULAR)} ([] for no "
                            f"tabular modality), got {columns!r}; dx is the label and lesion_id / image_id are ids")
        self._tree: _Tree | None = None

    def task_kind(self) -> str:
        return "multiclass"

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text", "tabular") if self.params["tabular_columns"] else ("image", "text")

    def info(self) -> dict[str, str]:
        return {"text template": TEMPLATES[self.params["template"]]}

    def fingerprint(self) -> str:
        """The metadata file's content and the names and sizes of the images it lists."""
        tree = self._scan()
        ids = set(_read_metadata(tree.metadata)["image_id"].dropna())
        images = [Path(tree.images[i]) for i in ids if i in tree.images]
        return loading.fingerprint_files(self.name, self.params, [tree.metadata], images)

    def load(self):
        import pandas as pd

        from mmbench.data import DatasetTable

        tree = self._scan()
        frame = _read_metadata(tree.metadata)
        needed = {"image_id", "lesion_id", "dx", *_fields(self._template()), *self.params["tabular_columns"]}
        absent = sorted(needed - set(frame.columns))
        if absent:
            raise UserError(f"ham10000: {tree.metadata} lacks columns {', '.join(absent)} (found "
                            f"{', '.join(map(str, frame.columns))}); is it HAM10000_metadata?")
        if "age" in frame.columns:
            frame["age"] = pd.to_numeric(frame["raw_age"], errors="coerce")
        frame["image_path"] = frame["image_id"].map(tree.images)  # a dict lookup: isin() on 100k keys is 5x slower
        reasons = _problems(frame)
        bad = loading.BadSamples(self.name, self.params["on_bad_sample"])
        for row in np.flatnonzero(reasons.notna().to_numpy()):
            bad.report(_sample_name(frame, row), reasons.iloc[row])
        frame = frame[reasons.isna().to_numpy()].reset_index(drop=True)
        modalities = {"image": frame["image_path"].tolist(), "text": render_column(self._template(), frame)}
        if self.params["tabular_columns"]:
            tabular = frame[self.params["tabular_columns"]].copy()
            for column in tabular.columns.drop("age", errors="ignore"):
                tabular[column] = tabular[column].mask(tabular[column].str.lower() == UNKNOWN_MARKER)
            modalities["tabular"] = tabular
        return loading.drop_broken_images(DatasetTable(
            ids=frame["image_id"].to_numpy(dtype=str),
            labels=frame["dx"].str.lower().map({c: i for i, c in enumerate(CLASSES)}).to_numpy(dtype=np.int64),
            task="multiclass", classes=CLASSES,
            groups=frame["lesion_id"].fillna(frame["image_id"]).to_numpy(dtype=str),
            modalities=modalities,
            skipped=bad.skipped,
        ), bad)

    def _template(self) -> str:
        return TEMPLATES[self.params["template"]]

    def _scan(self) -> _Tree:
        if self._tree is None:
            self._tree = _Tree.scan(Path(self.params["root"]), self.params["metadata"])
        return self._tree


def _problems(frame):
    """Why each row is a bad sample (None: it is fine): the first problem it has. Messages
    are built for the bad rows only, so a clean 100,000-row table costs a few masks."""
    import pandas as pd

    reasons = pd.Series(None, index=frame.index, dtype=object)

    def flag(rows, describe) -> None:
        rows = np.asarray(rows, dtype=bool) & reasons.isna().to_numpy()
        if rows.any():
            reasons[rows] = describe(frame[rows])

    image_id, dx = frame["image_id"], frame["dx"]
    flag(image_id.isna(), lambda bad: "no image_id")
    flag(image_id.duplicated(keep="first") & image_id.notna(), lambda bad: "its image_id repeats an earlier row")
    flag(dx.isna(), lambda bad: "no dx (the label)")
    flag(~dx.str.lower().isin(CLASSES), lambda bad: "dx " + bad["dx"].map(repr) + f" is not one of {', '.join(CLASSES)}")
    if "age" in frame.columns:
        flag(frame["raw_age"].notna() & frame["age"].isna(),
             lambda bad: "age " + bad["raw_age"].map(repr) + " is not a number")
    flag(frame["image_path"].isna(),
         lambda bad: "no image file " + bad["image_id"] + f".jpg ({' / '.join(IMAGE_SUFFIXES)}) anywhere under root")
    return reasons


def render_column(template: str, frame) -> list[str]:
    """``loading.render(template, row)`` for every row of ``frame``, vectorised: a
    per-row ``format_map`` takes most of a 100,000-row load. Missing values read
    "unknown", integral numbers print without ".0", exactly as ``loading.render``."""
    import pandas as pd

    out = pd.Series("", index=frame.index, dtype=object)
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        out = out + literal
        if field is not None:
            if field not in frame.columns:
                raise UserError(f"text template field {{{field}}} is not a column of this dataset")
            out = out + _as_text(frame[field])
    return out.tolist()


class _Tree:
    """What is under the root: the metadata file and every image file by its id (stem)."""

    def __init__(self, metadata: Path, images: dict[str, str]):
        self.metadata, self.images = metadata, images

    @classmethod
    def scan(cls, root: Path, metadata: str) -> _Tree:
        if not root.is_dir():
            raise _missing(root)
        images, tables = _walk(root)
        if metadata:
            chosen = root / metadata
            if not chosen.is_file():
                raise UserError(f"ham10000: metadata file {str(chosen)!r} (parameter metadata) does not exist; "
                                f"give its path relative to root {str(root)!r}, or leave metadata empty to find "
                                f"{' / '.join(METADATA_NAMES)} under root")
        else:
            rank = {name.lower(): i for i, name in enumerate(METADATA_NAMES)}
            found = sorted(tables, key=lambda p: (len(p.relative_to(root).parts), rank[p.name.lower()], str(p)))
            if not found:
                raise _missing(root)
            chosen = found[0]
        return cls(chosen, images)


def _walk(root: Path) -> tuple[dict[str, str], list[Path]]:
    """Image paths by id and candidate metadata files, in one pass over the tree
    (os.scandir: names come with the directory listing, no stat per file)."""
    images: dict[str, str] = {}
    tables: list[Path] = []
    metadata_names = {n.lower() for n in METADATA_NAMES}
    seen: set[tuple[int, int]] = set()
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        identity = os.stat(folder)
        if (identity.st_dev, identity.st_ino) in seen:  # a symlink loop or a folder linked twice
            continue
        seen.add((identity.st_dev, identity.st_ino))
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # an unreadable folder holds nothing we can read
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name in IGNORED_FOLDERS:
                continue
            stem, dot, suffix = name.rpartition(".")
            if dot and "." + suffix.lower() in IMAGE_SUFFIXES:
                if stem not in images or entry.path < images[stem]:
                    images[stem] = entry.path
            elif name.lower() in metadata_names and entry.is_file():
                tables.append(Path(entry.path))
            elif entry.is_dir():
                stack.append(entry.path)
    return images, tables


def _read_metadata(path: Path):
    """The metadata as text (ids stay as written), column names normalised, cells stripped;
    ``raw_age`` keeps the age as written so an unparseable one can be named."""
    try:
        frame = loading.read_table(path, dtype=str)
    except ValueError as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise UserError(f"ham10000: cannot read {path} as a table ({exc}); is it HAM10000_metadata?") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    for column in frame.columns:
        frame[column] = frame[column].str.strip().replace("", np.nan)
    if "age" in frame.columns:
        frame["raw_age"] = frame["age"]
    if "image_id" not in frame.columns:
        raise UserError(f"ham10000: {path} has no image_id column (found {', '.join(frame.columns) or 'none'}); "
                        "is it HAM10000_metadata?")
    return frame


def _as_text(values) -> Any:
    """A column as the text ``loading.render`` would print for each value."""
    import pandas as pd

    missing = values.isna().to_numpy().copy()
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float)
        integral = ~missing & np.isfinite(numbers) & (numbers == np.round(numbers))
        text = np.where(integral, np.where(integral, numbers, 0).astype(np.int64).astype(str), numbers.astype(str))
    else:
        text = values.astype(object).where(values.notna(), "").astype(str)
        missing |= (text.str.strip() == "").to_numpy()
        text = text.to_numpy()
    return pd.Series(np.where(missing, loading.UNKNOWN, text), index=values.index, dtype=object)


def _fields(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def _sample_name(frame, row: int) -> str:
    """The image id, or its row number for a row without one or repeating one (so a
    skipped repeat does not read as the kept row)."""
    image_id = frame["image_id"].iloc[row]
    if loading.is_missing(image_id):
        return f"metadata row {row + 1} (no image_id)"
    if (frame["image_id"].iloc[:row] == image_id).any():
        return f"{image_id} (metadata row {row + 1})"
    return str(image_id)


def _missing(root: Path) -> UserError:
    return loading.missing_files("ham10000", root, [*METADATA_NAMES[:2], "ISIC_*.jpg image files (any folder)"],
                                 PUBLISHED, ACCESS)
