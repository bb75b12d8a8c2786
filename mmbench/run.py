"""One run of the grid: load, split, encode, align, fuse, measure, record.

``execute`` never raises because of the run itself: a failure becomes a result with
``status = "failed"`` and its error, so one bad configuration cannot sink a suite.
"""

from __future__ import annotations

import dataclasses
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from mmbench import memory, metrics, robustness
from mmbench.cache import EmbeddingCache, concat_encoded, entry_key, store_key
from mmbench.data import DataError, DatasetTable, Encoded, SplitData, TokenSequence, is_features
from mmbench.errors import UserError
from mmbench.fit_context import FitContext
from mmbench.legacy_fit import call_fit
from mmbench.gap import diagnostics
from mmbench.hashing import stable_hash
from mmbench.item_identity import addresses
from mmbench.plugin import Alignment, Encoder
from mmbench.registry import Registry
from mmbench.results import TEST_PREDICTIONS, run_record
from mmbench.splits import split_indices
from mmbench.suite import PluginConfig, RunSpec, modalities_to_encode
from mmbench.train_config import TrainConfig

EpochCallback = Callable[[int, int], None]
ItemsCallback = Callable[[str, int, int], None]

#: Datasets already loaded by this process, keyed by their identity (name, version, params:
#: a fingerprint leaves the root out, and a copy elsewhere holds other paths) and
#: fingerprint: a suite runs many configurations on one dataset, and loading is often the
#: slow part.
_loaded: dict[tuple[str, str], DatasetTable] = {}
_MAX_LOADED = 4


def execute(spec: RunSpec, registry: Registry, on_epoch: EpochCallback | None = None,
            on_items: ItemsCallback | None = None) -> dict[str, Any]:
    """Run one configuration and return its result record (ok or failed).

    ``on_epoch(done, total)`` follows training; ``on_items(what, done, total)`` follows
    embedding extraction (items encoded so far), so the console can show samples/s."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    memory.reset_peak()
    outcome: dict[str, Any] = {}
    error = None
    try:
        threads = seed_everything(spec)
        outcome = _pipeline(spec, registry, on_epoch, on_items)
    except Exception as exc:  # recorded, and the suite goes on
        threads = torch.get_num_threads()
        error = {"type": type(exc).__name__, "message": str(exc),
                 "traceback": None if isinstance(exc, UserError) else traceback.format_exc()}
    return run_record(spec, started=started, duration_s=time.perf_counter() - clock, threads=threads,
                      error=error, **outcome)


def seed_everything(spec: RunSpec) -> int:
    """Seed Python, numpy and torch with the run's seed and set its torch threads; returns
    the thread count in use (extract and export prepare data exactly as a run does)."""
    random.seed(spec.seed)
    np.random.seed(spec.seed)
    torch.manual_seed(spec.seed)
    if spec.threads:
        torch.set_num_threads(spec.threads)
    return torch.get_num_threads()


@dataclass
class Prepared:
    """A run's data up to the fusion: what ``mmbench gap`` inspects too."""

    table: DatasetTable
    splits: dict[str, SplitData]
    #: the train split as it was before the alignment (the same object when there is none)
    unaligned_train: SplitData
    extract_s: float
    alignment: Alignment | None
    gap: dict[str, Any]
    #: per encoded modality: whether the embedding cache served it and its extraction cost
    extraction: dict[str, Any] = field(default_factory=dict)
    #: the encoder objects per modality (one object for a paired model's two modalities)
    encoders: dict[str, Encoder] = field(default_factory=dict)
    #: every split as it was before the alignment (``mmbench gap --split``)
    unaligned: dict[str, SplitData] = field(default_factory=dict)


def prepare(spec: RunSpec, registry: Registry, on_items: ItemsCallback | None = None) -> Prepared:
    """Load, split, encode, corrupt (robustness), fit and apply the alignment, fill."""
    table, parts = load_and_split(spec, registry)
    parts = _without_unread(parts, spec, registry)
    dataset = {**spec.dataset.identity(), "fingerprint": spec.dataset_fingerprint}
    objects = encoder_objects({m: c for m, c in spec.encoders.items() if m in parts["train"].modalities},
                              registry, spec.device)
    features, sequences, extract_s, extraction = encode_splits(parts, spec.encoders, registry, dataset,
                                                           objects=objects, on_items=on_items)
    splits = {name: SplitData(part.ids, features[name], part.labels, table.task, table.classes,
                              masks=part.masks, sequences=sequences[name]) for name, part in parts.items()}
    if spec.robustness is not None:
        splits = robustness.corrupt(splits, spec.robustness, seed=spec.seed)

    unaligned = splits
    unaligned_train = splits["train"]
    gap = {"before": diagnostics(unaligned_train)}
    alignment = None
    if spec.alignment is not None:
        alignment = _instance(registry, spec.alignment)
        alignment.fit(splits["train"])
        splits = {name: alignment.transform(data) for name, data in splits.items()}
        gap["after"] = diagnostics(splits["train"])
    # after the alignment, so a train-mean fill matches the aligned rows it stands in for
    splits = robustness.fill(splits, (spec.robustness or robustness.DEFAULTS)["fill"])
    return Prepared(table, splits, unaligned_train, extract_s, alignment, gap, extraction, objects, unaligned)


def prepare_raw(spec: RunSpec, registry: Registry) -> Prepared:
    """Load and split for a fusion that trains the encoders itself: modalities that are
    already vectors go in ``features``, the others stay raw items in ``SplitData.raw``;
    nothing is extracted or cached (the fusion's own forward passes are its training cost)."""
    if spec.robustness is not None:
        raise UserError(f"fusion {spec.fusion.name!r} trains on raw inputs, and the [robustness] axis "
                        "corrupts embeddings; run it in a suite without [robustness]")
    if spec.alignment is not None and not registry.get("alignment", spec.alignment.name).cls.identity:
        raise UserError(f"fusion {spec.fusion.name!r} trains on raw inputs, so alignment "
                        f"{spec.alignment.label!r} (which changes embeddings) cannot apply; run it "
                        "without [[alignments]] or with the alignment that changes nothing")
    table, parts = load_and_split(spec, registry)
    objects = encoder_objects(spec.encoders, registry, spec.device)
    splits = {}
    for name, part in parts.items():
        features = {m: v for m, v in part.modalities.items() if is_features(v)}
        raw = {m: v for m, v in part.modalities.items() if not is_features(v)}
        for modality in raw:
            if modality not in objects:
                raise UserError(f"modality {modality!r} holds raw items; add an [[encoders]] entry that "
                                f"encodes {modality!r}, whose backbone fusion {spec.fusion.name!r} trains")
        splits[name] = SplitData(part.ids, features, part.labels, table.task, table.classes,
                                 masks=part.masks, sequences=part.sequences, raw=raw)
    return Prepared(table, splits, splits["train"], 0.0, None, {}, {}, objects)


def load_and_split(spec: RunSpec, registry: Registry) -> tuple[DatasetTable, dict[str, DatasetTable]]:
    """The dataset (loaded once per process) and its train / val / test parts for this run."""
    table = _load(spec.dataset, spec.dataset_fingerprint, registry)
    split_seed = spec.seed if spec.split["seed"] < 0 else spec.split["seed"]
    rows = split_indices(table, spec.split["val"], spec.split["test"], split_seed)
    return table, {name: table.subset(index) for name, index in rows.items()}


def _without_unread(parts: dict[str, DatasetTable], spec: RunSpec, registry: Registry
                    ) -> dict[str, DatasetTable]:
    """The parts without the raw modalities the run does not encode (``modalities_to_encode``):
    they are neither encoded nor handed on. A fusion naming a modality the dataset lacks
    keeps everything, so it reports that itself."""
    raw = [m for m, values in parts["train"].modalities.items() if not is_features(values)]
    unread = set(raw) - set(modalities_to_encode(spec, registry, raw))
    if unread == set(parts["train"].modalities):
        return parts
    return keep_modalities(parts, set(parts["train"].modalities) - unread)


def keep_modalities(parts: dict[str, DatasetTable], keep: set[str]) -> dict[str, DatasetTable]:
    """The parts with only the modalities in ``keep`` (their masks and token sequences too)."""
    if keep >= set(parts["train"].modalities):
        return parts
    return {name: dataclasses.replace(
                part, modalities={m: v for m, v in part.modalities.items() if m in keep},
                masks={m: v for m, v in part.masks.items() if m in keep},
                sequences={m: v for m, v in part.sequences.items() if m in keep})
            for name, part in parts.items()}


def encoder_objects(encoders: dict[str, PluginConfig], registry: Registry, device: str = "cpu"
                    ) -> dict[str, Encoder]:
    """An encoder object per modality, one per suite entry (a paired model such as CLIP
    encodes two modalities with one object, so it loads once), set to run on ``device``."""
    made: dict[int, Encoder] = {}
    for config in encoders.values():
        if id(config) not in made:
            made[id(config)] = _instance(registry, config)
            made[id(config)].device = device
    return {modality: made[id(config)] for modality, config in encoders.items()}


def _pipeline(spec: RunSpec, registry: Registry, on_epoch: EpochCallback | None,
              on_items: ItemsCallback | None) -> dict[str, Any]:
    fusion = _instance(registry, spec.fusion)
    fusion.device = spec.device
    raw = fusion.consumes == "raw"
    prepared = prepare_raw(spec, registry) if raw else prepare(spec, registry, on_items)
    table, splits = prepared.table, prepared.splits
    regulariser = prepared.alignment.branch_loss() if prepared.alignment is not None else None
    if regulariser is not None and not fusion.exposes_branches:
        raise UserError(
            f"alignment {spec.alignment.label!r} adds a loss on per-modality branch outputs, "
            f"which fusion {spec.fusion.name!r} does not expose; set its weight to 0 or pair "
            "it with a fusion that has branches (e.g. late_joint)"
        )
    ctx = FitContext(on_epoch=on_epoch, encoders=prepared.encoders if raw or fusion.uses_encoders else {},
                     branch_loss=regulariser, device=spec.device)

    config = TrainConfig.from_params(spec.fusion.train, seed=spec.seed)
    started = time.perf_counter()
    report = call_fit(fusion, splits["train"], splits["val"], config, ctx)
    fit_s = time.perf_counter() - started

    test = splits["test"]
    started = time.perf_counter()
    proba = np.asarray(fusion.predict_proba(test))
    infer_s = time.perf_counter() - started
    _check_proba(proba, test, spec.fusion.name)

    n_samples = len(table)
    # a fusion that does not train by epochs reports no time of its own: use the fit's
    train_s = report.train_s_total or fit_s
    measured = {
        **metrics.quality(test.labels, proba, test.task),
        "best_epoch": report.best_epoch,
        "epochs_run": report.epochs_run,
        # 1.0 when early stopping never triggered (the cap decided), None without early stopping
        "hit_epoch_cap": None if report.hit_epoch_cap is None else float(report.hit_epoch_cap),
        "train_s_per_epoch": train_s / report.epochs_run if report.epochs_run else None,
        "train_s_total": train_s,
        "infer_s_test_pass": infer_s,
        "infer_s_per_sample": infer_s / max(len(test), 1),
        "extract_s_per_sample": prepared.extract_s / n_samples,
        "model_mb": report.model_mb,
        "data_mb_per_epoch": report.data_mb_per_epoch,
        "peak_rss_mb": memory.peak_rss_mb(),
    }
    return {
        "metrics": measured,
        "warnings": metrics.split_warnings(test.labels, test.task, table.classes),
        "history": report.history,
        "fit_info": report.info,
        "data": {
            "task": table.task,
            "classes": list(table.classes),
            "n": {name: len(data) for name, data in splits.items()},
            "dims": {m: int(x.shape[1]) for m, x in sorted(splits["train"].features.items())},
            "missing": {name: {m: int((~data.present(m)).sum()) for m in sorted({*data.features, *data.raw})}
                        for name, data in splits.items()},
            "skipped": {"n": len(table.skipped), "examples": dict(list(table.skipped.items())[:5])},
        },
        "gap": prepared.gap,
        "extraction": prepared.extraction,
        # per-sample, for the leaderboard's bootstrap intervals; write_result moves them to a sidecar
        TEST_PREDICTIONS: {"ids": test.ids, "labels": test.labels, "proba": proba},
    }


def _load(config: PluginConfig, fingerprint: str, registry: Registry) -> DatasetTable:
    key = (stable_hash(config.identity()), fingerprint)
    if key not in _loaded:
        if len(_loaded) >= _MAX_LOADED:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = _instance(registry, config).load()
    return _loaded[key]


def _instance(registry: Registry, config: PluginConfig):
    return registry.get(config.kind, config.name).cls(**config.params)


def encode_splits(parts: dict[str, DatasetTable], encoders: dict[str, PluginConfig], registry: Registry,
              dataset: dict[str, Any] | None = None, cache: EmbeddingCache | None = None, *,
              objects: dict[str, Encoder] | None = None, on_items: ItemsCallback | None = None
              ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, TokenSequence]], float,
                         dict[str, Any]]:
    """Features (and token sequences) per split and modality; raw modalities go through
    their encoder (see ``_encode``). ``dataset`` is the dataset's identity and fingerprint;
    without it nothing is cached. ``objects`` are the encoder objects (made here when not
    given). Also returns the seconds spent extracting in this call (0 when everything was
    cached) and the extraction record per encoded modality."""
    if dataset is not None and cache is None:
        cache = EmbeddingCache()
    features: dict[str, dict[str, np.ndarray]] = {name: {} for name in parts}
    sequences: dict[str, dict[str, TokenSequence]] = {name: dict(part.sequences) for name, part in parts.items()}
    if objects is None:
        objects = encoder_objects(encoders, registry)
    extraction: dict[str, Any] = {}
    extract_s = 0.0
    for modality, values in parts["train"].modalities.items():
        if is_features(values):
            for name, part in parts.items():
                features[name][modality] = part.modalities[modality]
            continue
        config = encoders.get(modality)
        if config is None:
            raise UserError(
                f"modality {modality!r} holds raw items (not vectors); add an [[encoders]] "
                f"entry that encodes {modality!r} to the suite"
            )
        encoded, seconds, extraction[modality] = _encode(modality, config, objects[modality], parts,
                                                         dataset, cache, on_items)
        extract_s += seconds
        for name, output in encoded.items():
            features[name][modality] = output.vectors
            if output.tokens is not None:
                sequences[name][modality] = output.tokens
    return features, sequences, extract_s, extraction


def _encode(modality: str, config: PluginConfig, encoder: Encoder, parts: dict[str, DatasetTable],
            dataset: dict[str, Any] | None, cache: EmbeddingCache | None,
            on_items: ItemsCallback | None = None) -> tuple[dict[str, Encoded], float, dict[str, Any]]:
    """Encode one modality of every split, each split looked up in the cache first; the
    encoder is fitted (on train only) and run only when some split misses.

    Returns the encoded splits, the seconds spent now, and the record: ``cached`` (every
    split came from the cache) and ``s_per_sample``, the cost measured now or, for cached
    splits, the one stored when they were computed."""
    identity = {"name": config.name, "version": config.version, "fingerprint": encoder.fingerprint()}
    if cache is not None and not encoder.fitted:
        return _encode_through_store(modality, config, encoder, parts, cache, on_items,
                                     store_key(dataset=dataset, modality=modality, encoder=identity),
                                     {"modality": modality, "encoder": identity, "fitted": False,
                                      "dataset": {"name": dataset.get("name")}})
    keys: dict[str, str | None] = {name: None for name in parts}
    hits: dict[str, Any] = {name: None for name in parts}
    if cache is not None:
        train_ids = parts["train"].ids if encoder.fitted else None
        for name, part in parts.items():
            keys[name] = entry_key(dataset=dataset, ids=part.ids, modality=modality, encoder=identity,
                                   train_ids=train_ids)
            hits[name] = cache.get(keys[name])
    missing = [name for name in parts if hits[name] is None]
    fit_s = 0.0
    if missing:
        started = time.perf_counter()
        encoder.fit(modality, parts["train"].modalities[modality])
        fit_s = time.perf_counter() - started
    n_missing = sum(len(parts[name]) for name in missing)
    progress = _ItemsProgress(f"extracting {modality} ({config.name})", n_missing, on_items)
    encoder.on_items = progress.advance

    encoded: dict[str, Encoded] = {}
    spent, original_s = 0.0, 0.0
    for name, part in parts.items():
        hit = hits[name]
        if hit is not None:
            encoded[name], seconds = hit.encoded, hit.s_per_sample * len(part)
        else:
            started = time.perf_counter()
            encoded[name] = _as_encoded(encoder.encode(modality, part.modalities[modality]), config.name)
            progress.finish_part(len(part))
            # the fit is part of the cost of what it was needed for
            seconds = time.perf_counter() - started + fit_s * len(part) / n_missing
            spent += seconds
        if len(encoded[name].vectors) != len(part):
            raise ValueError(f"encoder {config.name!r} returned {len(encoded[name].vectors)} vectors for "
                             f"{len(part)} {modality} items")
        if hit is None and cache is not None:
            cache.put(keys[name], encoded[name], seconds / max(len(part), 1), {
                "modality": modality, "n": len(part), "encoder": identity, "fitted": encoder.fitted,
                "dataset": {"name": dataset.get("name"), "fingerprint": dataset.get("fingerprint")},
            })
        original_s += seconds
    encoder.on_items = None
    n_encoded = sum(len(parts[name]) for name in missing)
    record = {
        "encoder": config.name,
        "cached": not missing,
        "layout": "splits",
        "rows_cached": sum(len(part) for part in parts.values()) - n_encoded,
        "rows_encoded": n_encoded,
        "extract_s": spent,
        "s_per_sample": original_s / max(sum(len(part) for part in parts.values()), 1),
        "splits": {name: {"cached": hits[name] is not None, "key": keys[name]} for name in parts},
    }
    return encoded, spent, record


def _encode_through_store(modality: str, config: PluginConfig, encoder: Encoder, parts: dict[str, DatasetTable],
                          cache: EmbeddingCache, on_items: ItemsCallback | None, key: str, meta: dict[str, Any]
                          ) -> tuple[dict[str, Encoded], float, dict[str, Any]]:
    """``_encode`` for an encoder that is not fitted: every split's rows come from the
    dataset's sample store (``EmbeddingCache.gather``, rows addressed by sample id and item
    digest: ``item_identity.addresses``); only the rows it lacks are encoded,
    split by split as without a store, and appended to it as one chunk. The record's
    ``s_per_sample`` is the cost measured when each row was encoded."""
    names = list(parts)
    addressed = np.concatenate([addresses(parts[name].ids, parts[name].modalities[modality]) for name in names])
    bounds = np.cumsum([0] + [len(parts[name]) for name in names])
    stored = cache.gather(key, addressed)
    missing = {name: np.flatnonzero(~stored.found[bounds[i]:bounds[i + 1]]) for i, name in enumerate(names)}
    n_missing = sum(len(rows) for rows in missing.values())
    spent = 0.0
    fresh: list[tuple[np.ndarray, Encoded]] = []  # (positions in addressed, rows encoded now)
    if n_missing:
        started = time.perf_counter()
        encoder.fit(modality, parts["train"].modalities[modality])
        spent = time.perf_counter() - started
        progress = _ItemsProgress(f"extracting {modality} ({config.name})", n_missing, on_items)
        encoder.on_items = progress.advance
        for i, name in enumerate(names):
            if not len(missing[name]):
                continue
            started = time.perf_counter()
            output = _as_encoded(encoder.encode(modality, parts[name].subset(missing[name]).modalities[modality]),
                                 config.name)
            spent += time.perf_counter() - started
            progress.finish_part(len(missing[name]))
            if len(output.vectors) != len(missing[name]):
                raise ValueError(f"encoder {config.name!r} returned {len(output.vectors)} vectors for "
                                 f"{len(missing[name])} {modality} items")
            fresh.append((bounds[i] + missing[name], output))
        encoder.on_items = None
        new_positions = np.concatenate([positions for positions, _ in fresh])
        new_rows = concat_encoded([output for _, output in fresh])
        cache.append(key, addressed[new_positions], new_rows, spent / n_missing, meta)
    pieces = ([stored.encoded] if stored.encoded is not None else []) + [output for _, output in fresh]
    positions = np.concatenate([np.flatnonzero(stored.found)] + [p for p, _ in fresh])
    everything = concat_encoded(pieces, np.argsort(positions, kind="stable"))
    costs = np.concatenate([stored.s_per_sample, np.full(n_missing, spent / max(n_missing, 1))])
    encoded = {name: Encoded(everything.vectors[bounds[i]:bounds[i + 1]],
                             None if everything.tokens is None else
                             everything.tokens.take(np.arange(bounds[i], bounds[i + 1])))
               for i, name in enumerate(names)}
    record = {
        "encoder": config.name,
        "cached": not n_missing,
        "layout": "samples",
        "rows_cached": int(stored.found.sum()),
        "rows_encoded": n_missing,
        "extract_s": spent,
        "s_per_sample": float(costs.mean()) if len(costs) else 0.0,
        "splits": {name: {"cached": not len(missing[name]), "key": key} for name in names},
    }
    return encoded, spent, record


class _ItemsProgress:
    """Counts the items an encoder reports (``Encoder.advance``) for the console; an
    encoder that reports nothing is shown done part by part."""

    def __init__(self, what: str, total: int, callback: ItemsCallback | None):
        self.what, self.total, self.callback = what, total, callback
        self.done = self.parts_done = 0

    def advance(self, n: int) -> None:
        self.done = min(self.done + n, self.total)
        if self.callback is not None:
            self.callback(self.what, self.done, self.total)

    def finish_part(self, n: int) -> None:
        self.parts_done += n
        if self.done < self.parts_done:
            self.advance(self.parts_done - self.done)


def _as_encoded(output: Any, encoder: str) -> Encoded:
    try:
        return output if isinstance(output, Encoded) else Encoded(np.asarray(output))
    except DataError as exc:
        raise ValueError(f"encoder {encoder!r}: {exc}") from None


def _check_proba(proba: np.ndarray, data: SplitData, fusion: str) -> None:
    expected = (len(data),) if data.task == "binary" else (len(data), len(data.classes))
    if proba.shape != expected:
        raise ValueError(f"fusion {fusion!r} returned probabilities of shape {proba.shape}; "
                         f"expected {expected} for a {data.task} task")
    if not np.all(np.isfinite(proba)):
        raise ValueError(f"fusion {fusion!r} returned non-finite probabilities")
