"""SatelliteBench (PhysioNet ``multimodal-satellite-data``): Sentinel-2 images of 81
Colombian municipalities, one per epidemiological week 2016-2018, with municipality
metadata and weekly dengue case counts. Restrepo et al.'s binary task: a week is 1 when its
dengue cases are above the municipality's median weekly count.

Layout read (the PhysioNet page could not be opened here; these are the documented
assumptions, each with the variants tolerated):

- ``metadata.csv`` (or ``Metadata.csv``, ``metadata/metadata.csv``): one row per
  municipality; a code column (``Municipality code``, ``municipality_code``, ``Code``,
  ``DIVIPOLA``... or ``code_column``), an optional name column (``Municipality``,
  ``Name``, ``City``...), population and demographic percentages, and one column of dengue
  cases per week named ``YYYY/wNN`` (also ``YYYY/WNN``, ``YYYY-wNN``, ``YYYY_wNN``).
- images anywhere under ``root`` with a suffix of ``image_suffixes`` (``.tiff`` / ``.tif``;
  ``.jpg`` for the authors' RGB copies): the date is the ``YYYY-MM-DD`` (or ``YYYYMMDD``)
  in the file name, the municipality the number before it (``5001_2016-06-12.tiff``) or
  the nearest numeric folder (``images/5001/image_2016-06-12.tiff``). Codes are compared
  as numbers, so ``05001`` is ``5001``.

Each image is one sample. Its date falls in an epidemiological week (Sunday to Saturday;
week 1 is the week holding 4 January, the MMWR rule Colombia's INS uses), whose case
column gives the label. The median is over every week of the municipality in
``metadata.csv``, so a missing image never moves another sample's label; "above" is
strict. The text says where and when the image was taken and the municipality's
demographics, and never the cases or the label (the authors' first template did; it is
not offered). Weekly case columns are never tabular features either; ``tabular = false``
drops the table (Restrepo et al. fuses image and text only). Groups are
municipalities; there is no official split (Restrepo et al. used a random 80/20 split, which
puts weeks of one municipality on both sides: the runner's grouped split does not).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading
from mmbench_datasets.table import numeric_where_possible

METADATA_NAMES = ("metadata.csv", "Metadata.csv", "metadata/metadata.csv")
PUBLISHED = "https://physionet.org/content/multimodal-satellite-data/1.0.0/"
ACCESS = "open access on PhysioNet; cite the dataset and DengueNet"
CODE_COLUMNS = ("municipalitycode", "codemunicipality", "municipalityid", "code", "codigo", "codigomunicipio",
                "codmpio", "divipola", "dane", "danecode")
NAME_COLUMNS = ("municipality", "municipalityname", "municipio", "name", "city", "nombre")
CASE_COLUMN = re.compile(r"\s*(\d{4})\s*[/_-]?\s*[wW]\s*(\d{1,2})\s*")
#: a date in a file name: YYYY-MM-DD, else YYYYMMDD
DATES_IN_NAME = (re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"), re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"))
TEMPLATE = ("A satellite image of {municipality} (municipality code {code}) taken on {date}, "
            "epidemiological week {week} of {year}. {demographics}")


class SatelliteBench(Dataset):
    """SatelliteBench: satellite images of Colombian municipalities; dengue cases above the municipality's median."""

    name = "satellitebench"
    modalities = ("image", "text", "tabular")
    task_kinds = ("binary",)
    citation = ("Cajas et al., A Multi-Modal Satellite Imagery Dataset for Public Health Analysis in Colombia, "
                "PhysioNet 2024, doi:10.13026/xr5s-xe24")
    parameters = (
        loading.ROOT,
        Param("code_column", str, "", "municipality code column of metadata.csv; empty: found by name "
              "(Municipality code, Code, DIVIPOLA...)"),
        Param("tabular_columns", list, [], "metadata columns for the tabular modality; empty: every column but "
              "the code, the name and the weekly cases (population, demographic percentages)"),
        Param("tabular", bool, True, "give the metadata table as a tabular modality; false: image and text "
              "only, as Restrepo et al. (an empty tabular_columns means every demographic column, not none)"),
        Param("image_suffixes", list, [".tiff", ".tif"], "image file suffixes to read (e.g. ['.jpg'] for RGB copies)"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text", "tabular") if self.params["tabular"] else ("image", "text")

    def task_kind(self) -> str:
        return "binary"

    def info(self) -> dict[str, str]:
        return {"text template": TEMPLATE + "  ({demographics}: 'column: value' for each metadata column but "
                "the code, the name and the weekly cases)"}

    def fingerprint(self) -> str:
        metadata = self._metadata_path()
        return loading.fingerprint_files(self.name, self.params, [metadata], self._images())

    def load(self):
        from mmbench.data import DatasetTable

        frame = loading.read_table(self._metadata_path(), dtype=str, keep_default_na=False)
        frame.columns = [str(c).strip() for c in frame.columns]
        meta = _Metadata(frame, self.params["code_column"], self.params["tabular_columns"])
        bad = loading.BadSamples(self.name, self.params["on_bad_sample"])
        ids, labels, images, texts, rows, groups = [], [], [], [], [], []
        seen: set[str] = set()
        for path in self._images():
            sample = path.stem
            code, day, problem = _where_and_when(path, Path(self.params["root"]), meta.codes)
            if problem is None:
                sample = f"{code}_{day.isoformat()}"
                label, problem = meta.label(code, day)
            if problem is None and sample in seen:
                problem = f"a second image of municipality {code} on {day.isoformat()} ({path.name})"
            if problem is not None:
                bad.report(sample, problem)
                continue
            ids.append(sample)
            seen.add(sample)
            labels.append(label)
            images.append(str(path))
            texts.append(meta.text(code, day))
            rows.append(meta.row[code])
            groups.append(code)
        if not ids:
            raise UserError(f"dataset 'satellitebench': no usable image under {self.params['root']} "
                            f"({len(bad.skipped)} skipped, e.g. {next(iter(bad.skipped.values()), '')})")
        modalities = {"image": images, "text": texts}
        if self.params["tabular"]:
            modalities["tabular"] = frame.iloc[rows][meta.tabular].apply(numeric_where_possible).reset_index(drop=True)
        return loading.drop_broken_images(DatasetTable(
            ids=np.array(ids), labels=np.array(labels, dtype=np.int64), task="binary",
            classes=("cases_at_or_below_median", "cases_above_median"), modalities=modalities,
            groups=np.array(groups), skipped=bad.skipped), bad)

    # -- files -------------------------------------------------------------------------------
    def _metadata_path(self) -> Path:
        root = Path(self.params["root"])
        path = loading.first_existing(root, METADATA_NAMES)
        if path is None:
            raise loading.missing_files(self.name, root, [*METADATA_NAMES, "*.tiff images"], PUBLISHED, ACCESS)
        return path

    def _images(self) -> list[Path]:
        root = Path(self.params["root"])
        suffixes = {str(s).lower() for s in self.params["image_suffixes"]}
        found = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        if not found:
            raise loading.missing_files(self.name, root, [f"images ({', '.join(sorted(suffixes))}) under root"],
                                        PUBLISHED, ACCESS)
        return found


class _Metadata:
    """metadata.csv by municipality: weekly cases, their median, text and tabular values."""

    def __init__(self, frame, code_column: str, tabular_columns: list):
        import pandas as pd

        columns = list(frame.columns)
        self.weeks = {}
        for column in columns:
            match = CASE_COLUMN.fullmatch(column)
            if match:
                self.weeks[(int(match.group(1)), int(match.group(2)))] = column
        if not self.weeks:
            raise UserError(f"satellitebench: metadata.csv has no weekly dengue case columns named YYYY/wNN; "
                            f"found columns {', '.join(map(repr, columns[:20]))}")
        code = _column(columns, code_column, CODE_COLUMNS, "code_column")
        name = _column(columns, "", NAME_COLUMNS, "", required=False)
        reserved = {code, name, *self.weeks.values()}
        self.demographics = [c for c in columns if c not in reserved]
        self.tabular = [str(c) for c in tabular_columns] or self.demographics
        leaking = [c for c in self.tabular if c in self.weeks.values()]
        if leaking:
            raise UserError(f"satellitebench: tabular_columns {leaking} are weekly dengue case counts, the label's "
                            "source; they would leak the label")
        absent = [c for c in self.tabular if c not in columns]
        if absent:
            raise UserError(f"satellitebench: tabular_columns {absent} are not columns of metadata.csv; choose "
                            f"from {self.demographics}")
        codes = [_code(v) for v in frame[code]]
        seen = [c for c in codes if c is not None]
        repeated = sorted({c for c in seen if seen.count(c) > 1})
        if repeated:
            raise UserError(f"satellitebench: metadata.csv lists municipalities {repeated} more than once")
        self.codes = set(seen)
        self.row = {c: i for i, c in enumerate(codes) if c is not None}
        cases = frame[list(self.weeks.values())].apply(pd.to_numeric, errors="coerce")
        self.cases = {c: cases.iloc[i] for c, i in self.row.items()}
        self.median = {c: float(np.nanmedian(v.to_numpy(dtype=float))) if v.notna().any() else np.nan
                       for c, v in self.cases.items()}
        self.raw = {c: frame.iloc[i] for c, i in self.row.items()}
        self.name_column = name

    def label(self, code: str, day: date) -> tuple[int | None, str | None]:
        year, week = epi_week(day)
        column = self.weeks.get((year, week))
        if column is None:
            return None, f"metadata.csv has no case column for epidemiological week {year}/w{week:02d}"
        value = self.cases[code][column]
        if np.isnan(value):
            raw = self.raw[code][column]
            what = "no" if loading.is_missing(raw) else f"an unreadable ({raw!r})"
            return None, f"{what} dengue case count in {column!r} for municipality {code}"
        return int(value > self.median[code]), None

    def text(self, code: str, day: date) -> str:
        year, week = epi_week(day)
        record = self.raw[code]
        name = record[self.name_column] if self.name_column else None
        parts = [f"{c}: {_value(record[c])}" for c in self.demographics]
        demographics = ("Demographics: " + "; ".join(parts) + ".") if parts else ""
        return loading.render(TEMPLATE, {"municipality": name, "code": code, "date": day.isoformat(),
                                         "week": week, "year": year, "demographics": demographics}).strip()


def epi_week(day: date) -> tuple[int, int]:
    """(epidemiological year, week) of ``day``: weeks run Sunday to Saturday and week 1
    holds 4 January (MMWR), so 2016-01-03 starts 2016/w01 and 2018-12-30 is 2019/w01."""
    start = day - timedelta(days=(day.weekday() + 1) % 7)
    year = (start + timedelta(days=3)).year  # the week's Wednesday decides its year
    january_4 = date(year, 1, 4)
    first = january_4 - timedelta(days=(january_4.weekday() + 1) % 7)
    return year, (start - first).days // 7 + 1


def _where_and_when(path: Path, root: Path, codes: set[str]) -> tuple[str | None, date | None, str | None]:
    """The municipality code and date an image file stands for, or why they are unknown."""
    match = next((m for m in (p.search(path.stem) for p in DATES_IN_NAME) if m), None)
    if match is None:
        return None, None, f"no date (YYYY-MM-DD) in the file name {path.name!r}"
    try:
        day = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None, None, f"{match.group(0)!r} in {path.name!r} is not a date"
    prefix = path.stem[:match.start()].strip("_- ")
    code = _code(prefix) if prefix.isdigit() else None
    if code is None:
        for folder in path.relative_to(root).parents:
            if folder.name.isdigit():
                code = _code(folder.name)
                break
    if code is None:
        return None, day, f"no municipality code in {str(path.relative_to(root))!r} (expected <code>_<date> or a <code>/ folder)"
    if code not in codes:
        return code, day, f"municipality {code} is not in metadata.csv"
    return code, day, None


def _column(columns: list[str], given: str, names: tuple[str, ...], param: str, required: bool = True) -> str:
    if given:
        if given not in columns:
            raise UserError(f"satellitebench: no column {given!r} ({param}) in metadata.csv; found columns "
                            f"{', '.join(map(repr, columns[:20]))}")
        return given
    squeezed = {re.sub(r"[^a-z0-9]", "", c.lower()): c for c in columns}
    for name in names:
        if name in squeezed:
            return squeezed[name]
    if required:
        raise UserError(f"satellitebench: metadata.csv has no municipality code column (looked for "
                        f"{', '.join(names)}); set {param}")
    return ""


def _code(value: Any) -> str | None:
    """A municipality code as compared: '05001', '5001' and '5001.0' are '5001'."""
    if loading.is_missing(value):
        return None
    text = str(value).strip()
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def _value(value: Any) -> str:
    if loading.is_missing(value):
        return loading.UNKNOWN
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else f"{number:.2f}".rstrip("0").rstrip(".")
