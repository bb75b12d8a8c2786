"""Typed plugin parameters, checked before any run starts.

A plugin declares its parameters as ``Param`` objects; a suite gives values. Checking
happens once, up front, so a typo in hour one of a grid is not found in hour three.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbench.errors import did_you_mean

#: Python types a parameter may declare, and the word used for them in messages.
TYPE_NAMES: dict[type, str] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "true/false",
    list: "list",
    Path: "path",
}

_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One parameter of a plugin.

    ``type`` is one of int, float, str, bool, list or ``pathlib.Path``. A ``Path`` with
    ``must_exist`` is checked on disk during validation (a missing data root is reported
    before anything runs). ``default=Param.REQUIRED`` makes the parameter mandatory.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    must_exist: bool = False

    REQUIRED = _REQUIRED

    def __post_init__(self) -> None:
        if self.type not in TYPE_NAMES:
            raise TypeError(
                f"Param {self.name!r}: type must be one of "
                f"{', '.join(t.__name__ for t in TYPE_NAMES)}, not {self.type!r}"
            )
        if not self.help:
            raise TypeError(f"Param {self.name!r}: give a one-line help text")
        if (self.min is not None or self.max is not None) and self.type not in (int, float):
            raise TypeError(f"Param {self.name!r}: min / max apply to int and float parameters only")
        if self.must_exist and self.type is not Path:
            raise TypeError(f"Param {self.name!r}: must_exist applies to Path parameters only")

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for ``mmbench plugins --json`` and the docs."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": TYPE_NAMES[self.type],
            "default": None if self.required else _jsonable(self.default),
            "required": self.required,
            "help": self.help,
        }
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out

    def check(self, value: Any) -> tuple[Any, str | None]:
        """Return (normalised value, None) or (None, what is wrong with it)."""
        expected = TYPE_NAMES[self.type]
        if self.type is bool:
            if not isinstance(value, bool):
                return None, f"expected {expected}, got {value!r}"
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return None, f"expected an {expected}, got {value!r}"
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None, f"expected a {expected}, got {value!r}"
            value = float(value)
        elif self.type is str:
            if not isinstance(value, str):
                return None, f"expected a {expected}, got {value!r}"
        elif self.type is list:
            if not isinstance(value, list):
                return None, f"expected a {expected}, got {value!r}"
        elif self.type is Path:
            if not isinstance(value, (str, os.PathLike)):
                return None, f"expected a {expected} (a string), got {value!r}"
            value = os.fspath(value)
            path = Path(os.path.expandvars(value)).expanduser()
            if self.must_exist and not path.exists():
                return None, f"{str(path)!r} does not exist; point it at the folder that holds the data"
            value = str(path)
        if self.choices is not None and value not in self.choices:
            return None, f"expected one of {', '.join(map(repr, self.choices))}, got {value!r}"
        if self.min is not None and value < self.min:
            return None, f"must be >= {self.min}, got {value!r}"
        if self.max is not None and value > self.max:
            return None, f"must be <= {self.max}, got {value!r}"
        return value, None


def resolve_params(
    declared: tuple[Param, ...], given: dict[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Fill defaults and check every given value.

    Returns the resolved values and a list of ``(key, problem)`` pairs, so a caller can
    report every problem in a suite at once, each under its own key.
    """
    by_name = {p.name: p for p in declared}
    problems: list[tuple[str, str]] = []
    for key in given:
        if key not in by_name:
            known = list(by_name)
            hint = did_you_mean(key, known) if known else "this plugin takes no parameters"
            problems.append((key, f"unknown parameter; {hint}"))
    resolved: dict[str, Any] = {}
    for p in declared:
        if p.name not in given and p.required:
            problems.append((p.name, f"required parameter missing ({p.help})"))
            continue
        # defaults are checked too: a default data root must exist, "~" must expand
        value, problem = p.check(given.get(p.name, p.default))
        if problem:
            problems.append((p.name, problem if p.name in given else f"default {problem}"))
        else:
            resolved[p.name] = value
    return resolved, problems


def is_sweep(param: Param | None, value: Any) -> bool:
    """A list is a sweep unless the parameter itself is a list (then a list of lists is)."""
    if not isinstance(value, list):
        return False
    if param is not None and param.type is list:
        return bool(value) and all(isinstance(v, list) for v in value)
    return True


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value
