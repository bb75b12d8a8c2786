"""Text items as every text encoder reads them: one rule for what counts as missing and
one error for what is not a text."""

from __future__ import annotations

import math
from typing import Any

from mmbench.errors import UserError


def text_or_none(encoder: str, item: Any, index: int) -> str | None:
    """``item`` as a string, or None when it is missing (None / NaN: a sample without the
    modality); anything else is a UserError naming the item and the encoder."""
    if item is None or (isinstance(item, float) and math.isnan(item)):
        return None
    if isinstance(item, str):
        return item
    raise UserError(f"encoder {encoder!r} encodes texts, but item {index} is a {type(item).__name__} "
                    f"({item!r:.60}); give the dataset's text modality as strings")
