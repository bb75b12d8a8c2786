"""A plugin that misspells its hook (``fusion`` for ``fusions``)."""

from mmbench import hookimpl
from mmbench.plugin import Fusion


class Forgotten(Fusion):
    """Never registered: the hook name is wrong."""

    name = "forgotten"


@hookimpl
def mmbench_register_fusion():
    return [Forgotten]
