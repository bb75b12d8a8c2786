"""Tiny copies of HAM10000 as users have it on disk, for the loader and suite tests.

The real column names and file names; the layouts of the Dataverse bundle (a
tab-separated ``.tab`` with quoted strings and a ``dataset`` column, unpacked into
``dataverse_files/``), the original CSV with two image folders, Kaggle's mirror (the same
images in upper- and lower-case folders) and a flat folder. Rows follow the real data's
shape: several images per lesion, ages in steps of 5 with some missing, sex and
localization "unknown" for some, ``dx_type`` tied to the diagnosis as in the real table.
"""

from __future__ import annotations

import csv
from pathlib import Path

CLASSES = ("nv", "mel", "bkl", "bcc", "akiec", "vasc", "df")
#: how each diagnosis was usually confirmed in the real table (why dx_type leaks the label)
DX_TYPE = {"nv": "follow_up", "mel": "histo", "bkl": "consensus", "bcc": "histo", "akiec": "histo",
           "vasc": "consensus", "df": "confocal"}
SITES = ("back", "lower extremity", "trunk", "upper extremity", "abdomen", "face", "chest", "unknown")
SEXES = ("male", "female", "unknown")
COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
SOURCES = ("vidir_modern", "rosendahl", "vidir_molemax", "vien_dump")
LAYOUTS = ("csv", "tab", "kaggle", "flat")
#: lesions per diagnosis (1 to 3 images each): every class survives a grouped split
LESIONS_PER_CLASS = 4


def rows(lesions_per_class: int = LESIONS_PER_CLASS) -> list[dict[str, str]]:
    """Metadata rows (as the file writes them: text, empty for a missing age), grouped
    by lesion like the real table; 1 to 3 images per lesion."""
    out = []
    image = 24306  # the real ids start at ISIC_0024306
    for c, dx in enumerate(CLASSES):
        for k in range(lesions_per_class):
            lesion = f"HAM_{c * 100 + k:07d}"
            for _ in range(1 + (c + k) % 3):
                n = len(out)
                out.append({
                    "lesion_id": lesion, "image_id": f"ISIC_{image:07d}", "dx": dx, "dx_type": DX_TYPE[dx],
                    "age": "" if n % 11 == 5 else f"{30 + 5 * ((c + k + n) % 10)}.0",
                    "sex": SEXES[n % 3] if n % 13 == 7 else SEXES[n % 2],
                    "localization": SITES[(c + n) % len(SITES)],
                })
                image += 1
    return out


def build(root: Path, layout: str = "csv", table: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Write a HAM10000 copy under ``root`` in ``layout`` (one of LAYOUTS); returns its rows.

    csv: ``HAM10000_metadata.csv``, images split over ``HAM10000_images_part_1/`` and
    ``_part_2/``; tab: the Dataverse bundle in ``dataverse_files/``; kaggle: the csv
    layout plus lower-case copies of the image folders and the ``hmnist`` CSVs; flat: the
    csv beside one folder of all images.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {LAYOUTS}")
    table = rows() if table is None else table
    root = Path(root)
    base = root / "dataverse_files" if layout == "tab" else root
    base.mkdir(parents=True, exist_ok=True)
    if layout == "tab":
        write_metadata(base / "HAM10000_metadata.tab", table, tab=True)
    else:
        write_metadata(base / "HAM10000_metadata.csv", table)
    half = len(table) // 2
    for i, row in enumerate(table):
        folders = (["images"] if layout == "flat"
                   else ["HAM10000_images_part_1" if i < half else "HAM10000_images_part_2"])
        if layout == "kaggle":
            folders.append(folders[0].lower())
        for folder in folders:
            write_image(base / folder / f"{row['image_id']}.jpg", CLASSES.index(row["dx"]))
    if layout == "kaggle":
        (base / "hmnist_8_8_RGB.csv").write_text("pixel0000,label\n0,2\n")
    return table


def write_metadata(path: Path, table: list[dict[str, str]], tab: bool = False) -> None:
    """The metadata file: CSV, or the Dataverse's ``.tab`` (tab-separated, strings quoted,
    an extra ``dataset`` column)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [*COLUMNS, "dataset"] if tab else list(COLUMNS)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t" if tab else ",",
                            quoting=csv.QUOTE_NONNUMERIC if tab else csv.QUOTE_MINIMAL)
        writer.writerow(columns)
        for i, row in enumerate(table):
            values = {**row, "dataset": SOURCES[i % len(SOURCES)]}
            if tab:  # Dataverse writes numbers bare and strings quoted
                values["age"] = float(values["age"]) if values["age"] else ""
            writer.writerow([values.get(c, "") for c in columns])


def write_image(path: Path, shade: int) -> None:
    """A small JPEG whose colour follows ``shade`` (decodable, like a real image)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (30 * shade, 200 - 20 * shade, 90)).save(path, quality=80)
