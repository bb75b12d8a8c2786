"""One versioned JSON file per run (mteb's shape), written atomically.

A file's name is the run id, the hash of everything that determines the run, so a
re-run finds finished work by name and a changed parameter can never reuse a stale
result. Files are the source of truth; tables and leaderboards are rebuilt from them.
"""

from __future__ import annotations

from collections.abc import Callable

import io
import json
import os
import platform
import socket
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.files import write_bytes_atomic, write_text_atomic
from mmbench.hashing import stable_hash
from mmbench.metric_catalog import current_names

if TYPE_CHECKING:
    from mmbench.grid import RunSpec

SCHEMA_VERSION = 1
#: how ``result_problem`` starts the reason of a file whose name is not its run id
COPY = "a copy or a renamed file"
#: The key of a run record holding its test predictions (ids, labels, proba arrays) until
#: ``write_result`` moves them to the sidecar file that the result's "predictions" names.
TEST_PREDICTIONS = "test_predictions"
PREDICTIONS_SUFFIX = ".test.npz"


def run_record(spec: RunSpec, *, started: datetime, duration_s: float, threads: int,
               error: dict[str, Any] | None = None, **outcome: Any) -> dict[str, Any]:
    """One run's result record: ok with ``outcome``'s fields, or failed with ``error``
    (type, message, traceback). The runner and the executors that record a run which never
    reported back (its worker died) build the same shape here."""
    return clean_numbers({
        "schema_version": SCHEMA_VERSION,
        "run_id": spec.run_id,
        "suite": spec.suite,
        "spec": spec.identity(),
        "labels": spec.labels(),
        "status": "ok" if error is None else "failed",
        "error": error,
        **outcome,
        "environment": {**environment(), "threads": threads, "device": spec.device},
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": duration_s,
    })


def error_text(error: dict[str, Any]) -> str:
    """A failed run's error as every place shows it: ``KeyError: 'image'``, not ``'image'``
    (an exception's message alone often says nothing). mmbench's own errors for users
    (``UserError`` and its kinds) are sentences already and show as they are."""
    from mmbench.errors import UserError

    kind, message = str(error.get("type") or ""), str(error.get("message") or "")
    user_kinds, todo = set(), [UserError]
    while todo:
        cls = todo.pop()
        user_kinds.add(cls.__name__)
        todo += cls.__subclasses__()
    if not kind or kind in user_kinds or message.startswith(f"{kind}:"):
        return message or kind
    return f"{kind}: {message}" if message else kind


def result_path(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}.json"


def write_result(results_dir: Path, result: dict[str, Any]) -> Path:
    """Write one result atomically; a killed process never leaves half a file.

    Test predictions go to a compressed sidecar beside the JSON (numbers per sample would
    bloat it), written first: a result file that names its sidecar always has it."""
    result = dict(result)
    predictions = result.pop(TEST_PREDICTIONS, None)
    if predictions is not None:
        result["predictions"] = write_predictions(results_dir, result["run_id"], **predictions).name
    text = json.dumps(result, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"
    return write_text_atomic(result_path(results_dir, result["run_id"]), text)


def write_predictions(results_dir: Path, run_id: str, ids: Any, labels: Any, proba: Any) -> Path:
    """``<run_id>.test.npz``: ids as fixed-width unicode, integer labels, float32
    probabilities; plain arrays only, so it loads without pickle."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, ids=np.asarray(ids).astype(str), labels=np.asarray(labels).astype(np.int64),
                        proba=np.asarray(proba, dtype=np.float32))
    return write_bytes_atomic(Path(results_dir) / f"{run_id}{PREDICTIONS_SUFFIX}", buffer.getvalue())


def read_predictions(results_dir: Path, result: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The test predictions a result names (ids, labels, proba), or None when it names
    none (results written before they were kept) or the sidecar is missing or unreadable."""
    name = result.get("predictions")
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(PREDICTIONS_SUFFIX):
        return None
    try:
        with np.load(Path(results_dir) / name, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("ids", "labels", "proba")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if not len(arrays["ids"]) == len(arrays["labels"]) == len(arrays["proba"]):
        return None
    return arrays


#: The label keys every reader of a result uses (the leaderboard's rows, ``mmbench results``).
LABEL_KEYS = ("dataset", "config", "encoder", "alignment", "fusion")


def result_problem(data: Any, name: str | None = None) -> str | None:
    """What makes ``data`` not a result every reader can use, or None when it is one.

    The one check of the result schema: the leaderboard, ``mmbench results``, ``compare``
    and ``run`` (what counts as finished) all read results through it, so a damaged or
    hand-edited file is left out (and re-run) instead of crashing them. ``name``, the file's
    name, must be ``<run_id>.json``: a copy (``<id> (1).json``) would count one run twice."""
    if not isinstance(data, dict):
        return f"not a JSON object but a {type(data).__name__}"
    if data.get("schema_version") != SCHEMA_VERSION:
        return f"schema_version is {data.get('schema_version')!r}, this mmbench reads {SCHEMA_VERSION}"
    run_id = data.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        return "no run_id"
    if name is not None and name != result_path(Path(), run_id).name:
        return f"{COPY}: its run_id is {run_id!r} (only {run_id}.json counts)"
    status = data.get("status")
    if status not in ("ok", "failed"):
        return f"status is {status!r}, not 'ok' or 'failed'"
    for key in ("spec", "labels"):
        if not isinstance(data.get(key), dict):
            return f"no {key} object"
    if not isinstance(data.get("environment", {}), dict):
        return "environment is not an object"
    if not _is_int(data["spec"].get("seed")):
        return "spec.seed is not an integer"
    for key in LABEL_KEYS:
        if not isinstance(data["labels"].get(key), str):
            return f"labels.{key} is not a string"
    if "duration_s" in data and not _is_number(data["duration_s"]):
        return "duration_s is not a number"
    if status == "failed":
        error = data.get("error")
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return "a failed run without an error message"
        return None
    measured = data.get("metrics")
    if not isinstance(measured, dict):
        return "no metrics object"
    wrong = sorted(m for m, v in measured.items() if v is not None and not _is_number(v))
    if wrong:
        return f"metric {wrong[0]!r} is {measured[wrong[0]]!r}, not a number"
    if not isinstance(data.get("data"), dict) or not isinstance(data["data"].get("task"), str):
        return "no data.task"
    warned = data.get("warnings", [])
    if not isinstance(warned, list) or not all(isinstance(w, str) for w in warned):
        return "warnings is not a list of strings"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_result(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the result in ``path``, None), or (None, why it cannot be used)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    except ValueError as exc:
        return None, f"not valid JSON ({exc})"
    problem = result_problem(data, Path(path).name)
    if problem:
        return None, problem
    if data["status"] == "ok":  # files written before a metric was renamed read under the new name
        data["metrics"] = current_names(data["metrics"])
    return data, None


def read_result(path: Path) -> dict[str, Any] | None:
    """The result in ``path``, or None when it is unreadable, invalid or from another schema."""
    return check_result(path)[0]


def is_finished(results_dir: Path, run_id: str) -> bool:
    """A run counts as done only when it succeeded; a failed or damaged one is retried."""
    result = read_result(result_path(results_dir, run_id))
    return result is not None and result.get("status") == "ok"


@dataclass(frozen=True)
class LeftOut:
    """A file in a results folder that is not counted, and why (the notes say both)."""

    path: Path
    reason: str

    @property
    def remedy(self) -> str:
        """A copy is never counted (its run has its own file); a damaged result's run is redone."""
        return "delete it" if self.reason.startswith(COPY) else "`mmbench run` runs it again"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}; {self.remedy}"


def load_results(results_dir: Path, check: Callable[[Path], tuple[dict[str, Any] | None, str | None]] = check_result
                 ) -> tuple[list[dict[str, Any]], list[LeftOut]]:
    """Every valid result in a folder, sorted by run id (each run id once: only the file
    named ``<run_id>.json`` counts), and the files left out with the reason. ``check``:
    ``check_result`` or the same answer from the leaderboard's index (``result_index``)."""
    good, bad = [], []
    for path in sorted(Path(results_dir).glob("*.json")):
        data, problem = check(path)
        if data is None:
            bad.append(LeftOut(path, problem or "unreadable"))
        else:
            good.append(data)
    return sorted(good, key=lambda r: r["run_id"]), bad


def left_out_notes(left_out: list[LeftOut]) -> list[str]:
    """One note per result file left out (the leaderboard and ``mmbench results`` print them)."""
    return [f"result file left out: {item}" for item in left_out]


def clean_numbers(value: Any) -> Any:
    """NaN and infinity are not JSON: store them as null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: clean_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_numbers(v) for v in value]
    return value


@cache
def environment() -> dict[str, Any]:
    """Where a result was measured; times are only comparable on one ``machine_id``."""
    import torch  # the run already imported it

    from mmbench import __version__

    return {
        "mmbench_version": __version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "machine_id": machine_id(),
        "cpu_count": os.cpu_count(),
    }


def machine_id() -> str:
    """A stable id of this machine: host, CPU model and core count, /etc/machine-id."""
    parts = [socket.gethostname(), platform.machine(), str(os.cpu_count()), _cpu_model()]
    try:
        parts.append(Path("/etc/machine-id").read_text().strip())
    except OSError:
        pass
    return stable_hash(parts, length=12)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str | None:
    """The commit of the mmbench source tree, when it runs from a git checkout."""
    source = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None
