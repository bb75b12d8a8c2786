"""``mmbench export``: one dataset x encoder combination as an embeddings table.

The table is the shape the source papers stored their vectors in (and what the
``embeddings_table`` dataset reads back): ``id``, ``label``, ``split`` (the split of the
chosen seed), then each modality's vector as ``<prefix>_0..<prefix>_{d-1}`` with prefix
``img_emb`` for image, ``text_emb`` for text and ``<modality>_emb`` otherwise. Modalities
that are vectors already (tabular features) are written as they are. Multilabel tasks
get one 0/1 column per label, ``label:<name>``, instead of ``label``.

The vectors come from the embedding cache through the run's own steps, so they are the
numbers a run of that seed trains on (before robustness, alignment and fill); what is
missing is extracted. Rows keep the dataset's order; columns, floats (float32) and the
atomic write make the file deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from mmbench.errors import UserError, did_you_mean
from mmbench.files import write_bytes_atomic, write_text_atomic
from mmbench.registry import Registry
from mmbench.suite import RunSpec, Suite, encoder_label

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: column prefixes of the modalities the papers' tables name; others are "<modality>_emb"
PREFIXES = {"image": "img_emb", "text": "text_emb"}
#: multilabel tasks: one 0/1 column per label, named "label:<name>"
LABEL_SEPARATOR = ":"


def column_prefix(modality: str) -> str:
    return PREFIXES.get(modality, f"{modality}_emb")


def choose(suite: Suite, dataset: str | None, encoder: str | None, seed: int | None) -> RunSpec:
    """The run whose embeddings to export: the dataset and encoder labels must name one
    combination of the suite (each may be omitted when the suite has only one)."""
    runs = suite.runs()
    datasets = list(dict.fromkeys(spec.dataset.label for spec in runs))
    dataset = _pick("--dataset", "dataset", dataset, datasets)
    runs = [spec for spec in runs if spec.dataset.label == dataset]
    encoders = list(dict.fromkeys(encoder_label(spec.encoders) for spec in runs))
    encoder = _pick("--encoder", f"encoder for dataset {dataset!r}", encoder, encoders)
    spec = next(spec for spec in runs if encoder_label(spec.encoders) == encoder)
    return replace(spec, seed=suite.seeds[0] if seed is None else seed, alignment=None, robustness=None)


def _pick(option: str, what: str, given: str | None, choices: list[str]) -> str:
    if given is None:
        if len(choices) == 1:
            return choices[0]
        raise UserError(f"the suite has {len(choices)} choices of {what}; pick one with {option}: "
                        + ", ".join(repr(c) for c in choices))
    if given not in choices:
        raise UserError(f"{option} {given!r}: no such {what} in the suite; {did_you_mean(given, choices)}")
    return given


def embeddings_frame(spec: RunSpec, registry: Registry,
                     on_items: Callable[[str, int, int], None] | None = None):
    """A pandas DataFrame of the spec's dataset: ids, labels, split and every modality's
    vectors, read from (or added to) the embedding cache."""
    import pandas as pd

    from mmbench.data import is_features
    from mmbench.run import encode_splits, encoder_objects, load_and_split, seed_everything

    seed_everything(spec)
    table, parts = load_and_split(spec, registry)
    dataset = {**spec.dataset.identity(), "fingerprint": spec.dataset_fingerprint}
    objects = encoder_objects(spec.encoders, registry, spec.device)
    features, _, _, _ = encode_splits(parts, spec.encoders, registry, dataset, objects=objects, on_items=on_items)
    position = {sample_id: i for i, sample_id in enumerate(table.ids)}
    rows = np.concatenate([[position[i] for i in part.ids] for part in parts.values()]).astype(np.int64)
    order = np.argsort(rows, kind="stable")  # back to the dataset's order
    split = np.concatenate([[name] * len(part) for name, part in parts.items()])[order]
    labels = np.concatenate([part.labels for part in parts.values()])[order]

    columns = {"id": table.ids[rows[order]]}
    if table.task == "multilabel":
        for j, name in enumerate(table.classes):
            columns[f"label{LABEL_SEPARATOR}{name}"] = labels[:, j].astype(np.int8)
    else:
        columns["label"] = np.asarray(table.classes, dtype=object)[labels]
    columns["split"] = split
    blocks = [pd.DataFrame(columns)]
    for modality in _modality_order(features["train"]):
        vectors = np.concatenate([features[name][modality] for name in parts])[order]
        if not is_features(vectors):
            raise UserError(f"modality {modality!r} is not a vector per sample; nothing to export")
        prefix = column_prefix(modality)
        blocks.append(pd.DataFrame(vectors.astype(np.float32),
                                   columns=[f"{prefix}_{i}" for i in range(vectors.shape[1])]))
    return pd.concat(blocks, axis=1)


def _modality_order(features: dict) -> list[str]:
    """Image, text, then the rest by name: the same columns for every run of a suite."""
    known = [m for m in PREFIXES if m in features]
    return known + sorted(m for m in features if m not in PREFIXES)


def table_format(out: Path) -> str:
    """"csv" or "parquet" by the file's suffix."""
    kind = FORMATS.get(Path(out).suffix.lower())
    if kind is None:
        raise UserError(f"--out {str(out)!r}: expected a file ending in "
                        + ", ".join(FORMATS) + " (CSV or Parquet)")
    return kind


def write_table(frame, out: Path) -> Path:
    """Write ``frame`` atomically as CSV or Parquet, chosen by the file's suffix."""
    import io

    if table_format(out) == "csv":
        return write_text_atomic(out, frame.to_csv(index=False, lineterminator="\n"))
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return write_bytes_atomic(out, buffer.getvalue())
