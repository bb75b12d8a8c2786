"""An index of result summaries kept beside the results, so a rebuild costs what changed.

A 3,000-run leaderboard spent its time parsing 3,000 result JSONs (each with its per-epoch
history) and bootstrapping 3,000 test-prediction files, every time, although a re-run of a
finished suite changes none of them. ``<results>/.mmbench-index/`` keeps, per result file,
the validated record without the parts no leaderboard reads (history, fit info, gap
numbers), and per run the bootstrap replicates of the primary metric; an entry is used
only while its files have the same name, size and modification time (``files.file_state``),
otherwise the file is read and checked again (``results.check_result``, the one schema
check). The index is a cache: deleting it changes no number, a damaged index is ignored and
rewritten, and the leaderboard built through it is byte-identical to one built without it.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmbench import bootstrap
from mmbench.files import write_bytes_atomic, write_text_atomic
from mmbench.results import check_result, read_predictions

FOLDER = ".mmbench-index"
#: not "*.json": a tool that globs a results folder for result files must not take it for one
SUMMARIES = "summaries.index"
VERSION = 1
#: what the leaderboard reads of a result; the rest (per-epoch history...) is not kept
KEPT = ("schema_version", "run_id", "suite", "status", "error", "spec", "data", "metrics", "environment",
        "predictions", "labels", "warnings")


def _state(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


class ResultIndex:
    """The summaries and replicates of one results folder; ``save`` writes what changed."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = Path(results_dir)
        self.folder = self.results_dir / FOLDER
        self._summaries = self._read_summaries()
        self._fresh: dict[str, Any] = {}
        self._changed = False
        self._replicates: dict[str, dict[str, Any]] = {}  # cache file -> run id -> entry
        self._replicates_changed: set[str] = set()

    # -- result summaries --------------------------------------------------------------------
    def _read_summaries(self) -> dict[str, Any]:
        try:
            data = json.loads((self.folder / SUMMARIES).read_text(encoding="utf-8"))
            return dict(data["files"]) if data.get("version") == VERSION else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def check(self, path: Path) -> tuple[dict[str, Any] | None, str | None]:
        """``results.check_result`` for a file, from the index while the file is unchanged."""
        state = _state(path)
        entry = self._summaries.get(path.name)
        if state is not None and isinstance(entry, list) and len(entry) == 3 and entry[0] == state:
            self._fresh[path.name] = entry
            return entry[1], entry[2]
        data, problem = check_result(path)
        kept = None if data is None else {k: data[k] for k in KEPT if k in data}
        if state is not None:
            self._fresh[path.name] = [state, kept, problem]
            self._changed = True
        return kept, problem

    # -- bootstrap replicates ------------------------------------------------------------------
    def replicates(self, primary: str, resamples: int, seed: int) -> Callable[[dict[str, Any], str],
                                                                              tuple[str, np.ndarray] | None]:
        """``run, task -> (test-set key, replicates)`` of the primary metric, or None without
        readable predictions; cached per run while its result and predictions files are unchanged."""
        name = f"replicates-{primary}-{resamples}-{seed}.npz"
        cached = self._replicates.setdefault(name, self._read_replicates(name))
        draws: dict[str, np.ndarray] = {}

        def of(run: dict[str, Any], task: str) -> tuple[str, np.ndarray] | None:
            prediction = run.get("predictions")
            states = [_state(self.results_dir / f"{run['run_id']}.json"),
                      _state(self.results_dir / prediction) if isinstance(prediction, str) else None]
            entry = cached.get(run["run_id"])
            if entry is not None and entry[0] == states and None not in states:
                return entry[1], entry[2]
            arrays = read_predictions(self.results_dir, run)
            if arrays is None:
                return None
            test = bootstrap.TestSet.of(arrays["ids"], arrays["labels"], arrays["proba"], task)
            if test.key not in draws:
                draws[test.key] = bootstrap.draws(test, resamples, seed)
            values = bootstrap.replicates(test, primary, draws[test.key])
            if None not in states:
                cached[run["run_id"]] = (states, test.key, values)
                self._replicates_changed.add(name)
            return test.key, values

        return of

    def _read_replicates(self, name: str) -> dict[str, Any]:
        try:
            with np.load(self.folder / name, allow_pickle=False) as data:
                run_ids, keys = data["run_ids"].tolist(), data["keys"].tolist()
                states, values = data["states"].tolist(), data["values"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return {}
        return {run_id: ([s[:2], s[2:] if s[2] >= 0 else None], key, values[i])
                for i, (run_id, key, s) in enumerate(zip(run_ids, keys, states))}

    # -- writing -------------------------------------------------------------------------------
    def save(self, keep: set[str] | None = None) -> None:
        """Write the parts that changed; entries of files that are gone are dropped.
        ``keep``: run ids whose replicates stay (the others are of runs no longer there)."""
        if self._changed or set(self._summaries) != set(self._fresh):
            text = json.dumps({"version": VERSION, "files": self._fresh}, sort_keys=True, separators=(",", ":"))
            write_text_atomic(self.folder / SUMMARIES, text)
        for name, cached in self._replicates.items():
            if keep is not None and set(cached) - keep:
                for run_id in set(cached) - keep:
                    del cached[run_id]
                self._replicates_changed.add(name)
            if name not in self._replicates_changed or not cached:
                continue
            run_ids = sorted(cached)
            states = np.array([[*cached[r][0][0], *(cached[r][0][1] or [-1, -1])] for r in run_ids], dtype=np.int64)
            import io

            buffer = io.BytesIO()
            np.savez(buffer, run_ids=np.array(run_ids, dtype=str), keys=np.array([cached[r][1] for r in run_ids],
                                                                                    dtype=str),
                     states=states, values=np.stack([cached[r][2] for r in run_ids]))
            write_bytes_atomic(self.folder / name, buffer.getvalue())
