"""One plugin class per kind of contract breach the registry must catch, next to a good one."""

import numpy as np

from mmbench import hookimpl
from mmbench.plugin import Alignment, Dataset, Fusion, Reporter
from mmbench.torch_fusion import TorchFusion
from mmbench.train_config import FitReport


class Misspelled(TorchFusion):
    """Its build_model is misspelled."""

    name = "misspelled"

    def biuld_model(self, in_dims, n_outputs):
        raise AssertionError("never called")


class RowsConsumer(Fusion):
    """Declares an input kind mmbench cannot hand it."""

    name = "rows_consumer"
    consumes = "rows"

    def fit(self, train, val, config, ctx=None):
        return FitReport()

    def predict_proba(self, data):
        return np.full(len(data), 0.5)


class StringFlag(Fusion):
    """A capability given as a string instead of a bool."""

    name = "string_flag"
    handles_missing = "yes"

    def fit(self, train, val, config, ctx=None):
        return FitReport()

    def predict_proba(self, data):
        return np.full(len(data), 0.5)


class NoLoad(Dataset):
    """Defines laod instead of load."""

    name = "no_load"

    def laod(self):
        raise AssertionError("never called")


class NoTransform(Alignment):
    """Forgets transform."""

    name = "no_transform"


class NoWrite(Reporter):
    """Forgets write."""

    name = "no_write"


class Fine(Fusion):
    """A correct sibling: it still registers."""

    name = "fine"

    def fit(self, train, val, config, ctx=None):
        return FitReport()

    def predict_proba(self, data):
        return np.full(len(data), 0.5)


@hookimpl
def mmbench_register_fusions():
    return [Misspelled, RowsConsumer, StringFlag, Fine]


@hookimpl
def mmbench_register_datasets():
    return [NoLoad]


@hookimpl
def mmbench_register_alignments():
    return [NoTransform]


@hookimpl
def mmbench_register_reporters():
    return [NoWrite]
