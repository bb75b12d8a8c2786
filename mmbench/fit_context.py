"""What the runner hands a fusion's ``fit`` besides the data, and the one place that calls it.

Every fusion is fitted as ``fit(train, val, config, ctx)``: ``ctx`` is a ``FitContext``
holding whatever the run has for it (progress callback, encoder objects, an alignment's
branch loss, the device), so a fusion's signature never depends on its capabilities.

Fusions written against the earlier signature, ``fit(train, val, config, on_epoch=None,
**kwargs)`` (keywords ``encoders`` and ``branch_loss`` passed as the capabilities said),
keep working until ``OLD_FIT_REMOVED``, with a ``PluginDeprecationWarning`` naming the new
form: ``FitContext.coerce`` takes the old keywords, and ``mmbench.legacy_fit.call_fit`` decides
which form a class has and calls it accordingly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmbench.errors import PluginDeprecationWarning

#: The date from which ``fit(train, val, config, on_epoch=None, **kwargs)`` is no longer called
#: (docs/plugins.md, "Stability").
OLD_FIT_REMOVED = "2027-06-01"

#: The keywords the old signature received; ``FitContext`` fields of the same names hold them now.
LEGACY_KEYWORDS = ("on_epoch", "encoders", "branch_loss")

#: The new form, as messages name it.
NEW_FORM = "fit(self, train, val, config, ctx)"


@dataclass
class FitContext:
    """What a fusion may use while fitting, besides its data and ``TrainConfig``.

    - ``on_epoch(done, total)``: progress; call ``ctx.progress(done, total)`` after each epoch.
    - ``encoders``: the run's encoder objects per modality: given to raw-input fusions
      (``consumes = "raw"``) and to fusions with ``uses_encoders``; empty otherwise.
    - ``branch_loss``: the alignment's extra loss on per-modality branch outputs, given to
      fusions with ``exposes_branches`` when the suite's alignment has one; else None.
    - ``device``: where to train ("cpu", "cuda:0", ...), from ``mmbench run --device``.
    """

    on_epoch: Callable[[int, int], None] | None = None
    #: ``mmbench.plugin.Encoder`` objects (typed Any: plugin.py imports this module)
    encoders: dict[str, Any] = field(default_factory=dict)
    branch_loss: Callable[[dict[str, Any]], Any] | None = None
    device: str = "cpu"

    def progress(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` epochs (a no-op when nobody listens)."""
        if self.on_epoch is not None:
            self.on_epoch(done, total)

    @classmethod
    def coerce(cls, ctx: Any, legacy: dict[str, Any], device: str = "cpu") -> FitContext:
        """The context a ``fit`` was given, also when called the old way: ``ctx`` may be a
        ``FitContext``, None, or (old positional call) the ``on_epoch`` callable; ``legacy``
        holds old keywords (``on_epoch``, ``encoders``, ``branch_loss``)."""
        unknown = sorted(set(legacy) - set(LEGACY_KEYWORDS))
        if unknown:
            raise TypeError(f"fit() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                            f"the signature is {NEW_FORM}")
        if isinstance(ctx, FitContext):
            if legacy:
                raise TypeError(f"fit() got both ctx and {', '.join(sorted(legacy))}; put them in the FitContext")
            return ctx
        if ctx is not None:
            if not callable(ctx):
                raise TypeError(f"fit(): ctx must be a mmbench FitContext, got {type(ctx).__name__}")
            legacy = {**legacy, "on_epoch": ctx}
        if legacy:
            warnings.warn(f"passing {', '.join(sorted(legacy))} to a fusion's fit is deprecated (ends "
                          f"{OLD_FIT_REMOVED}); pass ctx=FitContext(...) instead", PluginDeprecationWarning,
                          stacklevel=3)
        return cls(on_epoch=legacy.get("on_epoch"), encoders=dict(legacy.get("encoders") or {}),
                   branch_loss=legacy.get("branch_loss"), device=device)
