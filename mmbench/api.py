"""The public plugin API in one module: import what a plugin needs from here.

Everything re-exported below is covered by the deprecation rule of docs/plugins.md
("Stability"): a name or documented signature that changes keeps working, with a
``PluginDeprecationWarning`` naming the new form, until the date given there. The modules
these names live in are the implementation and may move; this module's names do not.
Importing it is cheap (no torch).
"""

from mmbench.data import TASK_KINDS, DataError, DatasetTable, Encoded, SplitData, TokenSequence
from mmbench.errors import PluginDeprecationWarning, UserError
from mmbench.fit_context import FitContext
from mmbench.hookspecs import hookimpl
from mmbench.params import Param
from mmbench.plugin import Alignment, Dataset, Encoder, Fusion, Plugin, Reporter
from mmbench.torch_fusion import TorchFusion
from mmbench.train_config import FitReport, TrainConfig
from mmbench.trainable import TrainableEncoder

__all__ = [
    "TASK_KINDS", "Alignment", "DataError", "Dataset", "DatasetTable", "Encoded", "Encoder", "FitContext",
    "FitReport", "Fusion", "Param", "Plugin", "PluginDeprecationWarning", "Reporter", "SplitData",
    "TokenSequence", "TorchFusion", "TrainConfig", "TrainableEncoder", "UserError", "hookimpl",
]
