"""The hooks a plugin distribution implements.

Each hook returns a list of plugin classes (datasette's style): a class carries its own
metadata and parameters, so the registry can list and validate a plugin without running it.
"""

import pluggy

PROJECT_NAME = "mmbench"
ENTRY_POINT_GROUP = "mmbench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def mmbench_register_datasets() -> list[type]:
    """Return dataset classes (subclasses of ``mmbench.plugin.Dataset``)."""


@hookspec
def mmbench_register_encoders() -> list[type]:
    """Return encoder classes (subclasses of ``mmbench.plugin.Encoder``)."""


@hookspec
def mmbench_register_alignments() -> list[type]:
    """Return alignment classes (subclasses of ``mmbench.plugin.Alignment``)."""


@hookspec
def mmbench_register_fusions() -> list[type]:
    """Return fusion classes (subclasses of ``mmbench.plugin.Fusion``)."""


@hookspec
def mmbench_register_reporters() -> list[type]:
    """Return reporter classes (subclasses of ``mmbench.plugin.Reporter``)."""
