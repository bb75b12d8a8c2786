"""Tiny copies of the BRSET and mBRSET layouts (PhysioNet), for the loader tests and the suites.

Real file names and column names, a few patients with two (BRSET) or four (mBRSET) photos
each, the values' real quirks (hand-typed ages such as "5O", "Não" as a diabetes duration,
yes/no answers, ungraded mBRSET photos) and 12-pixel JPEGs whose colour follows the DR
grade, so a run on them has something to learn.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

#: BRSET labels.csv header, first release (1.0.0), in its order
BRSET_COLUMNS = (
    "image_id", "patient_id", "camera", "patient_age", "comorbidities", "diabetes_time_y", "insuline",
    "patient_sex", "exam_eye", "diabetes", "nationality", "optic_disc", "vessels", "macula", "DR_SDRG",
    "DR_ICDR", "focus", "Illuminaton", "image_field", "artifacts", "diabetic_retinopathy", "macular_edema",
    "scar", "nevus", "amd", "vascular_occlusion", "hypertensive_retinopathy", "drusens", "hemorrhage",
    "retinal_detachment", "myopic_fundus", "increased_cup_disc", "other", "quality",
)
#: columns later releases renamed (typo fixes)
LATER_SPELLING = {"diabetes_time_y": "diabetes_time", "insuline": "insulin", "drusens": "drusen",
                  "Illuminaton": "illumination"}
#: mBRSET labels_mbrset.csv header (1.0), in its order
MBRSET_COLUMNS = (
    "patient", "age", "sex", "dm_time", "insulin", "insulin_time", "oraltreatment_dm", "systemic_hypertension",
    "insurance", "educational_level", "alcohol_consumption", "smoking", "obesity", "vascular_disease",
    "acute_myocardial_infarction", "nephropathy", "neuropathy", "diabetic_foot", "file", "laterality",
    "final_artifacts", "final_quality", "final_icdr", "final_edema",
)
#: DR grade of patient p's photos: every grade and both 3-class extremes occur
GRADES = (0, 2, 0, 4, 1, 0, 3, 0)


def brset_rows(n_patients: int = 8) -> list[dict[str, str]]:
    """Two photos (right, left eye) per patient; ids img00001.. in order."""
    rows = []
    for p in range(n_patients):
        grade = GRADES[p % len(GRADES)]
        for eye in (1, 2):
            n = 2 * p + eye
            rows.append({
                "image_id": f"img{n:05d}", "patient_id": str(p + 1),
                "camera": "Canon CR" if p % 2 else "NIKON NF5050",
                "patient_age": "5O" if p == 1 else "" if p == 2 else str(40 + 3 * p),
                "comorbidities": "diabetes1, SAH" if grade else "" if p % 3 else "SAH",
                "diabetes_time_y": "Não" if p == 3 else str(p + 2) if grade else "",
                "insuline": "yes" if grade >= 3 else "no" if grade else "",
                "patient_sex": str(1 + p % 2), "exam_eye": str(eye), "diabetes": "yes" if grade else "no",
                "nationality": "Brazil",
                "optic_disc": str(1 + (p == 5)), "vessels": str(1 + (grade >= 3)), "macula": str(1 + (grade >= 2)),
                "DR_SDRG": str(grade), "DR_ICDR": str(grade), "focus": "1", "Illuminaton": "1",
                "image_field": "1", "artifacts": "1",
                "diabetic_retinopathy": str(int(grade > 0)), "macular_edema": str(int(grade >= 3)),
                "scar": str(int(grade == 4)), "nevus": str(int(p == 2)), "amd": str(int(p == 5 and eye == 1)),
                "vascular_occlusion": "0", "hypertensive_retinopathy": str(int(p % 4 == 1)),
                "drusens": str(int(p % 3 == 2)), "hemorrhage": str(int(grade >= 2)),
                "retinal_detachment": "0", "myopic_fundus": str(int(p == 7)),
                "increased_cup_disc": str(int(p % 5 == 0)), "other": "0", "quality": "Adequate",
            })
    return rows


def write_brset(root: Path, rows: list[dict[str, str]] | None = None, *, label_file: str = "labels.csv",
                later_spelling: bool = False, skip_images: Iterable[str] = (), image_size: int = 12) -> Path:
    """A BRSET folder at ``root``: the label file and fundus_photos/<image_id>.jpg for every
    row except ``skip_images``; ``later_spelling`` writes the renamed columns."""
    rows = brset_rows() if rows is None else rows
    header = [LATER_SPELLING.get(c, c) if later_spelling else c for c in BRSET_COLUMNS]
    renamed = [{LATER_SPELLING.get(k, k) if later_spelling else k: v for k, v in r.items()} for r in rows]
    _write_csv(root / label_file, header, renamed)
    skip = set(skip_images)
    for row in rows:
        if row["image_id"] not in skip:
            write_fundus(root / "fundus_photos" / f"{row['image_id']}.jpg", row["DR_ICDR"], image_size)
    return root


def mbrset_rows(n_patients: int = 6) -> list[dict[str, str]]:
    """Four photos per patient (two per eye), files "<patient>.<k>.jpg"; the last photo of
    patient 3 is ungraded (empty final_icdr), as unreadable photos are in the real file."""
    rows = []
    for p in range(1, n_patients + 1):
        grade = GRADES[p % len(GRADES)]
        for k in range(1, 5):
            rows.append({
                "patient": str(p), "age": "" if p == 2 else str(50 + p), "sex": str(p % 2),
                "dm_time": "" if p == 4 else str(p * 2), "insulin": "" if p == 5 else "yes" if grade >= 2 else "no",
                "insulin_time": str(p) if grade >= 2 else "", "oraltreatment_dm": "yes",
                "systemic_hypertension": "yes" if p % 2 else "no", "insurance": "no", "educational_level": str(1 + p % 7),
                "alcohol_consumption": "no", "smoking": "no", "obesity": "yes" if p == 3 else "no",
                "vascular_disease": "no", "acute_myocardial_infarction": "no", "nephropathy": "yes" if grade >= 3 else "no",
                "neuropathy": "no", "diabetic_foot": "no", "file": f"{p}.{k}.jpg",
                "laterality": "right" if k <= 2 else "left", "final_artifacts": "no", "final_quality": "yes",
                "final_icdr": "" if (p, k) == (3, 4) else str(grade), "final_edema": "yes" if grade >= 3 else "no",
            })
    return rows


def write_mbrset(root: Path, rows: list[dict[str, str]] | None = None, *, image_folder: str = "images",
                 skip_images: Iterable[str] = (), image_size: int = 12) -> Path:
    """An mBRSET folder at ``root``: labels_mbrset.csv and <image_folder>/<file> per row."""
    rows = mbrset_rows() if rows is None else rows
    _write_csv(root / "labels_mbrset.csv", list(MBRSET_COLUMNS), rows)
    skip = set(skip_images)
    for row in rows:
        if row["file"] not in skip:
            write_fundus(root / image_folder / row["file"], row["final_icdr"] or "0", image_size)
    return root


def write_fundus(path: Path, grade: str, size: int = 12) -> None:
    """A small orange disc on black, redder and darker with the DR grade."""
    from PIL import Image, ImageDraw

    level = int(grade) if str(grade).isdigit() else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (size, size))
    ImageDraw.Draw(image).ellipse([1, 1, size - 2, size - 2], fill=(200 + 10 * min(level, 4), 120 - 25 * min(level, 4), 40))
    image.save(path, quality=90)


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
