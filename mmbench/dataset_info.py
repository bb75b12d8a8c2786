"""What ``mmbench datasets info`` shows: a dataset as a loader reads it, before any run.

Users point a loader at their copy of a dataset and need to see at once whether it read
what they expect: how many samples per split and class, which modalities arrived (and how
many samples lack each), what was skipped and why, and the text one sample gets.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from typing import Any

import numpy as np

from mmbench.data import DatasetTable, is_features
from mmbench.errors import UserError
from mmbench.params import resolve_params
from mmbench.registry import Registry


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, each value read as TOML (``n=3``, ``classes=["a","b"]``,
    ``flag=true``) or else as a plain string (``root=/data/brset``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {pair!r}: expected key=value")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value
    return out


def load_dataset(registry: Registry, name: str, given: dict[str, Any]) -> tuple[Any, DatasetTable]:
    """The dataset plugin made with ``given`` (checked as a suite would) and what it loads."""
    info = registry.get("dataset", name)
    params, problems = resolve_params(info.cls.parameters, given)
    if problems:
        raise UserError(f"dataset {name!r}: " + "; ".join(f"{key}: {problem}" for key, problem in problems))
    dataset = info.cls(**params)
    dataset.fingerprint()  # loaders check their files here: the same message as `validate`
    return dataset, dataset.load()


def summarise(dataset: Any, table: DatasetTable) -> dict[str, Any]:
    """Counts per split and class, modalities with their kind and missing counts, groups,
    skipped samples, the loader's own lines and one example text."""
    splits = table.split if table.split is not None else np.full(len(table), "(no official split)")
    counts: dict[str, dict[str, int]] = {}
    for split in sorted(set(splits), key=_split_order):
        rows = splits == split
        labels = table.labels[rows]
        if table.task == "multilabel":
            per_class = dict(zip(table.classes, labels.sum(axis=0).astype(int).tolist()))
        else:
            per_class = {table.classes[k]: v for k, v in sorted(Counter(labels.tolist()).items())}
        counts[str(split)] = {"n": int(rows.sum()), **per_class}
    modalities = {}
    for name, values in table.modalities.items():
        if name in table.masks:
            missing = int((~table.masks[name]).sum())
        elif hasattr(values, "isna"):  # a table of metadata: rows with any value missing
            missing = int(values.isna().any(axis=1).sum()) if values.ndim == 2 else int(values.isna().sum())
        else:
            missing = sum(_absent(v) for v in values)
        kind = f"vectors ({values.shape[1]}-d)" if is_features(values) else f"raw ({_item_kind(values)})"
        modalities[name] = {"kind": kind, "missing": missing}
    example = next((str(v) for name in ("text", *table.modalities) if name in table.modalities
                    and not is_features(table.modalities[name])
                    for v in table.modalities[name] if isinstance(v, str) and v), None)
    return {
        "dataset": dataset.name,
        "task": table.task,
        "n": len(table),
        "classes": list(table.classes),
        "splits": counts,
        "modalities": modalities,
        "groups": None if table.groups is None else int(len(set(np.asarray(table.groups).tolist()))),
        "skipped": {"n": len(table.skipped), "examples": dict(list(table.skipped.items())[:5])},
        "info": dataset.info(),
        "example_text": example,
    }


def _split_order(split: str) -> tuple[int, str]:
    return ({"train": 0, "val": 1, "test": 2}.get(split, 3), split)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _item_kind(values: Any) -> str:
    if hasattr(values, "columns"):
        return f"table rows: {', '.join(map(str, values.columns))}"
    first = next((v for v in values if not _absent(v)), None)
    return type(first).__name__ if first is not None else "all missing"
