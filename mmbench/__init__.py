"""mmbench: a benchmark harness for multimodal fusion that runs on a CPU laptop.

Only light names live here so that ``import mmbench`` (and ``mmbench --help``) stays
fast: torch and the plugins are imported when a command needs them.
"""

from importlib.metadata import PackageNotFoundError, version

from mmbench.hookspecs import hookimpl

try:
    __version__ = version("mmbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["hookimpl", "__version__"]
