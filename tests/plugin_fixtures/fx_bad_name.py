"""A plugin whose fusion has a name a suite could not use."""

from mmbench import hookimpl
from mmbench.plugin import Fusion


class BadName(Fusion):
    """Upper case and a dash."""

    name = "Bad-Name"


@hookimpl
def mmbench_register_fusions():
    return [BadName]
