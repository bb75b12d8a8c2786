"""Built-in fusion methods."""

from mmbench import hookimpl
from mmbench_fusion.mlp import EarlyFusion, LateJointFusion, LinearProbe


@hookimpl
def mmbench_register_fusions():
    return [LinearProbe, EarlyFusion, LateJointFusion]
