"""Another source registering a fusion named like a built-in one."""

from mmbench import hookimpl
from mmbench.plugin import Fusion

__version__ = "9.9.9"


class OtherEarly(Fusion):
    """Someone else's early fusion."""

    name = "early"

    def fit(self, train, val, config, ctx=None):
        raise NotImplementedError("a registry fixture: never fitted")

    def predict_proba(self, data):
        raise NotImplementedError("a registry fixture: never fitted")


@hookimpl
def mmbench_register_fusions():
    return [OtherEarly]
