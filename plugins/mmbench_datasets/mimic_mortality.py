"""MIMIC in-hospital mortality after the first 48 h of an ICU stay (mimic3-benchmarks /
MedFuse; OmniFuse's EHR + CXR + report task, the OmniFuse paper).

Layout read under ``root`` (the folder holding ``in-hospital-mortality/``, or that folder):

- the listfiles ``stay,...,y_true``: ``{train,val,test}/listfile.csv`` (MedFuse) or
  mimic3-benchmarks' ``{train,val,test}_listfile.csv`` at the top, which win over
  ``train/listfile.csv`` there (that one holds train AND val). No val listfile: the runner
  carves validation out of train. A stay in two listfiles is an error (it would leak).
- per stay ``<subject>_episode<k>_timeseries.csv`` (``Hours`` + 17 clinical variables) in
  the split's folder (val stays: ``val/``, else ``train/``).

The EHR modality is a float vector per stay: for each of the 17 variables over hours
[0, ``hours``] the last, mean, min and max value and a "never measured" indicator (85
values). The five categorical variables (capillary refill, Glasgow coma scale parts) are
read as their ordinal scores. With ``standardize`` each value column is scaled by the
official TRAIN split's mean and std (known at load time, so no test statistics leak in)
and a missing value reads 0 (the train mean); its indicator says it was missing.

With ``cxr_root`` (a MIMIC-CXR-JPG folder, see ``mimic_cxr``) each stay is paired like
MedFuse pairs it: the subject's LAST image of a kept view taken between ``intime`` and
``intime + hours`` (listfile columns of MedFuse's mimic4extract), with that study's report
as text. Stays without such an image have no image and no text (masks False).

``modalities`` keeps a subset (OmniFuse Table 3's EHR+REP and CXR+REP rows). The cohort
is the same in every combination (every listed stay with a readable time series; only a
bad sample skipped under ``on_bad_sample = "skip"`` can differ), so the rows compare
fusions, not patients; a report is still the one of the paired CXR's study,
whose JPG need not be on disk when the image is not kept.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading
from mmbench_datasets import mimic_cxr as cxr

PUBLISHED = ("https://physionet.org/content/mimiciii/ or https://physionet.org/content/mimiciv/, "
             "processed with https://github.com/YerevaNN/mimic3-benchmarks (MedFuse: "
             "https://github.com/nyuad-cai/MedFuse)")
TASK_FOLDER = "in-hospital-mortality"
#: the continuous variables, then the categorical ones (read as ordinal scores)
CONTINUOUS = ("Diastolic blood pressure", "Fraction inspired oxygen", "Glucose", "Heart Rate", "Height",
              "Mean blood pressure", "Oxygen saturation", "Respiratory rate", "Systolic blood pressure",
              "Temperature", "Weight", "pH")
CATEGORICAL = ("Capillary refill rate", "Glascow coma scale eye opening", "Glascow coma scale motor response",
               "Glascow coma scale total", "Glascow coma scale verbal response")
VARIABLES = CONTINUOUS + CATEGORICAL
STATISTICS = ("last", "mean", "min", "max")
MODALITIES = ("ehr", "image", "text")
#: the textual Glasgow coma scale values charted without their score (mimic3-benchmarks'
#: discretizer lists them); values that start with a number read as that number
GCS_WORDS = {
    "spontaneously": 4, "to speech": 3, "to pain": 2, "no response": 1, "none": 1,
    "obeys commands": 6, "localizes pain": 5, "flex-withdraws": 4, "abnormal flexion": 3,
    "abnormal extension": 2, "oriented": 5, "confused": 4, "inappropriate words": 3,
    "incomprehensible sounds": 2, "no response-ett": 1,
}
_LEADING_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)")


def feature_names() -> list[str]:
    """The EHR vector's columns, in order."""
    return [f"{v}:{s}" for v in VARIABLES for s in STATISTICS] + [f"{v}:missing" for v in VARIABLES]


def ordinal(value: Any) -> float:
    """A categorical chart value as its score (NaN when empty or not recognised)."""
    if loading.is_missing(value):
        return np.nan
    if isinstance(value, (int, float)):
        return float(value)
    match = _LEADING_NUMBER.match(str(value))
    if match:
        return float(match.group(1))
    return float(GCS_WORDS.get(str(value).strip().lower(), np.nan))


def summarise(frame: Any, hours: float) -> tuple[np.ndarray, int]:
    """The 85 summary values of one stay's time series, and how many non-empty values
    could not be read (reported, not silently dropped)."""
    import pandas as pd

    times = pd.to_numeric(frame["Hours"], errors="coerce")
    window = frame[(times > -1e-6) & (times < hours + 1e-6)].assign(Hours=times).sort_values("Hours", kind="stable")
    values = np.zeros((len(VARIABLES), len(STATISTICS)))
    missing = np.zeros(len(VARIABLES))
    unreadable = 0
    for k, variable in enumerate(VARIABLES):
        raw = window[variable]
        series = (pd.to_numeric(raw, errors="coerce") if variable in CONTINUOUS
                  else raw.map(ordinal).astype(float))
        unreadable += int((series.isna() & raw.notna() & (raw.astype(str).str.strip() != "")).sum())
        observed = series.dropna().to_numpy(dtype=float)
        if len(observed):
            values[k] = (observed[-1], observed.mean(), observed.min(), observed.max())
        else:
            values[k] = np.nan
            missing[k] = 1.0
    return np.concatenate([values.ravel(), missing]), unreadable


class MimicMortality(Dataset):
    """MIMIC in-hospital mortality (48 h): EHR summary vectors, optionally the paired CXR and report."""

    name = "mimic_mortality"
    modalities = MODALITIES
    task_kinds = ("binary",)
    citation = ("Harutyunyan et al., Multitask learning and benchmarking with clinical time series data, "
                "Scientific Data 6, 96 (2019); Hayat et al., MedFuse, MLHC 2022")
    parameters = (
        loading.ROOT,
        Param("hours", float, 48.0, "window from ICU admission summarised (and searched for a CXR)",
              min=1.0),
        Param("standardize", bool, True, "scale the EHR values by the official train split's mean / std "
              "(missing -> 0, the train mean)"),
        Param("cxr_root", str, "", "a MIMIC-CXR-JPG folder to pair each stay with its last CXR in the window "
              "(needs MedFuse's intime column); empty: EHR only"),
        Param("cxr_views", list, ["AP", "PA"], "ViewPosition values a paired CXR may have"),
        Param("report_sections", str, "findings", "text of the paired study's report: 'findings' "
              "(OmniFuse's), 'findings_impression', 'impression', 'indication', 'full' or 'none'",
              choices=cxr.REPORT_SECTIONS),
        Param("reports_root", str, "", "folder holding the reports' files/ tree (default: cxr_root)"),
        Param("modalities", list, list(MODALITIES), "modalities to keep, a subset of ehr, image, text (e.g. "
              "['ehr', 'text'] for OmniFuse's EHR+REP); image and text need cxr_root, text a report_sections "
              "other than 'none'; the default keeps every one the other settings give"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._check_modalities()
        self._listed: Any = None
        self._pairs: dict[str, Any] | None = None
        self.unreadable_values = 0

    def task_kind(self) -> str:
        return "binary"

    def raw_modalities(self) -> tuple[str, ...]:
        return tuple(m for m in self._kept() if m != "ehr")

    def _available(self) -> tuple[str, ...]:
        """The modalities the pairing settings give, before ``modalities`` picks from them."""
        if not self.params["cxr_root"]:
            return ("ehr",)
        return ("ehr", "image") if self.params["report_sections"] == "none" else MODALITIES

    def _kept(self) -> tuple[str, ...]:
        return tuple(m for m in self._available() if m in self.params["modalities"])

    def _check_modalities(self) -> None:
        """An explicit subset must name modalities the other settings give; the default
        keeps whatever they give."""
        asked = self.params["modalities"]
        wrong = [m for m in asked if m not in MODALITIES]
        if wrong or not asked or len(set(asked)) != len(asked):
            raise UserError(f"mimic_mortality: modalities must be distinct names from {list(MODALITIES)}, got "
                            f"{asked!r}")
        absent = [m for m in asked if m not in self._available()]
        if absent and sorted(asked) != sorted(MODALITIES):
            needs = "cxr_root" if not self.params["cxr_root"] else "report_sections other than 'none'"
            raise UserError(f"mimic_mortality: modalities {absent} need {needs}; set it, or drop them from "
                            f"modalities (kept now: {list(self._kept())})")
        if not self._kept():
            raise UserError(f"mimic_mortality: modalities {asked!r} keeps none of {list(self._available())}")

    def info(self) -> dict[str, str]:
        out = {"modalities": ", ".join(self._kept()),
               "text template": "no text modality" if "text" not in self._kept()
               else f"paired report, sections: {self.params['report_sections']}",
               "ehr vector": f"{len(VARIABLES)} variables x ({', '.join(STATISTICS)}) + missing indicators over "
                             f"{self.params['hours']:g} h", "unreadable chart values (read as missing)":
               str(self.unreadable_values)}
        return out

    # -- files -----------------------------------------------------------------------------
    def _task_root(self) -> Path:
        root = Path(self.params["root"])
        return root / TASK_FOLDER if (root / TASK_FOLDER).is_dir() else root

    def _listfiles(self) -> dict[str, Path]:
        task = self._task_root()
        found = {}
        for split in ("train", "val", "test"):
            path = loading.first_existing(task, (f"{split}_listfile.csv", f"{split}/listfile.csv"))
            if path is not None:
                found[split] = path
        if "train" not in found or "test" not in found:
            raise loading.missing_files(self.name, Path(self.params["root"]), [
                f"{TASK_FOLDER}/{{train,val,test}}/listfile.csv or {TASK_FOLDER}/{{train,val,test}}_listfile.csv",
                "per-stay *_timeseries.csv"], PUBLISHED, cxr.ACCESS)
        return found

    def _cxr_root(self) -> Path | None:
        given = self.params["cxr_root"]
        return Path(os.path.expandvars(given)).expanduser() if given else None

    def _stays(self) -> Any:
        """Every listed stay with its split, label, subject and time-series path."""
        if self._listed is not None:
            return self._listed
        import pandas as pd

        task = self._task_root()
        frames = []
        for split, path in self._listfiles().items():
            frame = loading.read_table(path, dtype={"stay": str})
            if not {"stay", "y_true"} <= set(frame.columns):
                raise UserError(f"mimic_mortality: {path} needs columns stay and y_true; it has {list(frame.columns)}")
            frame["split"] = split
            folders = [task / split, *([task / "train"] if split == "val" else [])]
            frame["mmbench_series"] = [str(next((f / s for f in folders if (f / s).is_file()), folders[0] / s))
                                       for s in frame["stay"].astype(str).str.strip()]
            frames.append(frame)
        stays = pd.concat(frames, ignore_index=True)
        stays["stay"] = stays["stay"].astype(str).str.strip()
        repeated = stays["stay"][stays["stay"].duplicated()].tolist()
        if repeated:
            raise UserError(f"mimic_mortality: stays listed in two listfiles (train/listfile.csv holds train AND "
                            f"val in mimic3-benchmarks; use train_listfile.csv there): {repeated[:5]}")
        stays["subject_id"] = stays["stay"].str.split("_").str[0]
        self._listed = stays
        return stays

    def _label_files(self) -> list[Path]:
        files = list(self._listfiles().values())
        root = self._cxr_root()
        if root is not None:
            metadata = cxr.table_file(root, cxr.METADATA)
            if metadata is None:
                raise loading.missing_files(self.name, root, [f"{cxr.METADATA}(.gz) (cxr_root)"], cxr.PUBLISHED,
                                            cxr.ACCESS)
            files.append(metadata)
        return files

    def fingerprint(self) -> str:
        stays = self._stays()
        listed = [Path(p) for p in stays["mmbench_series"]]
        for image, report in self._paired().values():
            listed += [Path(image), *([Path(report)] if report else [])]
        return loading.fingerprint_files(self.name, self.params, self._label_files(),
                                         [p for p in listed if p.is_file()])

    def _paired(self) -> dict[str, tuple[str, str | None]]:
        """stay -> (image path, report path or None): MedFuse's rule, the last image of a
        kept view in [intime, intime + hours]."""
        if self._pairs is not None:
            return self._pairs
        import pandas as pd

        root = self._cxr_root()
        self._pairs = {}
        if root is None:
            return self._pairs
        stays = self._stays()
        if "intime" not in stays.columns:
            raise UserError("mimic_mortality: pairing with cxr_root needs the listfiles' intime column (MedFuse's "
                            "mimic4extract listfiles: stay,period_length,stay_id,y_true,intime,endtime); these have "
                            f"{[c for c in stays.columns if not c.startswith('mmbench') and c not in ('split', 'subject_id')]}")
        metadata = loading.read_table(self._label_files()[-1], dtype={"dicom_id": str, "subject_id": str, "study_id": str,
                                                               "StudyDate": str, "StudyTime": str})
        if self.params["cxr_views"]:
            metadata = metadata[metadata["ViewPosition"].isin(self.params["cxr_views"])]
        taken = pd.to_datetime(metadata["StudyDate"].str.strip() + " "
                               + metadata["StudyTime"].str.strip().str.split(".").str[0].str.zfill(6),
                               format="%Y%m%d %H%M%S", errors="coerce")
        metadata = metadata.assign(taken=taken).dropna(subset=["taken"]).sort_values(["taken", "dicom_id"])
        by_subject = {s: g for s, g in metadata.groupby(metadata["subject_id"].str.strip())}
        files = cxr.files_folder(root)
        reports_given = self.params["reports_root"]
        reports = cxr.files_folder(Path(os.path.expandvars(reports_given)).expanduser() if reports_given else root)
        with_text = self.params["report_sections"] != "none"
        start = pd.to_datetime(stays["intime"], errors="coerce")
        for stay, subject, begin in zip(stays["stay"], stays["subject_id"], start):
            images = by_subject.get(subject)
            if images is None or pd.isna(begin):
                continue
            inside = images[(images["taken"] >= begin) & (images["taken"] <= begin + pd.Timedelta(hours=self.params["hours"]))]
            if len(inside):
                last = inside.iloc[-1]
                folder = cxr.study_folder(files, subject, str(last["study_id"]).strip())
                report = str(cxr.study_folder(reports, subject, str(last["study_id"]).strip())) + ".txt"
                self._pairs[stay] = (str(folder / f"{str(last['dicom_id']).strip()}.jpg"), report if with_text else None)
        return self._pairs

    # -- load ------------------------------------------------------------------------------
    def load(self):
        import pandas as pd

        from mmbench.data import DatasetTable

        p = self.params
        stays = self._stays()
        pairs = self._paired()
        bad = loading.BadSamples(self.name, p["on_bad_sample"])
        kept_modalities = self._kept()
        kept, vectors, labels, images, texts = [], [], [], [], []
        self.unreadable_values = 0
        for i, row in enumerate(stays.itertuples(index=False)):
            label = pd.to_numeric(pd.Series([row.y_true]), errors="coerce").iloc[0]
            if label not in (0, 1):
                bad.report(row.stay, f"y_true = {row.y_true!r} is not 0 or 1")
                continue
            series = Path(row.mmbench_series)
            if not series.is_file():
                bad.report(row.stay, f"time series {series} is missing")
                continue
            frame = loading.read_table(series)
            absent = [c for c in ("Hours", *VARIABLES) if c not in frame.columns]
            if absent:
                bad.report(row.stay, f"time series {series} lacks columns {absent}")
                continue
            image, text = pairs.get(row.stay, (None, None))
            if image is not None and "image" in kept_modalities and not Path(image).is_file():
                bad.report(row.stay, f"paired image file {image} is missing")
                continue
            if text is not None and "text" in kept_modalities:
                usable, text = cxr.read_report(Path(text), p["report_sections"], bad, row.stay)
                if not usable:
                    continue
            vector, unreadable = summarise(frame, p["hours"])
            self.unreadable_values += unreadable
            kept.append(i)
            vectors.append(vector)
            labels.append(int(label))
            images.append(image)
            texts.append(text)
        part = stays.iloc[kept].reset_index(drop=True)
        ehr = np.array(vectors, dtype=np.float64).reshape(len(kept), len(feature_names()))
        given = {"ehr": ehr, "image": images, "text": texts}
        modalities: dict[str, Any] = {m: given[m] for m in kept_modalities}
        masks = {m: np.array([x is not None for x in given[m]], dtype=bool) for m in kept_modalities if m != "ehr"}
        table = loading.drop_broken_images(DatasetTable(
            ids=part["stay"].to_numpy(), labels=np.array(labels, dtype=np.int64), task="binary",
            classes=("survived", "died"), modalities=modalities, masks=masks, groups=part["subject_id"].to_numpy(),
            split=part["split"].to_numpy(), skipped=bad.skipped), bad)
        if "ehr" in table.modalities:  # scaled after the image check: a stay left out moves no train statistic
            table.modalities["ehr"] = self._scaled(ehr[np.isin(part["stay"].to_numpy(), table.ids)], table.split)
        return table

    def _scaled(self, ehr: np.ndarray, split: np.ndarray) -> np.ndarray:
        """Value columns scaled by the train split's statistics (when asked); missing -> 0."""
        n_values = len(VARIABLES) * len(STATISTICS)
        values = ehr[:, :n_values]
        if self.params["standardize"] and len(ehr):
            train = values[split == "train"]
            with warnings.catch_warnings():  # a value never measured in train: scaled by 0 / 1 below
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(train, axis=0) if len(train) else np.zeros(n_values)
                std = np.nanstd(train, axis=0) if len(train) else np.ones(n_values)
            mean = np.nan_to_num(mean)
            std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
            values = (values - mean) / std
        ehr[:, :n_values] = np.nan_to_num(values, nan=0.0)
        return ehr.astype(np.float32)
