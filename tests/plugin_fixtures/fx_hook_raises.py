"""A plugin whose registration hook raises."""

from mmbench import hookimpl


@hookimpl
def mmbench_register_fusions():
    raise ValueError("fx_hook_raises exploded while registering")
