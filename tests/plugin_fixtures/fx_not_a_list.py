"""A plugin whose hook returns a class instead of a list of classes."""

from mmbench import hookimpl
from mmbench.plugin import Fusion


class Lonely(Fusion):
    """Returned on its own, not in a list."""

    name = "lonely"


@hookimpl
def mmbench_register_fusions():
    return Lonely
