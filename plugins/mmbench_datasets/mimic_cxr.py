"""MIMIC-CXR-JPG: chest X-rays with CheXpert labels, the radiology report as text and the
DICOM metadata as the tabular modality (the modality-gap paper's multilabel task).

Layout read (PhysioNet ``mimic-cxr-jpg`` 2.0.0 / 2.1.0; the CSVs as published, ``.csv.gz``,
or unpacked, ``.csv``):

- ``mimic-cxr-2.0.0-metadata.csv``: one row per image (``dicom_id``, ``subject_id``,
  ``study_id``, ``ViewPosition``, ...);
- ``mimic-cxr-2.0.0-chexpert.csv``: one row per study, one column per finding holding
  1 (positive), 0 (negative), -1 (uncertain) or blank (not mentioned: read as 0);
- ``mimic-cxr-2.0.0-split.csv`` (optional): the official split per image
  (train / validate / test);
- ``files/pXX/p<subject>/s<study>/<dicom_id>.jpg``; the reports (from the MIMIC-CXR
  project's ``mimic-cxr-reports.zip``) at ``files/pXX/p<subject>/s<study>.txt`` under
  ``reports_root`` (default: the same root).

One sample per image (id = ``dicom_id``), by default only the first frontal image of
each study (the views earlier in ``views`` first), so a study's report is not counted
several times. Groups are ``subject_id``: a patient's studies never cross splits.

Why the text default is the INDICATION section: the CheXpert labels were extracted from
the report's FINDINGS / IMPRESSION by the CheXpert labeller, so with those sections as
input the text modality reads its own label back (``report_sections =
"findings_impression"`` is the paper's setting, for comparison only).
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

PUBLISHED = "https://physionet.org/content/mimic-cxr-jpg/ (reports: https://physionet.org/content/mimic-cxr/)"
ACCESS = ("PhysioNet credentialed access: CITI data-research training and the PhysioNet Credentialed "
          "Health Data Use Agreement")
METADATA = "mimic-cxr-2.0.0-metadata.csv"
CHEXPERT = "mimic-cxr-2.0.0-chexpert.csv"
SPLIT = "mimic-cxr-2.0.0-split.csv"
#: the modality-gap paper's five findings
SEED_LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
#: which report sections form the text; "none" drops the text modality
REPORT_SECTIONS = ("indication", "findings_impression", "findings", "impression", "full", "none")
#: headings that give the reason for the exam (written before the image was read)
INDICATION_HEADINGS = ("INDICATION", "CLINICAL INDICATION", "HISTORY", "CLINICAL HISTORY",
                       "REASON FOR EXAM", "REASON FOR EXAMINATION")
SECTION_HEADINGS = {
    "indication": INDICATION_HEADINGS,
    "findings_impression": ("FINDINGS", "IMPRESSION"),
    "findings": ("FINDINGS",),
    "impression": ("IMPRESSION",),
}
#: the official split's names in mmbench's terms
SPLIT_NAMES = {"train": "train", "validate": "val", "validation": "val", "val": "val", "test": "test"}
#: a heading starts a line: capitals (and spaces, slashes) then a colon
_HEADING = re.compile(r"^[ \t]*([A-Z][A-Z /&]*[A-Z])[ \t]*:", re.MULTILINE)


def table_file(root: Path, name: str) -> Path | None:
    """``name`` as published (gzipped) or unpacked."""
    return loading.first_existing(root, (name, name + ".gz"))


def files_folder(root: Path) -> Path:
    """The folder holding ``pXX/``: ``root/files`` as published, or ``root`` itself when the
    user pointed at ``files``."""
    return root / "files" if (root / "files").is_dir() else root


def study_folder(files: Path, subject: str, study: str) -> Path:
    return files / f"p{subject[:2]}" / f"p{subject}" / f"s{study}"


def report_sections(text: str, which: str) -> str | None:
    """The text of the chosen sections (whitespace collapsed), or None when the report has
    none of them (the text is then missing for that sample, not an error)."""
    if which == "full":
        return " ".join(text.split()) or None
    headings = list(_HEADING.finditer(text))
    parts = []
    for k, match in enumerate(headings):
        if " ".join(match.group(1).split()) in SECTION_HEADINGS[which]:
            end = headings[k + 1].start() if k + 1 < len(headings) else len(text)
            body = " ".join(text[match.end():end].split())
            if body:
                parts.append(body)
    return " ".join(parts) or None


def read_report(path: Path, which: str, bad: loading.BadSamples, sample: str) -> tuple[bool, str | None]:
    """(usable, text): a missing or empty report file is a bad sample; a report without the
    chosen sections is a sample whose text is missing."""
    if not path.is_file():
        bad.report(sample, f"report file {path} is missing")
        return False, None
    text = loading.read_text(path)
    if not text.strip():
        bad.report(sample, f"report file {path} is empty")
        return False, None
    return True, report_sections(text, which)


class MimicCxr(Dataset):
    """MIMIC-CXR-JPG chest X-rays, CheXpert labels (multilabel), reports and DICOM metadata."""

    name = "mimic_cxr"
    modalities = ("image", "text", "tabular")
    task_kinds = ("multilabel",)
    citation = ("Johnson et al., MIMIC-CXR-JPG, a large publicly available database of labeled chest "
                "radiographs, arXiv:1901.07042 (2019)")
    parameters = (
        loading.ROOT,
        Param("labels", list, SEED_LABELS, "CheXpert columns to predict (default: the modality-gap paper's five)"),
        Param("uncertain", str, "zero", "a -1 (uncertain) label: 'zero' reads 0 (U-Zeros), 'one' reads 1 "
              "(U-Ones), 'ignore' drops the image when any chosen label is uncertain",
              choices=("zero", "one", "ignore")),
        Param("views", list, ["PA", "AP"], "ViewPosition values kept, in order of preference; [] keeps "
              "every image (lateral views included)"),
        Param("one_per_study", bool, True, "keep only the first kept image of each study (the labels and "
              "report are per study)"),
        Param("report_sections", str, "indication", "text: 'indication' (reason for the exam; leak-free "
              "default), 'findings_impression' (the paper's; the labels were extracted from it), "
              "'findings', 'impression', 'full' report, or 'none' (no text modality)",
              choices=REPORT_SECTIONS),
        Param("reports_root", str, "", "folder holding files/pXX/p<subject>/s<study>.txt from "
              "mimic-cxr-reports.zip (default: root)"),
        Param("tabular_columns", list, ["ViewPosition", "PerformedProcedureStepDescription"],
              "metadata columns forming the tabular modality ([]: no tabular modality)"),
        Param("official_split", bool, True, "use mimic-cxr-2.0.0-split.csv when present (validate -> val)"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        if not p["labels"] or not all(isinstance(x, str) for x in p["labels"]):
            raise UserError(f"mimic_cxr: labels must be a non-empty list of CheXpert column names, got {p['labels']!r}")
        self._candidates: Any = None
        self.dropped_uncertain = 0

    def task_kind(self) -> str:
        return "multilabel"

    def raw_modalities(self) -> tuple[str, ...]:
        text = () if self.params["report_sections"] == "none" else ("text",)
        tabular = ("tabular",) if self.params["tabular_columns"] else ()
        return ("image", *text, *tabular)

    def info(self) -> dict[str, str]:
        sections = self.params["report_sections"]
        text = "no text modality" if sections == "none" else (
            "the whole report" if sections == "full"
            else "report sections " + " / ".join(SECTION_HEADINGS[sections]))
        out = {"text template": text, "uncertain (-1) labels": self.params["uncertain"]}
        if self.params["uncertain"] == "ignore":
            out["dropped as uncertain"] = str(self.dropped_uncertain)
        return out

    # -- files -----------------------------------------------------------------------------
    def _root(self) -> Path:
        return Path(self.params["root"])

    def _reports_root(self) -> Path:
        import os

        given = self.params["reports_root"]
        return Path(os.path.expandvars(given)).expanduser() if given else self._root()

    def _label_files(self) -> list[Path]:
        root = self._root()
        metadata, chexpert = table_file(root, METADATA), table_file(root, CHEXPERT)
        if metadata is None or chexpert is None:
            raise loading.missing_files(self.name, root, [f"{METADATA}(.gz)", f"{CHEXPERT}(.gz)",
                                                          "files/pXX/p<subject>/s<study>/<dicom_id>.jpg"],
                                        PUBLISHED, ACCESS)
        split = table_file(root, SPLIT) if self.params["official_split"] else None
        return [metadata, chexpert, *([split] if split is not None else [])]

    def _rows(self) -> Any:
        """The metadata rows kept by the view filter (and one per study), with their image
        and report paths: what both ``fingerprint`` and ``load`` read."""
        if self._candidates is not None:
            return self._candidates
        p = self.params
        metadata = loading.read_table(self._label_files()[0], dtype={"dicom_id": str, "subject_id": str, "study_id": str})
        needed = ["dicom_id", "subject_id", "study_id", "ViewPosition", *p["tabular_columns"]]
        absent = [c for c in dict.fromkeys(needed) if c not in metadata.columns]
        if absent:
            raise UserError(f"mimic_cxr: {METADATA} has no column(s) {absent} (tabular_columns names metadata "
                            f"columns); it has {list(metadata.columns)}")
        metadata = metadata.dropna(subset=["dicom_id", "subject_id", "study_id"]).copy()
        for column in ("dicom_id", "subject_id", "study_id"):
            metadata[column] = metadata[column].str.strip()
        if p["views"]:
            order = {v: k for k, v in enumerate(p["views"])}
            metadata = metadata[metadata["ViewPosition"].isin(order)].copy()
            metadata["_view_rank"] = metadata["ViewPosition"].map(order)
            metadata = metadata.sort_values(["_view_rank", "dicom_id"], kind="stable")
        else:
            metadata = metadata.sort_values("dicom_id", kind="stable")
        if p["one_per_study"]:
            metadata = metadata.drop_duplicates(["subject_id", "study_id"], keep="first")
        metadata = metadata.sort_values(["subject_id", "study_id", "dicom_id"], kind="stable").reset_index(drop=True)
        files, reports = files_folder(self._root()), files_folder(self._reports_root())
        metadata["mmbench_image"] = [str(study_folder(files, s, t) / f"{d}.jpg") for s, t, d in
                              zip(metadata["subject_id"], metadata["study_id"], metadata["dicom_id"])]
        metadata["mmbench_report"] = [str(study_folder(reports, s, t)) + ".txt"
                               for s, t in zip(metadata["subject_id"], metadata["study_id"])]
        self._candidates = metadata
        return metadata

    def fingerprint(self) -> str:
        rows = self._rows()
        listed = [Path(x) for x in rows["mmbench_image"]]
        if self.params["report_sections"] != "none":
            reports = [Path(x) for x in dict.fromkeys(rows["mmbench_report"])]
            listed += reports
            if reports and not any(x.is_file() for x in reports):
                raise UserError(f"mimic_cxr: no report files/pXX/p<subject>/s<study>.txt under "
                                f"{str(self._reports_root())!r}. The reports are in mimic-cxr-reports.zip of the "
                                f"MIMIC-CXR project ({PUBLISHED}; {ACCESS}): unzip it into root or set "
                                "reports_root, or set report_sections = 'none'")
        return loading.fingerprint_files(self.name, self.params, self._label_files(),
                                         [x for x in listed if x.is_file()])

    # -- load ------------------------------------------------------------------------------
    def load(self):
        import pandas as pd

        from mmbench.data import DatasetTable

        p = self.params
        files = self._label_files()
        rows = self._rows()
        labels_by_study = self._chexpert(files[1])
        split_by_dicom = self._split(files[2]) if len(files) > 2 else None
        bad = loading.BadSamples(self.name, p["on_bad_sample"])
        with_text = p["report_sections"] != "none"
        kept, labels, texts, splits = [], [], [], []
        self.dropped_uncertain = 0
        for i, row in enumerate(rows.itertuples(index=False)):
            sample = row.dicom_id
            values = labels_by_study.get((row.subject_id, row.study_id))
            if values is None:
                bad.report(sample, f"study s{row.study_id} has no row in {CHEXPERT}")
                continue
            if isinstance(values, str):
                bad.report(sample, values)
                continue
            if (values == -1).any():
                if p["uncertain"] == "ignore":
                    self.dropped_uncertain += 1
                    continue
                values = np.where(values == -1, 1 if p["uncertain"] == "one" else 0, values)
            if not Path(row.mmbench_image).is_file():
                bad.report(sample, f"image file {row.mmbench_image} is missing")
                continue
            split = None
            if split_by_dicom is not None:
                split = split_by_dicom.get(sample)
                if split is None:
                    bad.report(sample, f"image is not in {SPLIT}")
                    continue
            text = None
            if with_text:
                usable, text = read_report(Path(row.mmbench_report), p["report_sections"], bad, sample)
                if not usable:
                    continue
            kept.append(i)
            labels.append(values)
            texts.append(text)
            splits.append(split)
        part = rows.iloc[kept].reset_index(drop=True)
        modalities: dict[str, Any] = {"image": part["mmbench_image"].tolist()}
        masks = {}
        if with_text:
            modalities["text"] = texts
            present = np.array([t is not None for t in texts], dtype=bool)
            if not present.all():
                masks["text"] = present
        if p["tabular_columns"]:
            modalities["tabular"] = pd.DataFrame(part[p["tabular_columns"]]).reset_index(drop=True)
        return loading.drop_broken_images(DatasetTable(
            ids=part["dicom_id"].to_numpy(), task="multilabel", classes=tuple(p["labels"]),
            labels=np.array(labels, dtype=np.int64).reshape(len(kept), len(p["labels"])),
            modalities=modalities, masks=masks, groups=part["subject_id"].to_numpy(),
            split=np.array(splits) if split_by_dicom is not None else None, skipped=bad.skipped), bad)

    def _chexpert(self, path: Path) -> dict[tuple[str, str], Any]:
        """(subject, study) -> label vector in {1, 0, -1} (blank -> 0), or the reason the row
        is unreadable (a value that is none of 1, 0, -1, blank)."""
        import pandas as pd

        frame = loading.read_table(path, dtype={"subject_id": str, "study_id": str})
        absent = [c for c in ("subject_id", "study_id", *self.params["labels"]) if c not in frame.columns]
        if absent:
            findings = [c for c in frame.columns if c not in ("subject_id", "study_id")]
            raise UserError(f"mimic_cxr: {CHEXPERT} has no column(s) {absent} (labels); its findings are "
                            f"{findings}")
        values = frame[self.params["labels"]].apply(pd.to_numeric, errors="coerce")
        raw = frame[self.params["labels"]]
        unreadable = (values.isna() & raw.notna()).to_numpy() | ~values.fillna(0).isin([1, 0, -1]).to_numpy()
        matrix = values.fillna(0).to_numpy()
        out: dict[tuple[str, str], Any] = {}
        names = self.params["labels"]
        for k, (subject, study) in enumerate(zip(frame["subject_id"].str.strip(), frame["study_id"].str.strip())):
            if unreadable[k].any():
                column = names[int(np.argmax(unreadable[k]))]
                out[(subject, study)] = f"{CHEXPERT}: {column} = {raw.iloc[k][column]!r} is none of 1, 0, -1, blank"
            else:
                out[(subject, study)] = matrix[k].astype(np.int64)
        return out

    def _split(self, path: Path) -> dict[str, str]:
        frame = loading.read_table(path, dtype={"dicom_id": str})
        if not {"dicom_id", "split"} <= set(frame.columns):
            raise UserError(f"mimic_cxr: {path} needs columns dicom_id and split; it has {list(frame.columns)}")
        names = frame["split"].astype(str).str.strip().str.lower()
        unknown = sorted(set(names) - set(SPLIT_NAMES))
        if unknown:
            raise UserError(f"mimic_cxr: {path} holds split values {unknown}; expected train, validate, test")
        return dict(zip(frame["dicom_id"].astype(str).str.strip(), names.map(SPLIT_NAMES)))
