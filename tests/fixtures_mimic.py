"""Tiny copies of the MIMIC-CXR-JPG and MIMIC in-hospital-mortality layouts (real file and
column names, the known variants), for the loader tests and the suites test."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

CHEXPERT_COLUMNS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
                    "Fracture", "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other",
                    "Pneumonia", "Pneumothorax", "Support Devices"]
METADATA_COLUMNS = ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
                    "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
                    "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"]
#: words a FINDINGS section uses for each of the modality-gap paper's labels (the leak the default avoids)
FINDING_WORDS = {"Atelectasis": "bibasilar atelectasis", "Cardiomegaly": "the heart is enlarged",
                 "Consolidation": "focal consolidation", "Edema": "pulmonary edema",
                 "Pleural Effusion": "small pleural effusion"}
SEED_LABELS = list(FINDING_WORDS)
#: subjects of the CXR fixture; studies s5<subject[1:]><k>
SUBJECTS = [f"1{k}0000{k}{k}" for k in range(10)]
TIMESERIES_COLUMNS = ["Hours", "Capillary refill rate", "Diastolic blood pressure", "Fraction inspired oxygen",
                      "Glascow coma scale eye opening", "Glascow coma scale motor response",
                      "Glascow coma scale total", "Glascow coma scale verbal response", "Glucose", "Heart Rate",
                      "Height", "Mean blood pressure", "Oxygen saturation", "Respiratory rate",
                      "Systolic blood pressure", "Temperature", "Weight", "pH"]


def _write_csv(path: Path, header: list[str], rows: list[list], gz: bool = False) -> Path:
    def cell(value) -> str:
        text = "" if value is None else str(value)
        return f'"{text}"' if "," in text else text

    body = "\n".join(",".join(cell(v) for v in row) for row in [header, *rows]) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(body.encode(), mtime=0))
    else:
        path.write_text(body)
    return path


def _jpg(path: Path, seed: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (12, 12), dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)


def report(indication: str, findings: list[str], impression: bool = True) -> str:
    """A report shaped like MIMIC-CXR's (header, INDICATION, TECHNIQUE, FINDINGS, IMPRESSION)."""
    found = (". ".join(findings) + ".") if findings else "The lungs are clear. No pleural effusion."
    text = ("                                 FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n \n"
            f" INDICATION:  ___ with {indication}\n \n TECHNIQUE:  Chest PA and lateral\n \n"
            f" COMPARISON:  None.\n \n FINDINGS: \n \n {found}\n")
    if impression:
        text += f" \n IMPRESSION: \n \n {found.split('.')[0]}.\n"
    return text


def cxr_study_rows(n_subjects: int = 10) -> list[dict]:
    """One study per subject, two for the even ones; each study: a frontal image (PA or AP)
    and a lateral one; labels cycling through 1 / 0 / -1 / blank."""
    studies = []
    for s, subject in enumerate(SUBJECTS[:n_subjects]):
        for k in range(2 if s % 2 == 0 else 1):
            study = f"5{subject[1:]}{k}"
            labels = {}
            for j, name in enumerate(SEED_LABELS):
                code = (s + k + j) % 5
                labels[name] = {0: 1.0, 1: 0.0, 2: None, 3: 1.0, 4: 0.0}[code]
            if s == 3:
                labels["Edema"] = -1.0
            studies.append({"subject": subject, "study": study, "labels": labels,
                            "view": "AP" if s % 3 == 0 else "PA", "split": ("train", "validate", "test")[s % 3]})
    return studies


def build_mimic_cxr(root: Path, *, gz: bool = True, reports: bool = True, split: bool = True,
                    n_subjects: int = 10) -> list[dict]:
    """MIMIC-CXR-JPG under ``root`` (metadata gzipped as published when ``gz``, the chexpert
    file unpacked: both variants at once); returns the studies written."""
    studies = cxr_study_rows(n_subjects)
    metadata, chexpert, split_rows = [], [], []
    for n, st in enumerate(studies):
        folder = root / "files" / f"p{st['subject'][:2]}" / f"p{st['subject']}" / f"s{st['study']}"
        for v, view in enumerate((st["view"], "LATERAL")):
            dicom = f"{n:02d}{v}a-{st['study']}"
            _jpg(folder / f"{dicom}.jpg", n * 2 + v)
            metadata.append([dicom, st["subject"], st["study"], f"CHEST ({'PORTABLE AP' if view == 'AP' else 'PA AND LAT'})",
                             view, 3056, 2544, 21800101 + n, 120000.5, "CHEST (PA AND LAT)",
                             "postero-anterior" if view == "PA" else "lateral", "Erect"])
            split_rows.append([dicom, st["study"], st["subject"], st["split"]])
        chexpert.append([st["subject"], st["study"], *[st["labels"].get(c) for c in CHEXPERT_COLUMNS]])
        if reports:
            positives = [FINDING_WORDS[c] for c in SEED_LABELS if st["labels"][c] == 1.0]
            text = report("cough, eval for pneumonia", positives, impression=n % 4 != 1)
            (folder.parent / f"s{st['study']}.txt").write_text(text)
    _write_csv(root / "mimic-cxr-2.0.0-metadata.csv", METADATA_COLUMNS, metadata, gz=gz)
    _write_csv(root / "mimic-cxr-2.0.0-chexpert.csv", ["subject_id", "study_id", *CHEXPERT_COLUMNS], chexpert)
    if split:
        _write_csv(root / "mimic-cxr-2.0.0-split.csv", ["dicom_id", "study_id", "subject_id", "split"],
                   split_rows, gz=gz)
    return studies


def frontal_id(studies: list[dict], index: int) -> str:
    """The dicom_id of study ``index``'s frontal image."""
    return f"{index:02d}0a-{studies[index]['study']}"


# -- MIMIC in-hospital mortality (mimic3-benchmarks / MedFuse) -----------------------------------
def _timeseries_rows(rng: np.random.Generator, died: int, hours: float = 50.0) -> list[list]:
    rows = []
    for t in np.arange(0.5, hours, 6.0):
        heart = rng.normal(110 if died else 80, 5)
        row = [round(float(t), 2), "", round(float(rng.normal(60, 5)), 1), "", "4 Spontaneously",
               "Obeys Commands" if not died else "2 Abnorm extensn", "" if t > 20 else 11, "5 Oriented",
               round(float(rng.normal(130, 20)), 0), round(float(heart), 1), "", 80.0, 97.0,
               round(float(rng.normal(18, 2)), 1), 120.0, 37.0, "", 7.4]
        rows.append(row)
    return rows


def build_mimic_mortality(root: Path, *, layout: str = "folders", n_per_split: int = 6,
                          medfuse: bool = True) -> dict[str, list[tuple[str, int]]]:
    """``root/in-hospital-mortality``: ``layout = "folders"`` writes {train,val,test}/listfile.csv
    (MedFuse); ``"benchmarks"`` writes mimic3-benchmarks' train/ test/ folders with
    {train,val,test}_listfile.csv at the top (val stays' files live in train/). ``medfuse``
    adds stay_id / intime / endtime columns. Subjects are SUBJECTS (the CXR fixture's), so
    a CXR fixture in another folder pairs with these stays. Returns split -> [(stay, y)]."""
    rng = np.random.default_rng(0)
    task = root / "in-hospital-mortality"
    written: dict[str, list[tuple[str, int]]] = {}
    header = ["stay", "period_length", "stay_id", "y_true", "intime", "endtime"] if medfuse else ["stay", "y_true"]
    subject_index = 0
    for split in ("train", "val", "test"):
        listed, rows = [], []
        for k in range(n_per_split):
            subject = SUBJECTS[subject_index % len(SUBJECTS)]
            subject_index += 1
            stay = f"{subject}_episode{1 + subject_index // len(SUBJECTS)}_timeseries.csv"
            died = int(k % 3 == 0)
            folder = task / (split if layout == "folders" or split != "val" else "train")
            _write_csv(folder / stay, TIMESERIES_COLUMNS, _timeseries_rows(rng, died))
            listed.append((stay, died))
            day = 1 + subject_index
            rows.append([stay, 48.0, 30000000 + subject_index, died, f"2180-01-{day:02d} 10:00:00",
                         f"2180-01-{day + 3:02d} 10:00:00"] if medfuse else [stay, died])
        target = task / split / "listfile.csv" if layout == "folders" else task / f"{split}_listfile.csv"
        _write_csv(target, header, rows)
        written[split] = listed
    return written
