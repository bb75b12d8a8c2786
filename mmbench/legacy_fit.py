"""Calling fusions written to the old ``fit`` signature (until ``OLD_FIT_REMOVED``).

``call_fit`` is the one place the runner (and the conformance kit) fits a fusion: a class
whose ``fit`` has no ``ctx`` parameter gets the keywords it got before ``FitContext``, with
a ``PluginDeprecationWarning`` naming the new form; the registry lists such classes as
deprecated. Delete this module with the old form.
"""

from __future__ import annotations

import inspect
import warnings
from typing import TYPE_CHECKING, Any

from mmbench.errors import PluginDeprecationWarning
from mmbench.fit_context import NEW_FORM, OLD_FIT_REMOVED, FitContext

if TYPE_CHECKING:
    from mmbench.data import SplitData
    from mmbench.plugin import Fusion
    from mmbench.train_config import FitReport, TrainConfig


def uses_old_fit(cls: type) -> bool:
    """True when ``cls.fit`` is written to the old signature: no parameter named ``ctx``."""
    try:
        parameters = inspect.signature(cls.fit).parameters
    except (TypeError, ValueError):  # a builtin or an odd callable: assume the documented form
        return False
    return "ctx" not in parameters


def old_fit_message(cls: type) -> str:
    """What the deprecation warning says about a class with the old ``fit``."""
    return (f"{cls.__module__}.{cls.__qualname__}.fit uses the old signature fit(train, val, config, "
            f"on_epoch=None, **kwargs), which mmbench calls until {OLD_FIT_REMOVED}; define {NEW_FORM} "
            "and read ctx.on_epoch / ctx.encoders / ctx.branch_loss / ctx.device (mmbench.api.FitContext)")


def call_fit(fusion: Fusion, train: SplitData, val: SplitData, config: TrainConfig,
             ctx: FitContext) -> FitReport:
    """Fit ``fusion`` with whichever signature its class has. An old-form ``fit`` gets the
    keywords it got before: ``on_epoch`` always, ``encoders`` for raw-input fusions and
    those with ``uses_encoders``, ``branch_loss`` when the alignment has one."""
    if not uses_old_fit(type(fusion)):
        return fusion.fit(train, val, config, ctx)
    warnings.warn(old_fit_message(type(fusion)), PluginDeprecationWarning, stacklevel=2)
    extra: dict[str, Any] = {}
    if fusion.consumes == "raw" or fusion.uses_encoders:
        extra["encoders"] = ctx.encoders
    if ctx.branch_loss is not None:
        extra["branch_loss"] = ctx.branch_loss
    return fusion.fit(train, val, config, on_epoch=ctx.on_epoch, **extra)
