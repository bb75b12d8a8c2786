"""A plugin whose hook returns a class that is not a mmbench Fusion."""

from mmbench import hookimpl


class NotAFusion:
    """Looks like a plugin, is not one."""

    name = "not_a_fusion"


@hookimpl
def mmbench_register_fusions():
    return [NotAFusion]
