"""Peak resident memory of the process, per run.

tracemalloc does not see torch tensors, so this reads the kernel's high-water mark.
On Linux the mark can be reset (``/proc/self/clear_refs``), which makes the number a
run's own even when many runs share one process; elsewhere it is the process's peak.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def reset_peak() -> bool:
    """Reset the high-water mark; False where the platform does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size in MiB since start or the last successful reset."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux
