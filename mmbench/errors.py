"""Errors a user can act on.

A ``UserError`` is shown as one short paragraph (no traceback unless ``--debug``) and
makes the CLI exit with code 2: it means the input is wrong, not that mmbench crashed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input: a suite, a parameter, a dataset root. The message says what to do."""


class SuiteError(UserError):
    """Problems located in a suite file, each as (where, what): file, table and key."""

    #: what the problems are in, for the heading of several
    subject = "the suite"

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"{where}: {message}" for where, message in problems]
        head = f"{len(problems)} problems in {self.subject}:\n" if len(problems) > 1 else ""
        super().__init__(head + "\n".join(lines))


class ParamsError(SuiteError):
    """A plugin built directly (a test, a notebook, another plugin) with parameters a suite
    would reject: the same checks and messages, located at the class instead of a file."""

    subject = "the parameters"


class UnknownPluginError(UserError):
    """A name that no loaded plugin of that kind registered."""


class PluginConflictError(UserError):
    """Two distributions registered the same name for the same kind."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """The lm-evaluation-harness style hint: close matches first, else everything known."""
    candidates = sorted(set(candidates))
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    if candidates:
        return "known: " + ", ".join(candidates)
    return "none are installed"


class PluginDeprecationWarning(DeprecationWarning):
    """A plugin uses a form of the plugin API that still works but will stop working on the
    date docs/plugins.md gives ("Stability"); the message names the new form. The CLI
    always shows these (Python hides plain DeprecationWarnings outside ``__main__``)."""
