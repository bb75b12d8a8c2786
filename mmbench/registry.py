"""Plugin discovery and name resolution.

Distributions register through the ``mmbench`` entry-point group (the built-ins too).
Each entry point is loaded and each registration hook is called separately, so one
broken plugin is reported with its distribution and reason and skipped, never fatal.

Environment (like pytest's):
- ``MMBENCH_PLUGINS``: comma-separated allow-list; each item is an entry-point name, a
  distribution name, or an importable module (loaded as a plugin even if not installed).
- ``MMBENCH_DISABLE_PLUGIN_AUTOLOAD``: load no entry points except those allowed above.
"""

from __future__ import annotations

import importlib
import os
import re
import traceback
import warnings
from collections import defaultdict
from dataclasses import dataclass, field, replace
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from mmbench import hookspecs
from mmbench.data import TASK_KINDS
from mmbench.errors import PluginConflictError, PluginDeprecationWarning, UnknownPluginError, did_you_mean
from mmbench.legacy_fit import old_fit_message, uses_old_fit
from mmbench.params import Param
from mmbench.plugin import CAPABILITIES, PLUGIN_BASES, Plugin, missing_methods

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

#: hook name -> plugin kind it registers
HOOKS: dict[str, str] = {
    "mmbench_register_datasets": "dataset",
    "mmbench_register_encoders": "encoder",
    "mmbench_register_alignments": "alignment",
    "mmbench_register_fusions": "fusion",
    "mmbench_register_reporters": "reporter",
}


@dataclass(frozen=True)
class Source:
    """Where a plugin came from: the entry point and the distribution behind it."""

    entry_point: str
    distribution: str
    version: str


@dataclass(frozen=True)
class PluginInfo:
    kind: str
    name: str
    cls: type[Plugin]
    version: str
    source: Source
    #: deprecated forms the class still uses (it works; each note says what to change and by when)
    deprecations: tuple[str, ...] = ()

    def describe(self) -> dict:
        """JSON-able metadata, as ``mmbench plugins --json`` prints it."""
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "distribution": self.source.distribution,
            "entry_point": self.source.entry_point,
            "status": "ok",
            "description": self.cls.summary(),
            "modalities": list(self.cls.modalities),
            "task_kinds": list(self.cls.task_kinds),
            "capabilities": {attr: getattr(self.cls, attr) for attr in CAPABILITIES.get(self.kind, {})},
            "consumes": getattr(self.cls, "consumes", None),
            "handles_missing": getattr(self.cls, "handles_missing", None),
            "citation": self.cls.citation,
            "parameters": [p.describe() for p in self.cls.parameters],
            "deprecations": list(self.deprecations),
            **({"train_defaults": self.train_defaults()} if self.kind == "fusion" else {}),
        }

    def train_defaults(self) -> dict[str, Any]:
        """The training settings a fusion runs with when a suite sets none: its own
        protocol (``train_defaults``) over mmbench's defaults (``TRAIN_PARAMS``)."""
        from mmbench.params import resolve_params
        from mmbench.train_config import TRAIN_PARAMS

        resolved, _ = resolve_params(TRAIN_PARAMS, getattr(self.cls, "train_defaults", {}))
        return resolved


@dataclass(frozen=True)
class BrokenPlugin:
    """What failed to load. Without ``kind`` the whole distribution (or one of its hooks)
    failed; with ``kind`` and ``name`` one plugin class broke its contract and was skipped."""

    source: Source
    reason: str
    kind: str | None = None
    name: str | None = None

    def describe(self) -> dict:
        return {
            "distribution": self.source.distribution,
            "version": self.source.version,
            "entry_point": self.source.entry_point,
            "kind": self.kind,
            "name": self.name,
            "status": "broken",
            "reason": self.reason,
        }


@dataclass
class Registry:
    """Every loaded plugin by kind and name, plus what failed to load."""

    plugins: dict[str, dict[str, PluginInfo]] = field(default_factory=lambda: defaultdict(dict))
    conflicts: dict[tuple[str, str], list[PluginInfo]] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)

    def add(self, info: PluginInfo) -> None:
        key = (info.kind, info.name)
        if key in self.conflicts:
            if all(i.cls is not info.cls for i in self.conflicts[key]):
                self.conflicts[key].append(info)
            return
        existing = self.plugins[info.kind].get(info.name)
        if existing is not None and existing.cls is not info.cls:
            # neither source wins: listed as conflicts only, resolving the name raises
            self.conflicts[key] = [self.plugins[info.kind].pop(info.name), info]
            return
        self.plugins[info.kind][info.name] = info

    def names(self, kind: str) -> list[str]:
        return sorted(self.plugins[kind])

    def get(self, kind: str, name: str) -> PluginInfo:
        """Resolve a name, with "did you mean" on typos and both sources on conflicts."""
        if (kind, name) in self.conflicts:
            who = " and ".join(
                f"{i.source.distribution} {i.source.version} (entry point {i.source.entry_point!r})"
                for i in self.conflicts[(kind, name)]
            )
            raise PluginConflictError(
                f"{kind} {name!r} is registered by both {who}; uninstall one of them, "
                "or choose one with MMBENCH_PLUGINS"
            )
        try:
            return self.plugins[kind][name]
        except KeyError:
            same = [b for b in self.broken if (b.kind, b.name) == (kind, name)]
            if same:
                raise UnknownPluginError(f"{kind} {name!r} from {same[0].source.distribution} is broken: "
                                         f"{same[0].reason}") from None
            hint = did_you_mean(name, self.plugins[kind])
            raise UnknownPluginError(f"unknown {kind} {name!r}; {hint}{self.broken_hint()}") from None

    def broken_hint(self) -> str:
        """" (N plugin(s) failed to load: ...)" naming the distributions, or "" when none did:
        the name looked for may be one of theirs."""
        if not self.broken:
            return ""
        names = sorted({b.source.distribution for b in self.broken})
        return (f" ({len(self.broken)} plugin(s) failed to load, from {', '.join(names)}: "
                "see `mmbench plugins`)")

    def all(self) -> list[PluginInfo]:
        return [info for kind in PLUGIN_BASES for info in sorted(
            self.plugins[kind].values(), key=lambda i: i.name)]


def load_registry() -> Registry:
    """Discover every allowed plugin; never raises because of a plugin's own fault."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    sources: dict[str, Source] = {}

    allowed = _allow_list()
    autoload = not os.environ.get("MMBENCH_DISABLE_PLUGIN_AUTOLOAD")
    seen: set[str] = set()
    for ep in sorted(entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name):
        source = _source_of(ep)
        matched = allowed is not None and (ep.name in allowed or source.distribution in allowed)
        if matched:
            seen.update({ep.name, source.distribution})
        if not (matched or (autoload and allowed is None)):
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a plugin's import error must not stop the others
            registry.broken.append(BrokenPlugin(source, _reason(exc)))
            continue
        _register(pm, registry, sources, module, source)
    for item in sorted((allowed or set()) - seen):
        source = Source(entry_point=item, distribution=item, version="unknown")
        try:
            module = importlib.import_module(item)
        except Exception as exc:
            registry.broken.append(BrokenPlugin(source, _reason(exc)))
            continue
        version = str(getattr(module, "__version__", "unknown"))
        _register(pm, registry, sources, module, Source(item, item, version))

    for hook_name, kind in HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            source = sources[impl.plugin_name]
            try:
                returned = impl.function()
                classes = _check_returned(returned, kind, hook_name)
            except Exception as exc:
                registry.broken.append(BrokenPlugin(source, f"{hook_name}: {_reason(exc)}"))
                continue
            for cls in classes:
                problem = contract_problem(cls, kind)
                if problem:
                    registry.broken.append(BrokenPlugin(source, problem, kind, cls.name))
                    continue
                deprecations = tuple(_deprecations(cls, kind))
                for note in deprecations:
                    warnings.warn(note, PluginDeprecationWarning, stacklevel=2)
                registry.add(PluginInfo(kind, cls.name, cls, cls.version or source.version, source, deprecations))
    return registry


def _register(pm: pluggy.PluginManager, registry: Registry, sources: dict[str, Source],
              module: ModuleType, source: Source) -> None:
    if pm.is_registered(module):  # two entry points naming one module
        return
    # Entry-point names are unique only within a distribution: key by both.
    key = f"{source.distribution}:{source.entry_point}"
    try:
        pm.register(module, name=key)
    except Exception as exc:  # e.g. a hook taking arguments its spec does not have
        registry.broken.append(BrokenPlugin(source, _reason(exc)))
        return
    # pluggy accepts hooks it has no spec for: a misspelled hook would be silently ignored.
    unknown = [hc.name for hc in pm.get_hookcallers(module) or [] if not hc.has_spec()]
    if unknown:
        pm.unregister(module)
        registry.broken.append(BrokenPlugin(source, "; ".join(
            f"unknown hook {name!r}; {did_you_mean(name, HOOKS)}" for name in unknown)))
        return
    sources[key] = source


def _check_returned(returned: object, kind: str, hook_name: str) -> list[type[Plugin]]:
    """The classes a hook returned; a wrong shape breaks the whole hook."""
    base = PLUGIN_BASES[kind]
    if not isinstance(returned, (list, tuple)):
        raise TypeError(f"must return a list of {base.__name__} subclasses, got {type(returned).__name__}")
    for cls in returned:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{cls!r} is not a subclass of mmbench.plugin.{base.__name__}")
        if not isinstance(cls.name, str) or not NAME_PATTERN.match(cls.name):
            raise TypeError(
                f"{cls.__name__}.name must be lower case letters, digits and underscores, got {cls.name!r}"
            )
    return list(returned)


def contract_problem(cls: type[Plugin], kind: str) -> str | None:
    """What is wrong with a plugin class's declarations, or None: parameters, task kinds,
    capabilities and the methods it must define. A class with a problem is marked broken
    at registration (its siblings still load); ``mmbench.testing.check_plugin`` starts here."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    bad = [p for p in cls.parameters if not isinstance(p, Param)]
    if bad:
        return f"{where}: parameters must hold mmbench.params.Param objects, got {bad[0]!r}"
    for p in cls.parameters:
        if not p.required:  # the default's type and range; a data root need not exist yet
            _, problem = replace(p, must_exist=False).check(p.default)
            if problem:
                return f"{where}: parameter {p.name!r}: default {problem}"
    names = [p.name for p in cls.parameters]
    if len(set(names)) != len(names):
        return f"{where}: parameters declares a name twice: {names}"
    unknown_tasks = set(cls.task_kinds) - set(TASK_KINDS)
    if unknown_tasks:
        return f"{where}: task_kinds has unknown kinds {sorted(unknown_tasks)}; known: {', '.join(TASK_KINDS)}"
    for attr, allowed in CAPABILITIES.get(kind, {}).items():
        value = getattr(cls, attr)
        if not any(type(value) is type(a) and value == a for a in allowed):
            return f"{where}: {attr} must be one of {', '.join(map(repr, allowed))}, got {value!r}"
    missing = missing_methods(cls)
    if missing:
        return (f"{where} does not define {', '.join(f'{m}()' for m in missing)}, which every "
                f"{kind} must define (a misspelled method name?)")
    return None


def _deprecations(cls: type[Plugin], kind: str) -> list[str]:
    """Notes on deprecated forms a class still uses (it keeps working until their date)."""
    return [old_fit_message(cls)] if kind == "fusion" and uses_old_fit(cls) else []


def _source_of(ep: EntryPoint) -> Source:
    dist = ep.dist
    if dist is None:
        return Source(ep.name, "unknown", "unknown")
    return Source(ep.name, dist.metadata["Name"], dist.version)


def _allow_list() -> set[str] | None:
    raw = os.environ.get("MMBENCH_PLUGINS")
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


def _reason(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({frame[0].filename}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"
