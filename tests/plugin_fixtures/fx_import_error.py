"""A plugin whose import fails."""

raise RuntimeError("fx_import_error cannot be imported")
