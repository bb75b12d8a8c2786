"""The conformance kit for plugins, like scikit-learn's ``check_estimator``.

``check_plugin(cls)`` runs a plugin class through the contract its kind and its
declarations promise, on small generated data, and raises ``PluginCheckError`` naming
every check that failed:

- every kind: the declarations the registry checks (parameters, task kinds, capabilities,
  the methods it must define), and construction with its ``example_params``;
- fusion: for every task kind it declares, it fits and predicts probabilities of the right
  shape, finite, in [0, 1], rows summing to one for multiclass; the same predictions after
  fitting again under the same seed; finite predictions with absent modalities when it
  declares ``handles_missing``;
- dataset: loads, ids unique, task as declared, modalities as declared, the same table
  twice, groups never split across train / val / test, official splits kept;
- encoder: for each modality it declares, one finite vector per item (a missing item
  included), the same vectors twice;
- alignment: keeps ids, labels and shapes, never changes its input, and transforming one
  split does not change what another gives (it was fitted on train only);
- reporter: writes the files it returns, inside the folder it was given.

A check that cannot run here (a dataset that needs a data root, an encoder whose model
files are not installed: a ``UserError`` or ``OSError`` from the plugin's own loading) is
reported as skipped, with the reason. ``run_checks`` returns every result instead of
raising; ``mmbench plugins --check`` prints them.

``make_table`` and ``make_splits`` build a ``DatasetTable`` / ``SplitData`` for a plugin's
own unit tests; ``run_in_suite`` runs a plugin end to end through ``mmbench run``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.data import TASK_KINDS, DatasetTable, Encoded, SplitData, TokenSequence, is_features
from mmbench.errors import UserError
from mmbench.fit_context import FitContext
from mmbench.legacy_fit import call_fit
from mmbench.plugin import PLUGIN_BASES, Alignment, Dataset, Encoder, Fusion, Plugin, Reporter

#: modalities of generated data when a plugin declares none
DEFAULT_MODALITIES = ("image", "text")
#: classes (or labels) of generated multiclass and multilabel data
N_CLASSES = 3


@dataclass(frozen=True)
class CheckResult:
    """One check of one plugin: ``status`` is "passed", "failed" or "skipped"."""

    plugin: str
    check: str
    status: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.status}: {self.plugin}: {self.check}" + (f": {self.message}" if self.message else "")


class PluginCheckError(AssertionError):
    """Raised by ``check_plugin``: lists every failed check."""

    def __init__(self, failures: list[CheckResult]):
        self.failures = failures
        super().__init__("\n".join(str(f) for f in failures))


class _Skip(Exception):
    """A check that cannot run here (no data root, no model files)."""


def check_plugin(cls: type[Plugin], params: dict[str, Any] | None = None) -> list[CheckResult]:
    """Run every check for ``cls`` (with ``params``, default: its ``example_params``);
    raise ``PluginCheckError`` listing the failures, else return the results."""
    results = run_checks(cls, params)
    failures = [r for r in results if r.status == "failed"]
    if failures:
        raise PluginCheckError(failures)
    return results


def run_checks(cls: type[Plugin], params: dict[str, Any] | None = None) -> list[CheckResult]:
    """Every check for ``cls``, each passed, failed or skipped; never raises for the plugin's faults."""
    from mmbench.registry import contract_problem

    kind = kind_of(cls)
    label = f"{kind} {getattr(cls, 'name', cls.__name__)!r}"
    problem = contract_problem(cls, kind)
    if problem:
        return [CheckResult(label, "declarations", "failed", problem)]
    given = dict(cls.example_params if params is None else params)
    results = [CheckResult(label, "declarations", "passed")]
    for name, check in _CHECKS[kind](cls, given):
        results.append(_run(label, name, check))
    return results


def kind_of(cls: type) -> str:
    """The plugin kind of a class ("fusion", ...); TypeError for anything else."""
    for kind, base in PLUGIN_BASES.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise TypeError(f"{cls!r} is not a subclass of a mmbench plugin base class ({', '.join(PLUGIN_BASES)})")


def _run(label: str, name: str, check: Callable[[], None]) -> CheckResult:
    try:
        check()
    except _Skip as exc:
        return CheckResult(label, name, "skipped", str(exc))
    except AssertionError as exc:
        return CheckResult(label, name, "failed", str(exc) or "assertion failed")
    except Exception as exc:  # the plugin raised: that is the finding
        return CheckResult(label, name, "failed", f"raised {type(exc).__name__}: {exc}")
    return CheckResult(label, name, "passed")


# --- generated data -------------------------------------------------------------------

def make_table(task: str = "binary", modalities: dict[str, int] | Sequence[str] = DEFAULT_MODALITIES, *,
               n: int = 90, n_classes: int = N_CLASSES, missing: float = 0.0, groups: bool = False,
               sequences: Sequence[str] = (), raw: Sequence[str] = (), seed: int = 0) -> DatasetTable:
    """A small ``DatasetTable`` whose label every modality carries some signal of.

    ``modalities``: names (8 features each) or {name: dimension}. ``missing``: the fraction of
    samples that lack each modality after the first (a mask, zero rows). ``groups``: every 3
    consecutive samples share a group id. ``sequences``: modalities that also get token
    vectors (T = 4). ``raw``: modalities given as raw items instead of vectors: text
    ("cat ..." / "dog ..." strings; None when missing).
    """
    if task not in TASK_KINDS:
        raise ValueError(f"task must be one of {TASK_KINDS}, got {task!r}")
    dims = dict(modalities) if isinstance(modalities, dict) else {m: 8 for m in modalities}
    rng = np.random.default_rng(seed)
    classes = ("negative", "positive") if task == "binary" else tuple(f"class{i}" for i in range(n_classes))
    if task == "multilabel":
        labels = (rng.random((n, n_classes)) < 0.4).astype(np.int64)
        labels[np.arange(n), rng.integers(0, n_classes, n)] = 1  # every sample has a label
        signal = labels.astype(np.float64)
    else:
        labels = np.arange(n) % len(classes)
        rng.shuffle(labels)
        signal = np.eye(len(classes))[labels]
    values: dict[str, Any] = {}
    for modality, dim in dims.items():
        centres = rng.standard_normal((signal.shape[1], dim))
        values[modality] = (signal @ centres + 0.5 * rng.standard_normal((n, dim))).astype(np.float32)
    masks = {}
    for modality in list(dims)[1:] if missing > 0 else []:
        present = rng.random(n) >= missing
        present[:2] = True
        masks[modality] = present
        values[modality][~present] = 0.0
    tokens = {}
    for modality in sequences:
        base = values[modality][:, None, :] + 0.3 * rng.standard_normal((n, 4, dims[modality]))
        mask = np.ones((n, 4), dtype=bool)
        mask[:, 3] = rng.random(n) < 0.5
        tokens[modality] = TokenSequence(base, mask)
    for modality in raw:
        rows = labels if task == "multilabel" else np.eye(len(classes), dtype=int)[labels]
        words = [" ".join(c for c, on in zip(classes, row) if on) + " item" for row in rows]
        present = masks.get(modality, np.ones(n, dtype=bool))
        values[modality] = [w if p else None for w, p in zip(words, present)]
    return DatasetTable(ids=np.array([f"s{i:04d}" for i in range(n)]), labels=labels, task=task, classes=classes,
                        modalities=values, groups=np.array([f"g{i // 3:04d}" for i in range(n)]) if groups else None,
                        masks=masks, sequences=tokens)


def make_splits(task: str = "binary", modalities: dict[str, int] | Sequence[str] = DEFAULT_MODALITIES, *,
                seed: int = 0, **table: Any) -> dict[str, SplitData]:
    """``make_table(...)`` split 60/20/20 into {"train", "val", "test"} ``SplitData``, as a
    fusion or alignment receives it (raw modalities go to ``SplitData.raw``)."""
    data = make_table(task, modalities, seed=seed, **table)
    n = len(data)
    order = np.random.default_rng(seed + 1).permutation(n)
    bounds = {"train": order[: int(n * 0.6)], "val": order[int(n * 0.6): int(n * 0.8)], "test": order[int(n * 0.8):]}
    splits = {}
    for name, index in bounds.items():
        part = data.subset(np.sort(index))
        features = {m: v for m, v in part.modalities.items() if is_features(v)}
        raw = {m: v for m, v in part.modalities.items() if not is_features(v)}
        splits[name] = SplitData(part.ids, features, part.labels, part.task, part.classes, masks=part.masks,
                                 sequences=part.sequences, raw=raw)
    return splits


def seed_all(seed: int) -> None:
    """Seed Python, numpy and torch (when imported) as a run does."""
    random.seed(seed)
    np.random.seed(seed)
    import torch

    torch.manual_seed(seed)


# --- fusions ----------------------------------------------------------------------------

def _fusion_checks(cls: type[Fusion], params: dict[str, Any]) -> Iterator[tuple[str, Callable[[], None]]]:
    first: dict[str, np.ndarray] = {}  # task -> predictions of the first fit, compared with a second

    def predicts(task: str, missing: float = 0.0) -> None:
        proba, test = _fit_predict(cls, params, task, missing)
        if not missing:
            first[task] = proba
        check_probabilities(proba, test)

    def deterministic(task: str) -> None:
        one = first[task] if task in first else _fit_predict(cls, params, task)[0]
        two = _fit_predict(cls, params, task)[0]
        assert one.shape == two.shape and np.allclose(one, two, atol=1e-5), (
            f"two fits under seed 0 predict differently (largest difference "
            f"{np.max(np.abs(one - two)) if one.shape == two.shape else 'shape'}); seed every source of "
            "randomness from config.seed or the global seeds")

    for task in cls.task_kinds:
        yield f"{task}: fits and predicts probabilities", lambda task=task: predicts(task)
        yield f"{task}: deterministic under a seed", lambda task=task: deterministic(task)
        if cls.handles_missing:
            yield f"{task}: predicts with absent modalities", lambda task=task: predicts(task, missing=0.4)


def _fusion_data(cls: type[Fusion], task: str, missing: float = 0.0) -> tuple[dict[str, SplitData], FitContext]:
    modalities = tuple(cls.modalities) or DEFAULT_MODALITIES
    raw = cls.consumes == "raw"
    splits = make_splits(task, modalities, missing=missing, sequences=modalities[-1:],
                         raw=("text",) if raw and "text" in modalities else ())
    encoders: dict[str, Encoder] = {}
    if raw:
        encoders = {m: _CharCounts() for m in splits["train"].raw}
    elif cls.uses_encoders:
        paired = _PairedToy()
        encoders = {m: paired for m in modalities}
    return splits, FitContext(encoders=encoders)


def _fit_predict(cls: type[Fusion], params: dict[str, Any], task: str, missing: float = 0.0) -> tuple[np.ndarray, SplitData]:
    from mmbench.train_config import TrainConfig

    splits, ctx = _fusion_data(cls, task, missing)
    config = TrainConfig.from_params({**cls.train_defaults, "epochs": 2, "patience": 0, "batch_size": 16}, seed=0)
    seed_all(0)
    fusion = cls(**params)
    report = call_fit(fusion, splits["train"], splits["val"], config, ctx)
    assert report is not None and hasattr(report, "epochs_run"), f"fit returned {report!r}, not a FitReport"
    return np.asarray(fusion.predict_proba(splits["test"])), splits["test"]


def check_probabilities(proba: Any, data: SplitData) -> None:
    """Assert ``proba`` is what ``predict_proba`` must return for ``data``: (n,) for binary,
    (n, C) rows summing to 1 for multiclass, (n, L) for multilabel; finite, in [0, 1]."""
    proba = np.asarray(proba)
    expected = (len(data),) if data.task == "binary" else (len(data), len(data.classes))
    assert proba.shape == expected, f"predict_proba returned shape {proba.shape}; expected {expected} for {data.task}"
    assert np.all(np.isfinite(proba)), "predict_proba returned non-finite values"
    assert proba.min() >= -1e-6 and proba.max() <= 1 + 1e-6, (
        f"predict_proba returned values outside [0, 1] ({proba.min():.3g} .. {proba.max():.3g}): logits, not probabilities?")
    if data.task == "multiclass":
        sums = proba.sum(axis=1)
        assert np.allclose(sums, 1.0, atol=1e-4), f"multiclass rows must sum to 1, got sums {sums.min():.4g} .. {sums.max():.4g}"


class _PairedToy(Encoder):
    """A stand-in paired image+text model for fusions with ``uses_encoders``: text vectors
    are a fixed function of the text, in the generated features' 8 dimensions."""

    name = "kit_paired"
    modalities = ("image", "text")
    shared_space = True

    def encode(self, modality: str, items: Any) -> np.ndarray:
        return np.stack([_text_vector(item, 8) for item in items])

    def logit_scale(self) -> float:
        return 10.0


class _CharCounts(Encoder):
    """A stand-in text encoder with a trainable backbone, for ``consumes = "raw"`` fusions."""

    name = "kit_chars"
    modalities = ("text",)

    def encode(self, modality: str, items: Any) -> np.ndarray:
        return _char_counts(items)

    def trainable(self, modality: str) -> Any:
        import torch

        from mmbench.trainable import TrainableEncoder

        return TrainableEncoder(module=torch.nn.Linear(26, 8), dim=8,
                                prepare=lambda items, augment: torch.from_numpy(_char_counts(items)))


def _char_counts(items: Sequence[Any]) -> np.ndarray:
    out = np.zeros((len(items), 26), dtype=np.float32)
    for i, text in enumerate(items):
        for ch in (text or "").lower():
            if "a" <= ch <= "z":
                out[i, ord(ch) - 97] += 1
    return out


def _text_vector(text: Any, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(str(text).encode()).digest()[:4], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


# --- datasets ---------------------------------------------------------------------------

def _dataset_checks(cls: type[Dataset], params: dict[str, Any]) -> Iterator[tuple[str, Callable[[], None]]]:
    loaded: list[DatasetTable] = []

    def load() -> None:
        dataset = _construct(cls, params)
        table = dataset.load()
        assert isinstance(table, DatasetTable), f"load() returned {type(table).__name__}, not a DatasetTable"
        assert len(np.unique(table.ids)) == len(table), "sample ids are not unique"
        assert table.task == dataset.task_kind(), f"task_kind() says {dataset.task_kind()!r}, load() gave {table.task!r}"
        assert table.task in cls.task_kinds, f"loaded a {table.task} task, not one of task_kinds {cls.task_kinds}"
        if cls.modalities:
            extra = set(table.modalities) - set(cls.modalities)
            assert not extra, f"loaded modalities {sorted(extra)} it does not declare ({cls.modalities})"
        declared_raw = dataset.raw_modalities()
        if declared_raw is not None:
            raw = {m for m, v in table.modalities.items() if not is_features(v)}
            assert raw == set(declared_raw), f"raw_modalities() says {sorted(declared_raw)}, the table has {sorted(raw)}"
        loaded.append(table)

    def same_twice() -> None:
        first = _needs(loaded)
        dataset = _construct(cls, params)
        again = dataset.load()
        assert np.array_equal(first.ids, again.ids) and np.array_equal(first.labels, again.labels), \
            "loading twice gave different ids or labels"
        assert dataset.fingerprint() == _construct(cls, params).fingerprint(), "fingerprint() differs between two instances"

    def splits_consistent() -> None:
        from mmbench.splits import split_indices

        table = _needs(loaded)
        for seed in (0, 1):
            rows = split_indices(table, 0.2, 0.2, seed)
            where = np.full(len(table), "", dtype=object)
            for name, index in rows.items():
                assert not np.any(where[index] != ""), "a sample is in two splits"
                where[index] = name
            if table.groups is not None:
                groups = np.asarray(table.groups)
                for group in np.unique(groups):
                    assert len(set(where[groups == group])) == 1, f"group {group!r} is split across {set(where[groups == group])}"
            if table.split is not None:
                for official in ("train", "test"):
                    kept = where[table.split == official]
                    assert np.all(kept == official) or official == "train" and set(kept) <= {"train", "val"}, \
                        f"official {official} samples ended in {sorted(set(kept))}"

    yield "loads a well-formed table", load
    yield "the same table twice", same_twice
    yield "groups and official splits stay consistent", splits_consistent


def _needs(loaded: list[DatasetTable]) -> DatasetTable:
    if not loaded:
        raise _Skip("needs a table that loads")
    return loaded[0]


def _construct(cls: type[Plugin], params: dict[str, Any]) -> Any:
    """An instance, or a skip when it needs what is not here (a data root, model files)."""
    try:
        return cls(**params)
    except UserError as exc:
        raise _Skip(f"cannot be built with {params or 'its defaults'}: {exc}") from None


# --- encoders ---------------------------------------------------------------------------

def _encoder_checks(cls: type[Encoder], params: dict[str, Any]) -> Iterator[tuple[str, Callable[[], None]]]:
    for modality in tuple(cls.modalities) or ("text",):
        yield f"{modality}: one finite vector per item, the same twice", lambda m=modality: _encoder_vectors(
            cls, params, m)


def raw_items(modality: str, n: int, folder: Path) -> list[Any]:
    """Raw items of ``modality`` as datasets hand them to encoders, the last one missing:
    text: a str (None when missing); image: a path (str) to an RGB PNG file written into
    ``folder`` (None when missing); tabular: one dict per row, column -> a number, a string
    or None (a missing row: every value None)."""
    rng = np.random.default_rng(0)
    if modality == "image":
        from PIL import Image

        items: list[Any] = []
        for i in range(n - 1):
            path = folder / f"item{i}.png"
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(path)
            items.append(str(path))
    elif modality == "tabular":
        items = [{"age": float(20 + i), "sex": "f" if i % 2 else "m", "score": None if i == 1 else float(i)}
                 for i in range(n - 1)]
        return [*items, {"age": None, "sex": None, "score": None}]
    else:
        items = [f"a {word} photo of item {i}" for i, word in zip(range(n - 1), ["cat", "dog", "red", "big", "new"] * n)]
    return [*items, None]


def _encoder_vectors(cls: type[Encoder], params: dict[str, Any], modality: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mmbench-check-") as folder:
        items = raw_items(modality, 6, Path(folder))
        encoder = _construct(cls, params)
        try:
            encoder.fit(modality, items[:4])
            first = encoder.encode(modality, items)
        except (UserError, OSError) as exc:
            raise _Skip(f"cannot load here (model files or data missing?): {exc}") from None
        second = encoder.encode(modality, items)
    vectors = [np.asarray(out.vectors if isinstance(out, Encoded) else out) for out in (first, second)]
    assert vectors[0].ndim == 2 and vectors[0].shape[0] == len(items), (
        f"encode returned shape {vectors[0].shape} for {len(items)} items; expected (n, dim)")
    assert vectors[0].shape[1] > 0 and np.issubdtype(vectors[0].dtype, np.number), "vectors must be numbers, dim > 0"
    assert np.all(np.isfinite(vectors[0])), "non-finite vectors (a missing item must give a finite row, e.g. zeros)"
    assert np.allclose(vectors[0], vectors[1], atol=1e-5), "encoding the same items twice gave different vectors"


# --- alignments -------------------------------------------------------------------------

def _alignment_checks(cls: type[Alignment], params: dict[str, Any]) -> Iterator[tuple[str, Callable[[], None]]]:
    for task in ("binary", "multiclass"):
        yield f"{task}: keeps shapes and inputs, fitted on train only", lambda task=task: _alignment(cls, params, task)


def _alignment(cls: type[Alignment], params: dict[str, Any], task: str) -> None:
    modalities = tuple(cls.modalities) or DEFAULT_MODALITIES
    splits = make_splits(task, modalities)
    before = copy.deepcopy(splits)
    seed_all(0)
    first = _construct(cls, params)
    first.fit(splits["train"])
    val_alone = first.transform(splits["val"])
    for name, data in splits.items():
        out = first.transform(data)
        assert isinstance(out, SplitData), f"transform returned {type(out).__name__}, not SplitData"
        assert np.array_equal(out.ids, data.ids) and np.array_equal(out.labels, data.labels), \
            f"transform changed the {name} ids or labels"
        for m, x in data.features.items():
            assert m in out.features and np.asarray(out.features[m]).shape[0] == len(x), \
                f"transform changed the rows of {name} {m!r}"
            assert np.all(np.isfinite(out.features[m])), f"non-finite {name} {m!r} features"
        for m, x in before[name].features.items():
            assert np.array_equal(splits[name].features[m], x), f"transform changed its input ({name} {m!r}) in place"
    seed_all(0)
    second = _construct(cls, params)
    second.fit(splits["train"])
    second.transform(splits["test"])
    again = second.transform(splits["val"])
    half = second.transform(_rows(splits["val"], np.arange(len(splits["val"]) // 2)))
    for m in val_alone.features:
        assert np.allclose(val_alone.features[m], again.features[m], atol=1e-5) and np.allclose(
            val_alone.features[m][: len(half)], half.features[m], atol=1e-5), (
            f"val {m!r} changes with what else is transformed (test before it, or half of val alone): "
            "transform must apply what fit learned on train, not learn from the split it transforms")


def _rows(data: SplitData, index: np.ndarray) -> SplitData:
    """The rows at ``index`` of a split, every field sliced alike."""
    return SplitData(data.ids[index], {m: x[index] for m, x in data.features.items()}, data.labels[index],
                     data.task, data.classes, masks={m: k[index] for m, k in data.masks.items()},
                     sequences={m: s.take(index) for m, s in data.sequences.items()},
                     raw={m: [v[i] for i in index] for m, v in data.raw.items()})


# --- reporters --------------------------------------------------------------------------

def _reporter_checks(cls: type[Reporter], params: dict[str, Any]) -> Iterator[tuple[str, Callable[[], None]]]:
    def writes() -> None:
        board = sample_leaderboard()
        with tempfile.TemporaryDirectory(prefix="mmbench-check-") as folder:
            out_dir = Path(folder) / "board"
            out_dir.mkdir()
            written = _construct(cls, params).write(board, out_dir)
            assert isinstance(written, list) and written, f"write returned {written!r}; expected the list of files written"
            for path in map(Path, written):
                assert path.is_file() and path.stat().st_size > 0, f"{path} was returned but is missing or empty"
                assert path.resolve().is_relative_to(out_dir.resolve()), f"{path} is outside the folder it was given"

    yield "writes the files it returns", writes


_BOARD: list[Any] = []

SAMPLE_SUITE = """
[suite]
name = "kit"
seeds = [0, 1]
threads = 1
[train]
epochs = 2
[[datasets]]
name = "synthetic"
n_samples = 120
dims = [4, 4]
[[fusions]]
name = "linear_probe"
[[fusions]]
name = "early"
hidden = 8
[report]
output = "{out}/board"
results = "{out}/results"
"""


def run_in_suite(folder: Path, encoders: dict[str, str | dict[str, Any]], *,
                 dataset: dict[str, Any] | None = None, fusion: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one run through ``mmbench run`` (in this process, results under ``folder``) and
    return its result record: a plugin's end-to-end test, as the harness will call it
    (entry points, parameter checks, the cache, the extraction record). ``encoders`` is the
    suite's ``[[encoders]]`` entry (modality -> name, or a table with ``name``);
    ``dataset`` and ``fusion`` default to 80 ``synthetic_raw`` samples (image, text and
    tabular items) and ``early`` for 3 epochs. Raises AssertionError with the run's error
    when the run failed or the command did not exit 0."""
    from mmbench.cli import main

    dataset = dataset or {"name": "synthetic_raw", "n_samples": 80}
    fusion = fusion or {"name": "early", "train": {"epochs": 3}}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run_in_suite.toml"
    path.write_text("\n".join([
        "[suite]", 'name = "run_in_suite"', "seeds = [0]", "threads = 1",
        "[report]", f"results = {_toml(str(folder / 'results'))}", f"output = {_toml(str(folder / 'leaderboard'))}",
        "[[datasets]]", *_toml_lines(dataset), "[[encoders]]", *_toml_lines(encoders),
        "[[fusions]]", *_toml_lines(fusion), ""]), encoding="utf-8")
    code = main(["run", str(path), "--rerun"])
    records = [json.loads(p.read_text()) for p in (folder / "results" / "run_in_suite").glob("*.json")]
    assert len(records) == 1, f"expected one result, found {len(records)} (mmbench run exited {code})"
    (record,) = records
    assert record["status"] == "ok", f"the run failed: {record['error']}"
    assert code == 0, f"mmbench run exited {code}"
    return record


def _toml_lines(table: dict[str, Any]) -> list[str]:
    return [f"{key} = {_toml(value)}" for key, value in table.items()]


def _toml(value: Any) -> str:
    """A TOML value: strings, numbers, booleans, lists and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def sample_leaderboard() -> Any:
    """A real leaderboard (two fusions, two seeds on the built-in synthetic dataset), built once per
    process by running a tiny suite, for reporter tests."""
    if not _BOARD:
        from mmbench import leaderboard
        from mmbench.executor import run_suite
        from mmbench.registry import load_registry
        from mmbench.suite import load_suite

        with tempfile.TemporaryDirectory(prefix="mmbench-check-") as folder:
            path = Path(folder) / "kit.toml"
            path.write_text(SAMPLE_SUITE.format(out=folder))
            registry = load_registry()
            suite = load_suite(path, registry)
            run_suite(suite, registry, workers=1)
            _BOARD.append(leaderboard.build(suite)[0])
    return _BOARD[0]


_CHECKS: dict[str, Callable[[Any, dict[str, Any]], Iterator[tuple[str, Callable[[], None]]]]] = {
    "dataset": _dataset_checks,
    "encoder": _encoder_checks,
    "alignment": _alignment_checks,
    "fusion": _fusion_checks,
    "reporter": _reporter_checks,
}
