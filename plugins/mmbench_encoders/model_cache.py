"""Loaded models shared by a process's runs.

The runner makes a new encoder object per run, and loading weights often costs more than
encoding a small dataset, so each encoder module keeps what it loaded here, keyed by the
state of the files it read and the device. A small bound keeps a suite that sweeps models
from holding all of them in memory at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Loaded = TypeVar("Loaded")


class ModelCache(Generic[Loaded]):
    """At most ``size`` loaded models; the oldest is dropped to make room."""

    def __init__(self, size: int = 2):
        self.size = size
        self._loaded: dict[Hashable, Loaded] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Loaded]) -> Loaded:
        """The model loaded for ``key``, loading it with ``load()`` the first time."""
        with self._lock:
            if key not in self._loaded:
                if len(self._loaded) >= self.size:
                    self._loaded.pop(next(iter(self._loaded)))
                self._loaded[key] = load()
            return self._loaded[key]

    def clear(self) -> None:
        """Forget every loaded model (tests; freeing memory between suites)."""
        with self._lock:
            self._loaded.clear()
