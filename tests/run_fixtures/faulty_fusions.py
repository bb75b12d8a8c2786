"""Fusions that misbehave on purpose, to show a bad run is recorded and the suite goes on."""

import os
import signal
import time
from pathlib import Path

import numpy as np

from mmbench import hookimpl
from mmbench.params import Param
from mmbench.plugin import Encoder, Fusion
from mmbench.train_config import FitReport


class Explodes(Fusion):
    """Raises during fit."""

    name = "explodes"

    def fit(self, train, val, config, ctx=None):
        raise RuntimeError("boom: this fusion always fails")

    def predict_proba(self, data):
        raise AssertionError("never reached: fit fails")


class WrongShape(Fusion):
    """Returns probabilities of the wrong shape."""

    name = "wrong_shape"

    def fit(self, train, val, config, ctx=None):
        return FitReport()

    def predict_proba(self, data):
        return np.zeros((len(data), 7))


class Prior(Fusion):
    """Predicts the training class frequencies for every sample (a constant model)."""

    name = "prior"
    parameters = (Param("smoothing", float, 0.0, "added to each class count", min=0.0),)

    def fit(self, train, val, config, ctx=None):
        labels = np.asarray(train.labels)
        if train.task == "multiclass":
            counts = np.bincount(labels, minlength=len(train.classes)) + self.params["smoothing"]
            self.prior = counts / counts.sum()
        else:
            self.prior = labels.mean(axis=0)
        return FitReport(epochs_run=1)

    def predict_proba(self, data):
        return np.tile(self.prior, (len(data), 1)) if np.ndim(self.prior) else np.full(len(data), self.prior)


class Sleeps(Prior):
    """The prior, after sleeping ``seconds`` in fit (a run that is too slow)."""

    name = "sleeps"
    parameters = Prior.parameters + (Param("seconds", float, 60.0, "how long fit() sleeps", min=0.0),
                                     Param("started", str, "", "folder where fit() leaves <pid>.started"))

    def fit(self, train, val, config, ctx=None):
        if self.params["started"]:
            (Path(self.params["started"]) / f"{os.getpid()}.started").touch()
        time.sleep(self.params["seconds"])
        return super().fit(train, val, config)


class Stubborn(Sleeps):
    """Sleeps deaf to SIGTERM, as a run stuck in native code is: the pool's stop waits for
    it until SIGKILL. Leaves <pid>.terminated in ``started`` when the SIGTERM comes."""

    name = "stubborn"

    def fit(self, train, val, config, ctx=None):
        def note(signum, frame):
            (Path(self.params["started"]) / f"{os.getpid()}.terminated").touch()

        signal.signal(signal.SIGTERM, note)
        return super().fit(train, val, config)


class SlowExit(Prior):
    """The prior, whose process then takes 5 s to exit (an atexit handler, as torch's
    compile-time report can be): the pool's stop signals it while it shuts down."""

    name = "slow_exit"

    def fit(self, train, val, config, ctx=None):
        import atexit

        atexit.register(time.sleep, 5.0)
        return super().fit(train, val, config)


class Segfaults(Fusion):
    """Crashes its process with SIGSEGV in fit, as a bug in native code would."""

    name = "segfaults"

    def fit(self, train, val, config, ctx=None):
        os.kill(os.getpid(), signal.SIGSEGV)

    def predict_proba(self, data):  # never reached
        return np.full(len(data), 0.5)


class TextLength(Encoder):
    """Encodes text as (length, vowel count): enough to test the encoder path."""

    name = "text_length"
    modalities = ("text",)
    fitted = True  # fit() learns the scale from the train split

    def fit(self, modality, items):
        self.scale = max(len(t) for t in items)

    def encode(self, modality, items):
        return np.array([[len(t) / self.scale, sum(c in "aeiou" for c in t) / self.scale] for t in items])


@hookimpl
def mmbench_register_fusions():
    return [Explodes, WrongShape, Prior, Sleeps, Stubborn, SlowExit, Segfaults]


@hookimpl
def mmbench_register_encoders():
    return [TextLength]
