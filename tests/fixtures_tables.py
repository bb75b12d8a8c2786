"""Tiny copies of SatelliteBench, PairDx and a user's own table, for the loader and suite tests.

SatelliteBench: ``metadata.csv`` with a municipality code, name, population, demographic
percentages and weekly dengue case columns ``YYYY/wNN``; one small TIFF per municipality
and epidemiological week (dated on its Sunday), either flat (``5001_2016-01-03.tiff``, the
authors' naming) or in per-municipality folders (``images/05001/image_2016-01-03.tiff``).
PairDx: one table (``pairdx.csv``) or one per split (``train.csv``...), columns image,
caption, label, split, case_id, images under ``images/``; labels written in the paper's
several spellings ("Medical Photograph", "medical_photograph"). A user table: ids, a
label, a split, a patient group, relative image paths and two text columns.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

#: (code, name, population, age 0-14 %, urban %)
MUNICIPALITIES = (("5001", "Medellín", 2529403, 18.2, 98.1), ("76001", "Cali", 2227642, 19.5, 98.4),
                  ("8001", "Barranquilla", 1232766, 22.1, 99.8), ("73001", "Ibagué", 541101, 20.9, 94.2),
                  ("54001", "Cúcuta", 711715, 24.3, 96.6), ("23001", "Montería", 490935, 25.7, 77.3))
DEMOGRAPHICS = ("Population", "Age 0-14 (%)", "Urban (%)")
#: weeks with an image; metadata.csv holds two weeks more (cases reported, no image)
WEEKS = 6
FIRST_SUNDAY = date(2016, 1, 3)  # starts epidemiological week 2016/w01
SATELLITE_LAYOUTS = ("flat", "folders")
PAIRDX_CLASSES = ("chart", "electrography", "endoscopy", "medical_photograph", "ophthalmic_imaging", "radiology")
PAIRDX_SPELLINGS = {"medical_photograph": ("Medical Photograph", "medical_photograph"),
                    "ophthalmic_imaging": ("Ophthalmic Imaging", "ophthalmic-imaging")}


def image(path: Path, seed: int, size: int = 8) -> Path:
    """A small RGB image (format from the suffix), its colour set by ``seed``."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), ((37 * seed) % 256, (91 * seed) % 256, (53 * seed) % 256)).save(path)
    return path


def weekly_cases(m: int, weeks: int = WEEKS + 2) -> list[int]:
    """Cases per week for municipality ``m``: a rising and falling wave, so about half the
    weeks are above the municipality's median."""
    return [(m + 1) * (3 + (w * 5 + m) % 7) for w in range(weeks)]


def satellite_date(week: int) -> date:
    return FIRST_SUNDAY + timedelta(weeks=week)


def build_satellitebench(root: Path, layout: str = "flat", municipalities: int = 6) -> Path:
    """A SatelliteBench copy under ``root``; returns root."""
    if layout not in SATELLITE_LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {SATELLITE_LAYOUTS}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    case_columns = [f"2016/w{w + 1:02d}" for w in range(WEEKS + 2)]
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Municipality code", "Municipality", *DEMOGRAPHICS, *case_columns])
        for m, (code, name, population, young, urban) in enumerate(MUNICIPALITIES[:municipalities]):
            writer.writerow([code, name, population, young, urban, *weekly_cases(m)])
    for m, (code, *_rest) in enumerate(MUNICIPALITIES[:municipalities]):
        for w in range(WEEKS):
            day = satellite_date(w).isoformat()
            if layout == "flat":
                path = root / f"{code}_{day}.tiff"
            else:
                path = root / "images" / code.zfill(5) / f"image_{day}.tiff"
            image(path, seed=m * 10 + w)
    return root


def satellite_image(root: Path, code: str, week: int) -> Path:
    """The image file of ``code`` in (0-based) ``week`` of a flat copy."""
    return Path(root) / f"{code}_{satellite_date(week).isoformat()}.tiff"


def pairdx_rows() -> list[dict[str, str]]:
    """Rows of the PairDx table: per class four case reports of two figures each; cases
    0-1 train, 2 val, 3 test (the split never separates a case's figures)."""
    rows = []
    for c, label in enumerate(PAIRDX_CLASSES):
        spellings = PAIRDX_SPELLINGS.get(label, (label,))
        for k in range(8):
            case = f"PMC{1000 + 10 * c + k // 2}"
            rows.append({"image": f"{case}_{k % 2 + 1}.jpg",
                         "caption": f"Figure {k % 2 + 1}: {label.replace('_', ' ')} findings in case {k // 2}.",
                         "label": spellings[k % len(spellings)],
                         "split": ("train", "train", "val", "test")[k // 2], "case_id": case})
    return rows


def build_pairdx(root: Path, layout: str = "single", rows: list[dict[str, str]] | None = None) -> Path:
    """A PairDx copy: ``single`` (pairdx.csv with a split column) or ``split_files``
    (train.csv / valid.csv / test.csv, no split column); images in ``images/``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = pairdx_rows() if rows is None else rows
    for n, row in enumerate(rows):
        image(root / "images" / row["image"], seed=n)
    if layout == "single":
        _write_csv(root / "pairdx.csv", rows)
    elif layout == "split_files":
        for split, name in (("train", "train.csv"), ("val", "valid.csv"), ("test", "test.csv")):
            _write_csv(root / name, [{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split])
    else:
        raise ValueError(f"layout {layout!r} is not single or split_files")
    return root


def table_rows(n: int = 24) -> list[dict[str, str]]:
    """A user's table: id, label (yes/no), split, patient (2 rows each), img, title, body, age, sex."""
    rows = []
    for i in range(n):
        patient = f"P{i // 2:03d}"
        split = ("train", "train", "train", "validation", "test")[(i // 2) % 5]
        rows.append({"id": f"{i:03d}", "label": "yes" if (i // 2) % 2 else "no", "split": split,
                     "patient": patient, "img": f"pics/{i:03d}.png", "title": f"Visit {i}",
                     "body": f"note about {'redness' if (i // 2) % 2 else 'nothing'}", "age": str(30 + i),
                     "sex": "F" if i % 3 else "M"})
    return rows


def build_table(folder: Path, rows: list[dict[str, str]] | None = None, name: str = "samples.csv") -> Path:
    """A user table (CSV, or Parquet for a .parquet name) with its images beside it; returns its path."""
    folder = Path(folder)
    rows = table_rows() if rows is None else rows
    for n, row in enumerate(rows):
        if row.get("img"):
            image(folder / row["img"], seed=n)
    path = folder / name
    if path.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame(rows).to_parquet(path)
    else:
        _write_csv(path, rows)
    return path


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
