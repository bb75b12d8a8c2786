"""``mmbench extract``: compute every embedding a suite's runs need, ahead of the runs.

The papers' workflow: extract once on the biggest machine, train many times on a laptop.
Extraction calls the run's own steps (``mmbench.run._split``, ``encoder_objects``,
``_encode``), so each vector lands where a later ``mmbench run`` looks it up and that
run is all cache hits. The work is one item per (dataset, modality, encoder) for encoders
that are not ``fitted`` (their sample store covers every split and seed at once), and one
per (dataset, modality, encoder, split) for fitted ones. Fusions, alignments and
robustness never change what is extracted, only which modalities are (a fusion reading one
modality needs only its encoder). Runs whose fusion consumes raw inputs extract nothing
(they train the backbones themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from mmbench.cache import EmbeddingCache
from mmbench.errors import UserError
from mmbench.executor import RateColumn
from mmbench.hashing import stable_hash
from mmbench.registry import Registry
from mmbench.suite import RunSpec, Suite, encoder_label, modalities_to_encode

ItemsCallback = Callable[[str, int, int], None]


@dataclass
class Plan:
    """What ``extract`` will do for a suite, and what it leaves out and why."""

    #: one run spec per extraction, with the one modality's encoder it extracts
    work: list[RunSpec]
    #: runs whose fusion consumes raw inputs: nothing to extract for them
    raw_runs: int = 0
    #: labels of datasets whose modalities are all vectors already
    vector_datasets: list[str] = field(default_factory=list)


@dataclass
class Row:
    """One modality of one work item, as the summary table shows it."""

    dataset: str
    encoder: str
    modality: str
    items: int
    computed: int
    seconds: float
    #: the extraction cost per sample, measured now or stored with the cached entries
    s_per_sample: float


@dataclass
class Report:
    plan: Plan
    rows: list[Row] = field(default_factory=list)
    #: (what failed, the error) per work item that raised
    failures: list[tuple[str, Exception]] = field(default_factory=list)


def split_seed(spec: RunSpec) -> int:
    """The seed the run's split uses (``[split] seed`` when fixed): with the dataset and the
    split fractions it decides the sample ids each cache entry is keyed by."""
    return spec.seed if spec.split["seed"] < 0 else spec.split["seed"]


def extraction_keys(spec: RunSpec, registry: Registry) -> dict[str, RunSpec]:
    """The extractions a run needs: key -> a spec that performs it (the run's, with only
    that modality's encoder). One per raw modality the run encodes: for an encoder that is
    not ``fitted`` keyed by (dataset, modality, encoder), so every split and seed shares it;
    for a fitted one also by the split and its seed. Empty when the run extracts nothing
    (vectors only, or a fusion that trains on raw inputs)."""
    if not spec.encoders or registry.get("fusion", spec.fusion.name).cls.consumes == "raw":
        return {}
    dataset = spec.identity()["dataset"]
    out = {}
    for modality in modalities_to_encode(spec, registry, sorted(spec.encoders)):
        config = spec.encoders[modality]
        what: dict = {"dataset": dataset, "modality": modality, "encoder": config.identity()}
        if registry.get("encoder", config.name).cls.fitted:
            what["split"] = {**spec.split, "seed": split_seed(spec)}
        out[stable_hash(what)] = replace(spec, encoders={modality: config}, alignment=None, robustness=None)
    return out


def plan(suite: Suite, registry: Registry, runs: list[RunSpec] | None = None) -> Plan:
    """The distinct extractions behind ``runs`` (default: the suite's grid)."""
    work: dict[str, RunSpec] = {}
    out = Plan(work=[])
    for spec in suite.runs() if runs is None else runs:
        if registry.get("fusion", spec.fusion.name).cls.consumes == "raw":
            out.raw_runs += 1
            continue
        keys = extraction_keys(spec, registry)
        if not keys and not spec.encoders and spec.dataset.label not in out.vector_datasets:
            out.vector_datasets.append(spec.dataset.label)
        for key, item in keys.items():
            work.setdefault(key, item)
    out.work = list(work.values())
    return out


def to_encode(suite: Suite, registry: Registry, runs: list[RunSpec]) -> list[dict]:
    """What running ``runs`` will encode, per dataset x encoder x modality: ``to_encode``
    items and ``cached`` ones (``mmbench run --dry-run``). Loads each dataset (its ids),
    never an encoder's weights; ``error`` says why a dataset could not be counted."""
    from mmbench.cache import entry_key, store_key
    from mmbench.data import is_features
    from mmbench.item_identity import addresses
    from mmbench.run import load_and_split

    cache = EmbeddingCache()
    out: dict[tuple[str, str, str], dict] = {}
    for spec in plan(suite, registry, runs).work:
        ((modality, config),) = spec.encoders.items()
        row = out.setdefault((spec.dataset.label, config.label, modality), {
            "dataset": spec.dataset.label, "encoder": config.label, "modality": modality,
            "to_encode": 0, "cached": 0, "error": None})
        try:
            table, parts = load_and_split(spec, registry)
        except Exception as exc:  # noqa: BLE001 - a dry run reports it and counts the others
            row["error"] = describe(exc)
            continue
        if modality not in table.modalities or is_features(table.modalities[modality]):
            continue
        encoder = registry.get("encoder", config.name).cls(**config.params)
        dataset = {**spec.dataset.identity(), "fingerprint": spec.dataset_fingerprint}
        identity = {"name": config.name, "version": config.version, "fingerprint": encoder.fingerprint()}
        if encoder.fitted:
            for part in parts.values():
                key = entry_key(dataset=dataset, ids=part.ids, modality=modality, encoder=identity,
                                train_ids=parts["train"].ids)
                row["cached" if (cache.path(key) / "manifest.json").exists() else "to_encode"] += len(part)
        else:
            rows = addresses(table.ids, table.modalities[modality])
            held = int(cache.held(store_key(dataset=dataset, modality=modality, encoder=identity), rows).sum())
            row["cached"] += held
            row["to_encode"] += len(table) - held
    return [out[key] for key in sorted(out)]


def extract_suite(suite: Suite, registry: Registry, *, device: str = "cpu", threads: int = 0,
                  console: Console | None = None) -> Report:
    """Extract what ``plan`` lists, with progress on ``console``. A failing item is
    recorded and the others go on, so one bad encoder does not waste a night of work."""
    report = Report(plan(suite, registry))
    cache = EmbeddingCache()
    console = console or Console(stderr=True)
    with items_progress(console, f"extract {suite.name}", len(report.plan.work)) as (on_items, advance):
        for spec in report.plan.work:
            spec = replace(spec, device=device, threads=threads or spec.threads)
            try:
                report.rows += extract_one(spec, registry, cache, on_items)
            except Exception as exc:  # noqa: BLE001 - recorded; the CLI reports them as one UserError
                what = f"{spec.dataset.label} | {encoder_label(spec.encoders)}"
                if any(registry.get("encoder", c.name).cls.fitted for c in spec.encoders.values()):
                    what += f" | split seed {split_seed(spec)}"
                report.failures.append((what, exc))
                console.print(f"[red]failed[/red] {escape(what)}: {escape(describe(exc))}")
            advance()
    return report


def describe(exc: Exception) -> str:
    """A user's own mistake as its message; anything else with its type, to report it."""
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def extract_one(spec: RunSpec, registry: Registry, cache: EmbeddingCache,
                on_items: ItemsCallback | None = None) -> list[Row]:
    """Encode the modalities of ``spec.encoders`` (one per ``extraction_keys`` item) of one
    dataset x split through the cache, the way ``mmbench.run.prepare`` does (same seeding,
    split, encoder objects and keys); an encoder that is not fitted fills its sample store
    with every sample of the dataset."""
    from mmbench.data import is_features
    from mmbench.run import encode_splits, encoder_objects, keep_modalities, load_and_split, seed_everything

    seed_everything(spec)
    _, parts = load_and_split(spec, registry)
    raw = {m for m, values in parts["train"].modalities.items() if not is_features(values)}
    encoders = {m: c for m, c in spec.encoders.items() if m in raw}
    if not encoders:
        return []  # a modality this dataset does not have (it could not tell before loading)
    parts = keep_modalities(parts, set(encoders))
    dataset = {**spec.dataset.identity(), "fingerprint": spec.dataset_fingerprint}
    objects = encoder_objects(encoders, registry, spec.device)
    *_, records = encode_splits(parts, encoders, registry, dataset, cache, objects=objects, on_items=on_items)
    return [Row(spec.dataset.label, encoders[modality].label, modality, sum(len(part) for part in parts.values()),
                record["rows_encoded"], record["extract_s"], record["s_per_sample"])
            for modality, record in records.items()]


@contextmanager
def items_progress(console: Console, title: str, total: int
                   ) -> Iterator[tuple[ItemsCallback, Callable[[], None]]]:
    """A rich progress display like ``mmbench run``'s: an overall bar (advanced by the second
    callable) and one for the items being encoded, with samples/s (the first callable is
    the runner's ``on_items``)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task(title, total=total, phase="")
        current = progress.add_task("", total=None, phase="")

        def on_items(what: str, done: int, total: int) -> None:
            if progress.tasks[current].description != f"  {what}":  # a new modality: a new rate
                progress.reset(current, description=f"  {what}", phase="items", completed=0)
            progress.update(current, completed=done, total=total)

        yield on_items, lambda: progress.advance(overall)
        progress.remove_task(current)


def summary(rows: list[Row]) -> list[dict]:
    """Rows per dataset x encoder x modality, summed over extractions (one for an encoder
    that is not fitted, one per split seed for a fitted one), in a stable order."""
    merged: dict[tuple[str, str, str], dict] = {}
    for row in rows:
        entry = merged.setdefault((row.dataset, row.encoder, row.modality), {
            "dataset": row.dataset, "encoder": row.encoder, "modality": row.modality,
            "extractions": 0, "items": 0, "computed": 0, "cached": 0, "seconds": 0.0, "cost": 0.0})
        entry["extractions"] += 1
        entry["items"] += row.items
        entry["computed"] += row.computed
        entry["cached"] += row.items - row.computed
        entry["seconds"] += row.seconds
        entry["cost"] += row.s_per_sample * row.items
    out = []
    for key in sorted(merged):
        entry = merged[key]
        cost = entry.pop("cost")
        out.append({**entry, "s_per_sample": cost / entry["items"] if entry["items"] else 0.0})
    return out
