"""BRSET and mBRSET: Brazilian retinal fundus photos with patient metadata (PhysioNet).

Both come from the same group with the same ICDR grading, and the papers use them
the same way (Restrepo et al., 2024: BRSET binary DR; the modality-gap paper: BRSET and mBRSET binary DR), so one
module reads both: a label CSV, a folder of JPEGs named in it, a patient id to group by.

- BRSET (``brset``): ``labels.csv`` (renamed ``labels_brset.csv`` / ``label_brset.csv``
  in some copies) and ``fundus_photos/<image_id>.jpg``. Later releases renamed columns
  (``drusens`` -> ``drusen``, ``insuline`` -> ``insulin``, ``diabetes_time_y`` ->
  ``diabetes_time``); both spellings are read, under the first release's names.
- mBRSET (``mbrset``): ``labels_mbrset.csv`` and ``images/<file>`` (or the images beside
  the CSV). Rows without a ``final_icdr`` grade (ungradable photos) are always left out,
  as the papers do, and counted in ``skipped`` so a result says how many.

Text is built from metadata with the authors' prompt (``template = "paper"``, reproduced
with its quirks so numbers compare). BRSET's prompt states the optic disc / vessels /
macula grading and eleven pathology findings, which are read off the same photo by the
same graders as the DR grade (macular edema, hemorrhage: DR signs); the default
``leak_free`` keeps only what is known before the photo is graded. No official split
exists: the runner's seeded, stratified split by patient applies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading

ACCESS = ("PhysioNet credentialed access: a credentialed account, the CITI 'Data or Specimens Only "
          "Research' training and the signed data use agreement")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: the 13 BRSET pathology columns (first-release spelling): the multilabel task's labels
PATHOLOGIES = ("diabetic_retinopathy", "macular_edema", "scar", "nevus", "amd", "vascular_occlusion",
               "hypertensive_retinopathy", "drusens", "hemorrhage", "retinal_detachment", "myopic_fundus",
               "increased_cup_disc", "other")
#: the findings the authors' BRSET prompt states (all pathologies but diabetic_retinopathy and
#: hypertensive_retinopathy)
PAPER_FINDINGS = ("macular_edema", "scar", "nevus", "amd", "vascular_occlusion", "drusens", "hemorrhage",
                  "retinal_detachment", "myopic_fundus", "increased_cup_disc", "other")
DR_CLASSES = {"dr_binary": ("no_dr", "dr"), "dr_3class": ("no_dr", "npdr", "pdr")}
DR_RULES = {"dr_binary": "{grade} 0 -> no_dr, 1-4 -> dr",
            "dr_3class": "{grade} 0 -> no_dr, 1-3 -> npdr (non-proliferative), 4 -> pdr (proliferative)"}
TEMPLATE = Param("template", str, "leak_free", "text built from metadata: 'leak_free' (demographics, "
                 "comorbidities, diabetes duration, insulin) or 'paper' (the papers' prompt; for "
                 "BRSET it also states the fundus findings, which correlate with DR)",
                 choices=("leak_free", "paper"))

#: the authors' BRSET prompt (Restrepo et al., 2024), field by field; the leak-free one is its first sentence
BRSET_PAPER = (
    "An image from the {eye} eye of a {sex} patient, aged {age} years, {comorbidities}, {diabetes_time}, "
    "{insulin}. The optic disc is {optic_disc}, vessels are {vessels}, and the macula is {macula}. "
    "Conditions include macular edema: {macular_edema}, scar: {scar}, nevus: {nevus}, amd: {amd}, "
    "vascular occlusion: {vascular_occlusion}, drusens: {drusens}, hemorrhage: {hemorrhage}, retinal "
    "detachment: {retinal_detachment}, myopic fundus: {myopic_fundus}, increased cup disc ratio: "
    "{increased_cup_disc}, and other conditions: {other}."
)
PATIENT_SENTENCE = "An image from the {eye} eye of a {sex} patient, aged {age} years, {comorbidities}, " \
                   "{diabetes_time}, {insulin}."
#: mBRSET's 0/1 comorbidity columns the authors' prompt names, with the names it gives them
MBRSET_COMORBIDITIES = {"systemic_hypertension": "Systemic Hypertension", "vascular_disease": "Vascular Disease",
                        "acute_myocardial_infarction": "Acute Myocardial Infarction",
                        "nephropathy": "Nephropathy", "neuropathy": "Neuropathy", "diabetic_foot": "Diabetic Foot"}
YES = {"yes", "y", "1", "1.0", "true", "sim"}
NO = {"no", "n", "0", "0.0", "false", "não", "nao"}


class _FundusDataset(Dataset):
    """What BRSET and mBRSET share: files, bad samples, grades, groups, the tabular rows."""

    modalities = ("image", "text", "tabular")
    task_kinds = ("binary", "multiclass", "multilabel")
    PUBLISHED: ClassVar[str] = ""
    LABEL_FILES: ClassVar[tuple[str, ...]] = ()
    #: image folders relative to the root, first existing wins ("." is the root itself)
    IMAGE_FOLDERS: ClassVar[tuple[str, ...]] = ()
    FILE_COLUMN: ClassVar[str] = ""
    PATIENT_COLUMN: ClassVar[str] = ""
    GRADE_COLUMN: ClassVar[str] = ""
    #: spellings of one column across releases, the first being the name used here
    SPELLINGS: ClassVar[tuple[tuple[str, ...], ...]] = ()
    #: numeric columns typed by hand in the source (``5O`` for 50, ``7,5``): cleaned to numbers
    NUMERIC: ClassVar[tuple[str, ...]] = ()
    #: columns a template needs
    TEXT_COLUMNS: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, **params: Any):
        super().__init__(**params)
        columns = self.params["tabular_columns"]
        if not all(isinstance(c, str) and c.strip() for c in columns):
            raise UserError(f"dataset {self.name!r}: tabular_columns are column names of the label file, "
                            f"got {columns!r}")
        leaking = [c for c in columns if _canonical(c, self.SPELLINGS) in self.label_columns()]
        if leaking:
            raise UserError(f"dataset {self.name!r}: tabular_columns {leaking} hold the label of task "
                            f"{self.params['task']!r}; the tabular modality would give it away: remove them")

    # -- what is known without loading -------------------------------------------------------
    def task_kind(self) -> str:
        return {"dr_binary": "binary", "dr_3class": "multiclass", "pathologies": "multilabel"}[self.params["task"]]

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text", "tabular") if self.params["tabular_columns"] else ("image", "text")

    def label_columns(self) -> set[str]:
        """Columns (first-release names, lower case) that state the label: never an input."""
        return {self.GRADE_COLUMN.lower()}

    def info(self) -> dict[str, str]:
        return {"text template": self.template(), "label": self.label_rule()}

    def template(self) -> str:
        raise NotImplementedError

    def label_rule(self) -> str:
        return DR_RULES[self.params["task"]].format(grade=self.GRADE_COLUMN)

    def fingerprint(self) -> str:
        label_file, _, images = self._files()
        return loading.fingerprint_files(self.name, self.params, [label_file],
                                         [Path(path) for path, _ in images.values()])

    # -- loading ---------------------------------------------------------------------------
    def load(self):
        from mmbench.data import DatasetTable

        label_file, folder, images = self._files()
        frame = _read_labels(label_file)
        columns = _Columns(self.name, label_file, frame.columns, self.SPELLINGS)
        for name in (self.FILE_COLUMN, self.PATIENT_COLUMN, *self.required_label_columns(),
                     *self.TEXT_COLUMNS.get(self.params["template"], ())):
            columns.need(name)
        bad = loading.BadSamples(self.name, self.params["on_bad_sample"])
        ungraded: dict[str, str] = {}
        kept: list[tuple[int, str, str, Any]] = []  # (row, id, image path, label)
        seen: set[str] = set()
        records = frame.to_dict("records")
        for i, row in enumerate(records):
            file_value = row[columns.need(self.FILE_COLUMN)]
            if loading.is_missing(file_value):
                bad.report(f"row {i + 2} of {label_file.name}", f"no {self.FILE_COLUMN}")
                continue
            sample_id = _strip_suffix(str(file_value).strip())
            if sample_id in seen:
                bad.report(sample_id, f"listed twice in {label_file.name}")
                continue
            seen.add(sample_id)
            if loading.is_missing(row[columns.need(self.PATIENT_COLUMN)]):
                bad.report(sample_id, f"no {self.PATIENT_COLUMN}: its patient's photos could not be kept in one split")
                continue
            if self.ungraded(row, columns):
                ungraded[sample_id] = f"no {self.GRADE_COLUMN} grade (ungradable photo): left out, as the papers do"
                continue
            label, problem = self.label_of(row, columns)
            if problem:
                bad.report(sample_id, problem)
                continue
            found = _find_image(images, str(file_value).strip())
            if found is None:
                bad.report(sample_id, f"image file {str(file_value).strip()!r} not found in {folder}")
                continue
            kept.append((i, sample_id, found[0], label))
        rows = [records[i] for i, *_ in kept]
        texts = [loading.render(self.template(), self.text_fields(row, columns)) for row in rows]
        modalities: dict[str, Any] = {"image": [path for _, _, path, _ in kept], "text": texts}
        if self.params["tabular_columns"]:
            modalities["tabular"] = self._tabular(frame.iloc[[i for i, *_ in kept]].reset_index(drop=True), columns)
        labels = np.array([label for *_, label in kept], dtype=np.int64)
        if self.params["task"] == "pathologies":
            labels = labels.reshape(len(kept), len(PATHOLOGIES))
        groups = np.array([str(row[columns.need(self.PATIENT_COLUMN)]).strip() for row in rows], dtype=str)
        return loading.drop_broken_images(DatasetTable(
            ids=np.array([sample_id for _, sample_id, _, _ in kept], dtype=str), labels=labels,
            task=self.task_kind(), classes=self.classes(), modalities=modalities, groups=groups,
            skipped={**ungraded, **bad.skipped}), bad)

    def classes(self) -> tuple[str, ...]:
        return DR_CLASSES[self.params["task"]]

    def required_label_columns(self) -> tuple[str, ...]:
        return (self.GRADE_COLUMN,)

    def ungraded(self, row: dict[str, Any], columns: _Columns) -> bool:
        """True for a row the protocol drops without counting it as bad (mBRSET's ungraded photos)."""
        return False

    def label_of(self, row: dict[str, Any], columns: _Columns) -> tuple[Any, str | None]:
        """(label, None), or (None, why the row has no usable label)."""
        value = row[columns.need(self.GRADE_COLUMN)]
        grade = _integer(value)
        if grade is None or not 0 <= grade <= 4:
            return None, f"{self.GRADE_COLUMN} is {value!r}; expected an ICDR grade 0-4"
        if self.params["task"] == "dr_binary":
            return int(grade > 0), None
        return (0 if grade == 0 else 2 if grade == 4 else 1), None

    def text_fields(self, row: dict[str, Any], columns: _Columns) -> dict[str, str]:
        raise NotImplementedError

    def _files(self) -> tuple[Path, Path, dict[str, tuple[str, int]]]:
        """The label file, the image folder and its images, or the one error that says what
        is missing."""
        root = Path(self.params["root"])
        label_file = loading.first_existing(root, self.LABEL_FILES)
        folder = next((root / f for f in self.IMAGE_FOLDERS if (root / f).is_dir()), None)
        images = _image_index(folder) if folder is not None else {}
        if label_file is None or not images:
            looked = [" or ".join(self.LABEL_FILES)] if label_file is None else []
            if not images:
                looked.append(" or ".join("the root" if f == "." else f + "/" for f in self.IMAGE_FOLDERS)
                              + " holding " + "/".join(IMAGE_SUFFIXES) + " images")
            raise loading.missing_files(self.name, root, looked, self.PUBLISHED, ACCESS)
        return label_file, folder, images

    def _tabular(self, records, columns: _Columns):
        import pandas as pd

        out = {}
        for name in self.params["tabular_columns"]:
            values = records[columns.need(name)]
            if _canonical(name, self.SPELLINGS) in self.NUMERIC:
                out[name] = _numbers(values)
            else:
                numbers = pd.to_numeric(values, errors="coerce")
                all_numbers = numbers.notna().sum() == values.notna().sum()
                out[name] = numbers if all_numbers else [None if loading.is_missing(v) else v.strip() for v in values]
        return pd.DataFrame(out)


class Brset(_FundusDataset):
    """BRSET fundus photos (PhysioNet): DR grade or 13 pathologies, metadata text and table."""

    name = "brset"
    citation = ("Nakayama LF, Restrepo D, Matos J, et al. BRSET: A Brazilian Multilabel Ophthalmological "
                "Dataset of Retina Fundus Photos. PLOS Digital Health 3(6): e0000454 (2024); "
                "https://physionet.org/content/brazilian-ophthalmological/")
    PUBLISHED = "https://physionet.org/content/brazilian-ophthalmological/"
    LABEL_FILES = ("labels.csv", "labels_brset.csv", "label_brset.csv")
    IMAGE_FOLDERS = ("fundus_photos",)
    FILE_COLUMN, PATIENT_COLUMN, GRADE_COLUMN = "image_id", "patient_id", "DR_ICDR"
    SPELLINGS = (("diabetes_time_y", "diabetes_time"), ("insuline", "insulin", "insulin_use", "insuline_use"),
                 ("drusens", "drusen"), ("illuminaton", "illumination", "ilumination"))
    NUMERIC = ("patient_age", "diabetes_time_y")
    _PATIENT = ("exam_eye", "patient_sex", "patient_age", "comorbidities", "diabetes_time_y", "insuline")
    TEXT_COLUMNS = {"leak_free": _PATIENT,
                    "paper": (*_PATIENT, "optic_disc", "vessels", "macula", *PAPER_FINDINGS)}
    parameters = (
        loading.ROOT,
        Param("task", str, "dr_binary", "dr_binary (DR_ICDR > 0), dr_3class (0 / 1-3 / 4) or pathologies "
              "(the 13 pathology columns, multilabel)", choices=("dr_binary", "dr_3class", "pathologies")),
        TEMPLATE,
        Param("tabular_columns", list, ["patient_age", "patient_sex", "diabetes", "diabetes_time_y", "insuline",
                                        "comorbidities"],
              "label-file columns forming the tabular modality ([]: none)"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.params["task"] == "pathologies" and self.params["template"] == "paper":
            raise UserError("dataset 'brset': template = 'paper' states 11 of the 13 pathology labels of task "
                            "'pathologies' in the text; use template = 'leak_free'")

    def label_columns(self) -> set[str]:
        if self.params["task"] == "pathologies":
            return set(PATHOLOGIES)
        return {"dr_icdr", "dr_sdrg", "diabetic_retinopathy"}

    def template(self) -> str:
        return BRSET_PAPER if self.params["template"] == "paper" else PATIENT_SENTENCE

    def label_rule(self) -> str:
        if self.params["task"] == "pathologies":
            return "one 0/1 label per pathology column: " + ", ".join(PATHOLOGIES)
        return super().label_rule()

    def classes(self) -> tuple[str, ...]:
        return PATHOLOGIES if self.params["task"] == "pathologies" else super().classes()

    def required_label_columns(self) -> tuple[str, ...]:
        return PATHOLOGIES if self.params["task"] == "pathologies" else super().required_label_columns()

    def label_of(self, row: dict[str, Any], columns: _Columns) -> tuple[Any, str | None]:
        if self.params["task"] != "pathologies":
            return super().label_of(row, columns)
        flags = []
        for name in PATHOLOGIES:
            value = row[columns.need(name)]
            flag = _integer(value)
            if flag not in (0, 1):
                return None, f"{columns.need(name)} is {value!r}; expected 0 or 1"
            flags.append(flag)
        return flags, None

    def text_fields(self, row: dict[str, Any], columns: _Columns) -> dict[str, str]:
        """The authors' wording per field (Restrepo et al.'s preprocessing): 1 -> "present" for the
        findings and also for optic disc / vessels / macula (where 1 means normal)."""
        get = lambda name: row[columns.need(name)]  # noqa: E731
        age = _number(get("patient_age"))
        years = get("diabetes_time_y")
        duration = None if str(years).strip() == "Não" else _number(years)
        fields = {
            "eye": {1: "right", 2: "left"}.get(_integer(get("exam_eye")), "no eye reported"),
            "sex": _sex(get("patient_sex"), male=1, female=2) or "no sex reported",
            "age": "no age reported" if age is None else str(age),
            "comorbidities": "with no comorbidities reported" if loading.is_missing(get("comorbidities"))
            else "with comorbidities: " + str(get("comorbidities")).strip(),
            "diabetes_time": "with no diabetes duration reported" if duration is None
            else f"diabetes diagnosed for {duration} years",
            "insulin": self._insulin(get("insuline")),
        }
        if self.params["template"] == "paper":
            for name in ("optic_disc", "vessels", "macula", *PAPER_FINDINGS):
                fields[name] = "present" if _integer(get(name)) == 1 else "absent"
        return fields

    def _insulin(self, value: Any) -> str:
        answer = _yes_no(value)
        if self.params["template"] == "paper":  # the authors' rule: anything but "no" reads as using insulin
            return "not using insulin" if answer == "no" else "using insulin"
        return {"yes": "using insulin", "no": "not using insulin"}.get(answer, "with no insulin use reported")


class Mbrset(_FundusDataset):
    """mBRSET portable-camera fundus photos (PhysioNet): DR grade, metadata text and table."""

    name = "mbrset"
    citation = ("Nakayama LF, Zago Ribeiro L, Goncalves T, Celi LA, Regatieri CS. mBRSET: a portable retina "
                "fundus photos benchmark dataset for clinical and demographic prediction. medRxiv (2024), "
                "doi:10.1101/2024.07.11.24310293; https://physionet.org/content/mbrset/")
    task_kinds = ("binary", "multiclass")
    PUBLISHED = "https://physionet.org/content/mbrset/"
    LABEL_FILES = ("labels_mbrset.csv",)
    IMAGE_FOLDERS = ("images", ".")
    FILE_COLUMN, PATIENT_COLUMN, GRADE_COLUMN = "file", "patient", "final_icdr"
    NUMERIC = ("age", "dm_time", "insulin_time", "educational_level")
    _PATIENT = ("laterality", "sex", "age", "dm_time", "insulin", *MBRSET_COMORBIDITIES)
    TEXT_COLUMNS = {"leak_free": _PATIENT, "paper": _PATIENT}
    parameters = (
        loading.ROOT,
        Param("task", str, "dr_binary", "dr_binary (final_icdr > 0) or dr_3class (0 / 1-3 / 4); rows without "
              "a grade are left out and counted", choices=("dr_binary", "dr_3class")),
        TEMPLATE,
        Param("tabular_columns", list, ["age", "sex", "dm_time", "insulin", "insulin_time", "oraltreatment_dm",
                                        "systemic_hypertension", "insurance", "educational_level",
                                        "alcohol_consumption", "smoking", "obesity", "vascular_disease",
                                        "acute_myocardial_infarction", "nephropathy", "neuropathy",
                                        "diabetic_foot"],
              "label-file columns forming the tabular modality ([]: none)"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def template(self) -> str:
        return PATIENT_SENTENCE

    def ungraded(self, row: dict[str, Any], columns: _Columns) -> bool:
        return loading.is_missing(row[columns.need(self.GRADE_COLUMN)])

    def text_fields(self, row: dict[str, Any], columns: _Columns) -> dict[str, str]:
        """The authors' mBRSET prompt (the modality-gap paper's code), field by field; yes/no columns read
        as 1/0 too."""
        get = lambda name: row[columns.need(name)]  # noqa: E731
        side = str(get("laterality")).strip().lower()
        present = [label for name, label in MBRSET_COMORBIDITIES.items() if _yes_no(get(name)) == "yes"]
        insulin = _yes_no(get("insulin"))
        if self.params["template"] == "paper":
            insulin_text = "not using insulin" if insulin == "no" else "using insulin"
        else:
            insulin_text = {"yes": "using insulin", "no": "not using insulin"}.get(insulin, "with no insulin use reported")
        return {
            "eye": {"right": "right", "r": "right", "od": "right", "left": "left", "l": "left", "os": "left"}
            .get(side, "unknown"),
            "sex": _sex(get("sex"), male=1, female=0) or "unknown sex",
            "age": "no age reported" if loading.is_missing(get("age")) else str(get("age")).strip(),
            "comorbidities": "with comorbidities: " + ", ".join(present) if present
            else "with no comorbidities reported",
            "diabetes_time": "with no diabetes duration reported" if loading.is_missing(get("dm_time"))
            else f"diabetes diagnosed for {str(get('dm_time')).strip()} years",
            "insulin": insulin_text,
        }


class _Columns:
    """The label file's header as this copy spells it: case and surrounding spaces ignored,
    and a column renamed between releases found under either name."""

    def __init__(self, dataset: str, path: Path, headers: Any, spellings: tuple[tuple[str, ...], ...]):
        self.dataset, self.path, self.spellings = dataset, path, spellings
        self.headers = [str(h) for h in headers]
        self.by_key = {h.strip().lower(): h for h in self.headers}
        self._found: dict[str, str] = {}

    def need(self, name: str) -> str:
        if name not in self._found:
            group = next((g for g in self.spellings if name.lower() in g), (name.lower(),))
            actual = next((self.by_key[s] for s in (name.lower(), *group) if s in self.by_key), None)
            if actual is None:
                names = " or ".join(repr(s) for s in dict.fromkeys((name, *group)))
                raise UserError(f"dataset {self.dataset!r}: {self.path} has no column {names}; it has "
                                f"{', '.join(self.headers)}. Is this the dataset's own label file?")
            self._found[name] = actual
        return self._found[name]


def _canonical(name: str, spellings: tuple[tuple[str, ...], ...]) -> str:
    return next((g[0] for g in spellings if name.strip().lower() in g), name.strip().lower())


def _read_labels(path: Path):
    """Every cell as text (ids such as "007" stay as written); empty cells are NaN."""
    try:
        return loading.read_table(path, dtype=object, skipinitialspace=True)
    except UserError:  # a byte that is not UTF-8: already says file and line
        raise
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for a broken file
        raise UserError(f"cannot read {path} ({type(exc).__name__}: {exc}); is it the dataset's CSV?") from None


def _image_index(folder: Path) -> dict[str, tuple[str, int]]:
    """Image files in ``folder`` by lower-case name, with their sizes: one directory listing
    instead of a stat per label row (16,266 rows for BRSET)."""
    out = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file():
                out[entry.name.lower()] = (entry.path, entry.stat().st_size)
    return out


def _find_image(index: dict[str, tuple[str, int]], name: str) -> tuple[str, int] | None:
    """The file a label row names: as written, or with the usual suffix when the row has none
    (BRSET's ``image_id`` is ``img00001`` for ``img00001.jpg``)."""
    candidates = [name] if name.lower().endswith(IMAGE_SUFFIXES) else [name + s for s in IMAGE_SUFFIXES]
    return next((index[c.lower()] for c in candidates if c.lower() in index), None)


def _strip_suffix(name: str) -> str:
    """A sample id from a file name: ``1.1.jpg`` -> ``1.1`` (not ``1``), ``img00001`` as is."""
    lowered = name.lower()
    suffix = next((s for s in IMAGE_SUFFIXES if lowered.endswith(s)), "")
    return name[: len(name) - len(suffix)] if suffix else name


def _number(value: Any) -> float | None:
    """A number typed by hand: "5O" (letter O) and "7,5" read as the authors read them."""
    if loading.is_missing(value):
        return None
    try:
        number = float(str(value).strip().replace("O", "0").replace(",", "."))
    except ValueError:
        return None
    return None if np.isnan(number) else number


def _numbers(values):
    import pandas as pd

    return pd.Series([_number(v) for v in values], dtype=float)


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


def _yes_no(value: Any) -> str | None:
    text = "" if loading.is_missing(value) else str(value).strip().lower()
    return "yes" if text in YES else "no" if text in NO else None


def _sex(value: Any, male: int, female: int) -> str | None:
    text = "" if loading.is_missing(value) else str(value).strip().lower()
    code = _integer(value)
    if code == male or text in ("male", "m"):
        return "male"
    if code == female or text in ("female", "f"):
        return "female"
    return None
