"""TOML suites: read, validate as a whole, expand into a grid of runs.

Every problem in a suite is collected and reported at once, each located by file,
table and key, before any work starts. Axes are datasets x encoders x alignments x
fusions x seeds; a list given for a scalar parameter is a sweep over its values.
"""

from __future__ import annotations

import itertools
import re
import tomllib
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmbench.errors import SuiteError, UserError, did_you_mean
# the plain grid data lives in mmbench.grid; these names stay importable from here (documented paths)
from mmbench.grid import PluginConfig, RunSpec, Suite, config_label, encoder_label, encoder_names
from mmbench.metric_catalog import DEFAULT_COLUMNS, METRICS, RENAMED
from mmbench.params import Param, is_sweep, resolve_params
from mmbench.registry import PluginInfo, Registry
from mmbench.robustness import DEFAULTS as ROBUSTNESS_DEFAULTS
from mmbench.robustness import MISSING_ONLY, ROBUSTNESS_PARAMS
from mmbench.train_config import TRAIN_PARAMS

SUITE_PARAMS = (
    Param("name", str, Param.REQUIRED, "suite name: names the results folder and leaderboard files"),
    Param("description", str, "", "one line shown atop the leaderboard"),
    Param("seeds", list, [0], "seeds; every configuration runs once per seed"),
    Param("threads", int, 0, "torch threads per run (0: leave torch's default)", min=0),
    Param("run_timeout", float, 0.0, "seconds a run may take; one past it is stopped and recorded failed "
          "(0: no limit); not part of any run id", min=0.0),
)
SPLIT_PARAMS = (
    Param("val", float, 0.1, "validation fraction of all samples (model selection)", min=0.01, max=0.9),
    Param("test", float, 0.2, "test fraction of all samples", min=0.01, max=0.9),
    Param("seed", int, -1, "fixed split seed; -1 splits with each run's seed", min=-1, max=2**32 - 1),
)
REPORT_PARAMS = (
    Param("primary", str, "auroc", "metric that ranks configurations", choices=tuple(METRICS)),
    Param("columns", list, list(DEFAULT_COLUMNS), "metrics shown in the leaderboard, in order"),
    Param("output", str, "leaderboard", "folder the leaderboard files go to"),
    Param("results", str, "results", "folder the per-run result JSON files go under"),
    Param("bootstrap", int, 1000, "test-set resamples per confidence interval of the primary metric "
          "(0: no intervals)", min=0),
    Param("bootstrap_seed", int, 0, "seed of the resampled test indices"),
)
#: ``[[report.reference]]``: a number a paper printed, shown beside the measured one
REFERENCE_PARAMS = (
    Param("dataset", str, Param.REQUIRED, "dataset label of this suite"),
    Param("config", str, Param.REQUIRED, "configuration as the leaderboard prints it: "
          "'encoder / alignment / fusion', plus ' / robustness' under [robustness]"),
    Param("metric", str, Param.REQUIRED, "metric the number is", choices=tuple(METRICS)),
    Param("value", float, Param.REQUIRED, "the number as the source prints it"),
    Param("source", str, Param.REQUIRED, "paper and table or figure (and how its protocol differs)"),
)
#: ``[executor]``: where the grid runs; not part of any run id (it changes how fast, not what)
EXECUTOR_PARAMS = (
    Param("kind", str, "local", "local (this machine) or dask (a Dask cluster)", choices=("local", "dask")),
    Param("address", str, "", "dask scheduler address, e.g. tcp://host:8786; empty: start a local cluster"),
    Param("retries", int, 2, "times a run is retried after its worker process died (local pool or Dask), "
          "then it is recorded failed", min=0),
)
LOCAL_CLUSTER_PARAMS = (
    Param("n_workers", int, 0, "worker processes of the local Dask cluster (0: one per core)", min=0),
    Param("threads_per_worker", int, 1, "threads per worker; torch uses as many per run", min=1),
)
#: a suite name becomes a folder and file names: never a path (``../x``, ``/tmp/x``) or hidden
SUITE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
#: seeds numpy's and torch's generators accept
MAX_SEED = 2**32 - 1
TABLES = ("suite", "split", "train", "datasets", "encoders", "alignments", "fusions", "robustness", "report",
          "executor")
#: Keys of an axis entry that belong to the harness, not to the plugin's parameters.
RESERVED = {"name", "label"}
#: Keys of a fusion entry that restrict it to some dataset / encoder / alignment entries (by label)
SCOPES = ("datasets", "encoders", "alignments")
AXES = {"datasets": "dataset", "encoders": "encoder", "alignments": "alignment", "fusions": "fusion"}


def load_suite(path: str | Path, registry: Registry) -> Suite:
    """Read and validate a suite; raise ``SuiteError`` listing every problem found."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such suite file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SuiteError([(str(path), f"not a text file in UTF-8 (byte {exc.start}: {exc.reason}); "
                           "a suite is a TOML text file")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError([(str(path), f"not valid TOML: {exc}")]) from None
    except RecursionError:
        raise SuiteError([(str(path), "arrays or tables nested too deeply to read; a suite needs "
                           "a few levels at most")]) from None
    return _SuiteReader(path, raw, registry).read()


class _SuiteReader:
    """Collects problems while it reads, so the user sees them all in one go."""

    def __init__(self, path: Path, raw: dict[str, Any], registry: Registry):
        self.path, self.raw, self.registry = path, raw, registry
        self.problems: list[tuple[str, str]] = []
        self.first_entry: dict[tuple[str, str], str] = {}  # (kind, name) -> where it is first named
        self.dataset_tasks: dict[str, str] = {}  # dataset label -> task kind

    def problem(self, where: str, message: str) -> None:
        self.problems.append((f"{self.path}: {where}", message))

    def read(self) -> Suite:
        for key in self.raw:
            if key not in TABLES:
                self.problem(f"[{key}]", f"unknown table; {did_you_mean(key, TABLES)}")
        suite = self.table("suite", SUITE_PARAMS)
        split = self.table("split", SPLIT_PARAMS)
        train = self.table("train", TRAIN_PARAMS)
        self.suite_train = {k: v for k, v in train.items() if k in self.raw.get("train", {})}
        self.rename_metrics()
        report = self.table("report", REPORT_PARAMS, nested=("reference",))
        report["reference"] = self.references()
        executor = self.table("executor", EXECUTOR_PARAMS, nested=("local_cluster",))
        executor["local_cluster"] = self.sub_table("executor", "local_cluster", LOCAL_CLUSTER_PARAMS)
        seeds = suite.get("seeds", [])
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            self.problem("[suite] seeds", f"expected a non-empty list of integers, got {seeds!r}")
        elif not all(0 <= s <= MAX_SEED for s in seeds):
            self.problem("[suite] seeds", f"seeds must be in [0, {MAX_SEED}] (what numpy and torch accept), "
                         f"got {[s for s in seeds if not 0 <= s <= MAX_SEED]}")
        name = suite.get("name")
        if isinstance(name, str) and not SUITE_NAME.fullmatch(name):
            self.problem("[suite] name", f"{name!r} is not a suite name: it names the results folder and the "
                         "leaderboard files, so it is letters, digits, '_', '-' and '.' (not first), "
                         "e.g. \"my_suite-2\"")
        for column in report.get("columns", []):
            if column not in METRICS:
                self.problem("[report] columns", f"unknown metric {column!r}; {did_you_mean(str(column), METRICS)}")
        if "val" in split and "test" in split and split["val"] + split["test"] >= 0.9:
            self.problem("[split]", "val + test must leave at least 10% of the samples for training")

        robustness = self.robustness_axis()
        datasets = self.axis_with_fingerprints()
        encoders = self.encoder_axis()
        alignments: list[PluginConfig | None] = self.axis("alignments") or [None]
        fusions = self.axis("fusions")
        for table in ("datasets", "fusions"):
            if not self.raw.get(table):
                self.problem(f"[[{table}]]", f"the suite needs at least one [[{table}]] entry")
        self.check_task_kinds(fusions)
        self.check_scopes(fusions, [c for c, _, _ in datasets], encoders, alignments)
        self.check_unique_labels("datasets", [c.label for c, _, _ in datasets])
        self.check_unique_labels("encoders", [encoder_label(e) for e in encoders])
        self.check_unique_labels("alignments", [a.label for a in alignments if a is not None])
        self.check_unique_labels("fusions", [f.label for f in fusions])
        if self.problems:
            raise SuiteError(self.problems)
        built = Suite(path=self.path, name=suite["name"], description=suite["description"],
                      seeds=seeds, threads=suite["threads"], split=split,
                      datasets=datasets, encoders=encoders, alignments=alignments,
                      fusions=fusions, report=report, robustness=robustness, executor=executor,
                      run_timeout=suite["run_timeout"])
        self.check_references(built)
        self.check_encoders(built)
        if self.problems:
            raise SuiteError(self.problems)
        return built

    def check_encoders(self, suite: Suite) -> None:
        """Every raw modality a run's fusion reads needs an encoder: said here, before
        anything runs, instead of by each run failing. Datasets that cannot tell their raw
        modalities without loading (``raw_modalities()`` None) are checked at run time."""
        raw = {config.label: modalities for config, _, modalities in suite.datasets}
        said: set[tuple[str, str]] = set()
        for spec in suite.runs():
            where = (spec.dataset.label, encoder_label(spec.encoders))
            if raw[spec.dataset.label] is None or where in said:
                continue
            lacking = [m for m in modalities_to_encode(spec, self.registry, raw[spec.dataset.label])
                       if m not in spec.encoders]
            if lacking:
                said.add(where)
                self.problem(f"[[encoders]] {where[1]}",
                             f"dataset {where[0]!r} has raw {' and '.join(map(repr, lacking))} items, which fusion "
                             f"{spec.fusion.label!r} reads, and this entry has no encoder for them: add "
                             + ", ".join(f'{m} = "..."' for m in lacking) + " (`mmbench plugins` lists encoders) "
                             "or use a fusion that reads only encoded modalities (e.g. unimodal with modality = ...)")

    def table(self, key: str, declared: tuple[Param, ...], nested: tuple[str, ...] = ()) -> dict[str, Any]:
        """A table's parameters; keys in ``nested`` are sub-tables read on their own."""
        given = self.raw.get(key, {})
        if not isinstance(given, dict):
            self.problem(f"[{key}]", "expected a table ([" + key + "]), not an array or value")
            return {}
        return self.checked(declared, {k: v for k, v in given.items() if k not in nested}, f"[{key}] ")[0]

    def sub_table(self, key: str, sub: str, declared: tuple[Param, ...]) -> dict[str, Any]:
        outer = self.raw.get(key, {})
        given = outer.get(sub, {}) if isinstance(outer, dict) else {}
        if not isinstance(given, dict):
            self.problem(f"[{key}] {sub}", f"expected a table, e.g. {sub} = {{ n_workers = 2 }}")
            return {}
        return self.checked(declared, given, f"[{key}] {sub}.")[0]

    def rename_metrics(self) -> None:
        """A metric renamed since (``metric_catalog.RENAMED``) still works in ``[report]``
        and its references, read as the new name with a DeprecationWarning."""
        report = self.raw.get("report")
        if not isinstance(report, dict):
            return
        report = self.raw["report"] = dict(report)

        def current(name: Any, where: str) -> Any:
            if isinstance(name, str) and name in RENAMED:
                new, since = RENAMED[name]
                warnings.warn(f"{self.path}: {where} names metric {name!r}, renamed {new!r} on {since}; "
                              f"write {new!r} (the old name will stop working)", DeprecationWarning, stacklevel=2)
                return new
            return name

        if "primary" in report:
            report["primary"] = current(report["primary"], "[report] primary")
        if isinstance(report.get("columns"), list):
            report["columns"] = [current(c, "[report] columns") for c in report["columns"]]
        if isinstance(report.get("reference"), list):
            report["reference"] = [{**e, "metric": current(e.get("metric"), "[[report.reference]]")}
                                   if isinstance(e, dict) else e for e in report["reference"]]

    def checked(self, declared: tuple[Param, ...], given: dict[str, Any], where: str) -> tuple[dict[str, Any], bool]:
        """``given`` resolved against ``declared``, each problem reported at ``where`` + its
        key; and whether there was none."""
        resolved, problems = resolve_params(declared, given)
        for key, message in problems:
            self.problem(f"{where}{key}", message)
        return resolved, not problems

    def references(self) -> list[dict[str, Any]]:
        raw = self.raw.get("report", {})
        raw = raw.get("reference", []) if isinstance(raw, dict) else []
        if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
            self.problem("[[report.reference]]", "expected an array of tables: write each entry as "
                         "[[report.reference]]")
            return []
        references = []
        for i, entry in enumerate(raw):
            resolved, ok = self.checked(REFERENCE_PARAMS, entry, f"[[report.reference]] #{i + 1} ")
            if ok:
                references.append(resolved)
        return references

    def check_references(self, suite: Suite) -> None:
        """Each reference must name a configuration of the grid (once per metric): a typo
        would otherwise print the paper's number beside nothing."""
        configs: dict[str, set[str]] = {}
        for spec in suite.runs():
            labels = spec.labels()
            configs.setdefault(labels["dataset"], set()).add(labels["config"])
        seen: set[tuple[str, str, str]] = set()
        for i, ref in enumerate(suite.report["reference"]):
            where = f"[[report.reference]] #{i + 1}"
            key = (ref["dataset"], ref["config"], ref["metric"])
            if ref["dataset"] not in configs:
                self.problem(f"{where} dataset", f"no dataset labelled {ref['dataset']!r}; "
                             + did_you_mean(ref["dataset"], configs))
            elif ref["config"] not in configs[ref["dataset"]]:
                self.problem(f"{where} config", f"dataset {ref['dataset']!r} has no configuration "
                             f"{ref['config']!r}; " + did_you_mean(ref["config"], configs[ref["dataset"]])
                             + " (`mmbench run SUITE --dry-run` lists them)")
            elif key in seen:
                self.problem(where, f"a second {ref['metric']} for {ref['dataset']!r} / {ref['config']!r}")
            seen.add(key)

    def robustness_axis(self) -> list[dict[str, Any] | None]:
        """One settings dict per point of the ``[robustness]`` sweeps; [None] without it."""
        given = self.raw.get("robustness")
        if given is None:
            return [None]
        if not isinstance(given, dict):
            self.problem("[robustness]", "expected a table ([robustness]), not an array or value")
            return [None]
        declared = {p.name: p for p in ROBUSTNESS_PARAMS}
        axis = []
        for point, _ in _sweep_points(given, declared):
            resolved, ok = self.checked(ROBUSTNESS_PARAMS, point, "[robustness] ")
            if not ok:
                return [None]
            if resolved["missing_rate"] == 0:  # nothing goes missing: how it would does not matter
                resolved |= {k: ROBUSTNESS_DEFAULTS[k] for k in MISSING_ONLY}
            if resolved not in axis:
                axis.append(resolved)
        if not axis:
            self.problem("[robustness]", "an empty list sweeps over no values; give at least one value")
            return [None]
        return axis

    def entries(self, table: str) -> list[tuple[str, dict[str, Any]]]:
        raw = self.raw.get(table, [])
        if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
            self.problem(f"[[{table}]]", f"expected an array of tables: write each entry as [[{table}]]")
            return []
        return [(f"[[{table}]] #{i + 1}", entry) for i, entry in enumerate(raw)]

    def axis(self, table: str) -> list[PluginConfig]:
        configs: list[PluginConfig] = []
        for where, entry in self.entries(table):
            configs.extend(self.plugin_configs(AXES[table], entry, where))
        return configs

    def axis_with_fingerprints(self) -> list[tuple[PluginConfig, str, tuple[str, ...] | None]]:
        """Dataset configs with their data fingerprint and raw modalities; also learns each
        one's task kind."""
        out = []
        for where, entry in self.entries("datasets"):
            for config in self.plugin_configs("dataset", entry, where):
                try:
                    dataset = self.registry.get("dataset", config.name).cls(**config.params)
                    out.append((config, dataset.fingerprint(), dataset.raw_modalities()))
                    self.dataset_tasks[config.label] = dataset.task_kind()
                except UserError as exc:
                    self.problem(f'{where} (name = "{config.name}")', str(exc))
                except Exception as exc:  # the plugin's own fault: say whose
                    source = self.registry.get("dataset", config.name).source
                    self.problem(f'{where} (name = "{config.name}")',
                                 f"the dataset plugin failed while preparing ({type(exc).__name__}: {exc}); "
                                 f"report this to {source.distribution} {source.version}")
        return out

    def encoder_axis(self) -> list[dict[str, PluginConfig]]:
        """An entry is either one encoder for the modalities it declares (``name = ...``)
        or one encoder per modality (``image = "a"``, ``text = { name = "b", ... }``), where
        modalities given the same table share one encoder object."""
        axis: list[dict[str, PluginConfig]] = []
        for where, entry in self.entries("encoders"):
            if "name" in entry:
                for config in self.plugin_configs("encoder", entry, where):
                    modalities = self.registry.get("encoder", config.name).cls.modalities
                    if not modalities:
                        self.problem(f'{where} (name = "{config.name}")',
                                     "this encoder declares no modalities; name the one it should encode, "
                                     f'e.g. text = "{config.name}"')
                    axis.append({m: config for m in modalities})
                continue
            if "label" in entry:
                self.problem(f"{where} label", 'with one encoder per modality, put each label in its '
                             'table: text = { name = "...", label = "..." }')
            # modalities given the same table share its configs: one object per run, so a
            # paired model (image = text = "open_clip") loads once, and a sweep in that table
            # moves both modalities together instead of crossing them
            groups: list[tuple[list[str], Any, list[PluginConfig]]] = []
            for modality, value in ((m, v) for m, v in entry.items() if m not in RESERVED):
                sub = {"name": value} if isinstance(value, str) else value
                if not isinstance(sub, dict):
                    self.problem(f"{where} {modality}", 'expected an encoder name or a table like { name = "..." }')
                    continue
                same = next((g for g in groups if g[1] == sub), None)
                if same is not None:
                    same[0].append(modality)
                else:
                    groups.append(([modality], sub, self.plugin_configs("encoder", sub, f"{where} {modality}")))
            if not groups:
                self.problem(where, 'give name = "..." or one encoder per modality (image = "...")')
            for combo in itertools.product(*(configs for _, _, configs in groups)):
                axis.append({m: config for (modalities, _, _), config in zip(groups, combo) for m in modalities})
        return axis

    def plugin_configs(self, kind: str, entry: dict[str, Any], where: str) -> list[PluginConfig]:
        """Resolve one axis entry into one config per point of its sweeps."""
        name = entry.get("name")
        if not isinstance(name, str):
            self.problem(f"{where} name", f'required: the {kind} plugin to use, e.g. name = "..."')
            return []
        where = f'{where} (name = "{name}")'
        self.first_entry.setdefault((kind, name), where)
        try:
            info = self.registry.get(kind, name)
        except UserError as exc:
            self.problem(f"{where} name", str(exc))
            return []
        declared = {p.name: p for p in info.cls.parameters}
        given = {k: v for k, v in entry.items() if k not in RESERVED}
        scope = self.fusion_scope(given, declared, where) if kind == "fusion" else {}
        train_given: dict[str, Any] = {}
        if kind == "fusion" and "train" in given and "train" not in declared:
            train_given = given.pop("train")
            if not isinstance(train_given, dict):
                self.problem(f"{where} train", "expected a table of training settings, e.g. train = { epochs = 10 }")
                train_given = {}
        label = entry.get("label")
        if label is not None and not isinstance(label, str):
            self.problem(f"{where} label", f"expected a string, got {label!r}")
            label = None

        configs = []
        train_by_name = {p.name: p for p in TRAIN_PARAMS}
        # an empty sweep would silently drop the entry from the grid
        empty = [k for k, v in given.items() if v == [] and is_sweep(declared.get(k), v)]
        empty += [f"train.{k}" for k, v in train_given.items() if v == [] and is_sweep(train_by_name.get(k), v)]
        for key in empty:
            self.problem(f"{where} {key}", "an empty list sweeps over no values; give at least one value")
        if empty:
            return []
        train_defaults = self.train_defaults(info, where) if kind == "fusion" else {}
        for point, swept in _sweep_points(given, declared):
            for train_point, train_swept in _sweep_points(train_given, train_by_name):
                params, problems = resolve_params(info.cls.parameters, point)
                train, train_problems = resolve_params(TRAIN_PARAMS, train_point)
                problems += [(f"train.{k}", m) for k, m in train_problems]
                for key, message in problems:
                    self.problem(f"{where} {key}", message)
                if problems:
                    return []
                shown = {**swept, **train_swept} if label else {**point, **train_point}
                full_train = {}
                if kind == "fusion":
                    given_train = {k: v for k, v in train.items() if k in train_point}
                    full_train = {**train_defaults, **self.suite_train, **given_train}
                if kind != "dataset":  # datasets are built once more, for their fingerprint
                    try:  # constructors check combinations of parameters; they must stay cheap
                        info.cls(**params)
                    except UserError as exc:
                        self.problem(where, str(exc))
                        return []
                configs.append(PluginConfig(kind=kind, name=name, version=info.version, params=params,
                                            label=_label(label or name, shown), train=full_train,
                                            entry=label or name, scope=scope))
        return configs

    def fusion_scope(self, given: dict[str, Any], declared: dict[str, Param], where: str) -> dict[str, tuple]:
        """Pop ``datasets`` / ``encoders`` / ``alignments`` (lists of entry labels) off a fusion entry."""
        scope = {}
        for axis in SCOPES:
            if axis not in given or axis in declared:
                continue
            labels = given.pop(axis)
            if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
                self.problem(f"{where} {axis}", f"expected a non-empty list of {axis[:-1]} labels "
                             f'("-" for none), e.g. {axis} = ["clip"], got {labels!r}')
                continue
            scope[axis] = tuple(labels)
        return scope

    def check_scopes(self, fusions: list[PluginConfig], datasets: list[PluginConfig],
                     encoders: list[dict[str, PluginConfig]], alignments: list[PluginConfig | None]) -> None:
        """A fusion's ``datasets`` / ``encoders`` / ``alignments`` must name entries of the suite."""
        known = {"datasets": set().union(*(d.names() for d in datasets)),
                 "encoders": set().union(*(encoder_names(e) for e in encoders or [{}])),  # as runs() does
                 "alignments": set().union(*(a.names() if a is not None else {"-"} for a in alignments))}
        reported = set()
        for fusion in fusions:
            for axis, labels in fusion.scope.items():
                for label in labels:
                    if label not in known[axis] and (fusion.entry, axis, label) not in reported:
                        reported.add((fusion.entry, axis, label))
                        self.problem(f'[[fusions]] (label "{fusion.entry}") {axis}',
                                     f"no {axis[:-1]} entry labelled {label!r}; " + did_you_mean(label, known[axis]))

    def train_defaults(self, info: PluginInfo, where: str) -> dict[str, Any]:
        """Every training setting, with the fusion's own protocol over the harness defaults."""
        resolved, problems = resolve_params(TRAIN_PARAMS, info.cls.train_defaults)
        for key, message in problems:
            self.problem(where, f"the plugin's own train_defaults are invalid ({key}: {message}); "
                         f"report this to {info.source.distribution}")
        return resolved

    def check_unique_labels(self, table: str, labels: list[str]) -> None:
        """Two configurations with one label would be merged into one leaderboard row."""
        for label, count in Counter(labels).items():
            if count > 1:
                self.problem(f"[[{table}]]", f"{count} entries resolve to the same configuration {label!r}; "
                             "remove the duplicate or give each a distinct label")

    def check_task_kinds(self, fusions: list[PluginConfig]) -> None:
        for label, task in self.dataset_tasks.items():
            for fusion_name in dict.fromkeys(f.name for f in fusions):  # once per fusion, not per sweep point
                supported = self.registry.get("fusion", fusion_name).cls.task_kinds
                if task not in supported:
                    self.problem(
                        self.first_entry[("fusion", fusion_name)],
                        f"cannot take dataset {label!r}: its task is {task}, the fusion "
                        f"supports {', '.join(supported)}; drop one of them or move it to another suite",
                    )


def modalities_to_encode(spec: RunSpec, registry: Registry, candidates: Iterable[str]) -> list[str]:
    """Which of ``candidates`` (raw modalities) a run encodes: those its fusion reads
    (``Fusion.modalities_used``), and, when an alignment or a robustness setting (which act
    on every modality) is set, also the others that have an encoder. The rest are dropped
    unencoded: a one-modality fusion needs no encoder, and no extraction, for the others."""
    reads = registry.get("fusion", spec.fusion.name).cls(**spec.fusion.params).modalities_used()
    every = spec.alignment is not None or spec.robustness is not None
    return [m for m in candidates if reads is None or m in reads or (every and m in spec.encoders)]


def _sweep_points(given: dict[str, Any], declared: dict[str, Param]):
    """Yield (values, swept values) for each point of the cartesian product of sweeps."""
    swept_keys = [k for k, v in given.items() if is_sweep(declared.get(k), v)]
    for combo in itertools.product(*(given[k] for k in swept_keys)):
        swept = dict(zip(swept_keys, combo))
        yield {**given, **swept}, swept


def _label(base: str, shown: dict[str, Any]) -> str:
    if not shown:
        return base
    return base + "(" + ", ".join(f"{k}={_short(v)}" for k, v in sorted(shown.items())) + ")"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)
