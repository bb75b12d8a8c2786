"""``mmbench extract``: compute every embedding a suite's runs need, ahead of the runs.

The papers' workflow: extract once on the biggest machine, train many times on a laptop.
Extraction calls the run's own steps (``mmbench.run._split``, ``encoder_objects``,
``_encode``), so each entry lands under exactly the key a later ``mmbench run`` looks up
and that run is all cache hits. Fusions, alignments and robustness never change what is
extracted, so the work is one item per distinct dataset x encoders x split. Runs whose
fusion consumes raw inputs extract nothing (they train the backbones themselves).
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
from mmbench.plugin import stable_hash
from mmbench.registry import Registry
from mmbench.suite import RunSpec, Suite, encoder_label

ItemsCallback = Callable[[str, int, int], None]


@dataclass
class Plan:
    """What ``extract`` will do for a suite, and what it leaves out and why."""

    #: one representative run per distinct (dataset, encoders, split)
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
    seed: int
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


def extraction_key(spec: RunSpec, registry: Registry) -> str | None:
    """The embeddings a run needs (dataset, encoders, split and its seed: what the cache
    keys depend on); None when it extracts nothing (vectors only, or a fusion that trains
    on raw inputs). Runs with one key share one extraction."""
    if not spec.encoders or registry.get("fusion", spec.fusion.name).cls.consumes == "raw":
        return None
    return stable_hash({"dataset": spec.identity()["dataset"],
                        "encoders": {m: c.identity() for m, c in sorted(spec.encoders.items())},
                        "split": {**spec.split, "seed": split_seed(spec)}})


def plan(suite: Suite, registry: Registry) -> Plan:
    """The distinct extractions behind ``suite.runs()``: cache keys depend on the dataset,
    the split's ids (so its seed, fitted encoder or not) and the encoders, never on the
    fusion, the alignment or robustness."""
    work: dict[str, RunSpec] = {}
    out = Plan(work=[])
    for spec in suite.runs():
        if registry.get("fusion", spec.fusion.name).cls.consumes == "raw":
            out.raw_runs += 1
            continue
        key = extraction_key(spec, registry)
        if key is None:
            if spec.dataset.label not in out.vector_datasets:
                out.vector_datasets.append(spec.dataset.label)
            continue
        work.setdefault(key, replace(spec, alignment=None, robustness=None))
    out.work = list(work.values())
    return out


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
                what = f"{spec.dataset.label} | {encoder_label(spec.encoders)} | split seed {split_seed(spec)}"
                report.failures.append((what, exc))
                console.print(f"[red]failed[/red] {escape(what)}: {escape(describe(exc))}")
            advance()
    return report


def describe(exc: Exception) -> str:
    """A user's own mistake as its message; anything else with its type, to report it."""
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def extract_one(spec: RunSpec, registry: Registry, cache: EmbeddingCache,
                on_items: ItemsCallback | None = None) -> list[Row]:
    """Encode every raw modality of one dataset x encoders x split through the cache, the
    way ``mmbench.run.prepare`` does (same seeding, split, encoder objects and keys)."""
    from mmbench.run import encode_splits, encoder_objects, load_and_split, seed_everything

    seed_everything(spec)
    _, parts = load_and_split(spec, registry)
    dataset = {**spec.dataset.identity(), "fingerprint": spec.dataset_fingerprint}
    objects = encoder_objects(spec.encoders, registry, spec.device)
    *_, records = encode_splits(parts, spec.encoders, registry, dataset, cache, objects=objects, on_items=on_items)
    rows = []
    for modality, record in records.items():
        computed = sum(len(parts[name]) for name, split in record["splits"].items() if not split["cached"])
        rows.append(Row(spec.dataset.label, spec.encoders[modality].label, modality, split_seed(spec),
                        sum(len(part) for part in parts.values()), computed, record["extract_s"],
                        record["s_per_sample"]))
    return rows


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
    """Rows per dataset x encoder x modality, summed over split seeds, in a stable order."""
    merged: dict[tuple[str, str, str], dict] = {}
    for row in rows:
        entry = merged.setdefault((row.dataset, row.encoder, row.modality), {
            "dataset": row.dataset, "encoder": row.encoder, "modality": row.modality,
            "seeds": 0, "items": 0, "computed": 0, "cached": 0, "seconds": 0.0, "cost": 0.0})
        entry["seeds"] += 1
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
