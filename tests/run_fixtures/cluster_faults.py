"""Faults the Dask executor must survive: fusions that kill their process, as an
out-of-memory kill or a native crash would (retried on a fresh worker, then recorded as
failed), and an encoder that raises (the extraction task fails, so do its runs)."""

import os
from pathlib import Path

import numpy as np

from mmbench import hookimpl
from mmbench.params import Param
from mmbench.plugin import Encoder, Fusion
from mmbench.train_config import FitReport


class DiesOnce(Fusion):
    """Kills its process on the first attempt (leaving ``marker``), then predicts 0.5."""

    name = "dies_once"
    parameters = (Param("marker", str, Param.REQUIRED, "file whose absence makes fit() kill the process"),)

    def fit(self, train, val, config, ctx=None):
        marker = Path(self.params["marker"])
        if not marker.exists():
            marker.write_text("died once\n")
            os._exit(1)
        return FitReport(epochs_run=1)

    def predict_proba(self, data):
        return np.full(len(data), 0.5)


class AlwaysDies(Fusion):
    """Kills its process every time."""

    name = "always_dies"

    def fit(self, train, val, config, ctx=None):
        os._exit(1)

    def predict_proba(self, data):
        raise AssertionError("never reached: fit kills the process")


class FailsToEncode(Encoder):
    """Raises on every text."""

    name = "fails_to_encode"
    modalities = ("text",)

    def encode(self, modality, items):
        raise RuntimeError("this encoder cannot encode anything")


@hookimpl
def mmbench_register_fusions():
    return [DiesOnce, AlwaysDies]


@hookimpl
def mmbench_register_encoders():
    return [FailsToEncode]
