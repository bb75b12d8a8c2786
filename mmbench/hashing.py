"""``stable_hash``: the one hash behind run ids, fingerprints and cache keys.

Its own module so every layer (plugins, the grid, results, the cache) can use it without
importing another layer; ``mmbench.plugin.stable_hash`` re-exports it (the documented path).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any, length: int = 16) -> str:
    """A hash of JSON-able data that is the same on every machine and Python run."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
