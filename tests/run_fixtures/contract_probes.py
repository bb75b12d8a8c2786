"""Plugins that record what the runner hands them: the raw-input and encoder contracts."""

import numpy as np

from mmbench import hookimpl
from mmbench.plugin import Encoder, Fusion
from mmbench.train_config import FitReport

#: what the probes saw in the last run of this process
SEEN: dict = {}


class BatchedLength(Encoder):
    """Text length, encoded in batches of 16 that report progress like a neural encoder."""

    name = "batched_length"
    modalities = ("text",)

    def encode(self, modality, items):
        items = list(items)
        out = np.zeros((len(items), 1), dtype=np.float32)
        for start in range(0, len(items), 16):
            out[start:start + 16, 0] = [len(t) for t in items[start:start + 16]]
            self.advance(len(items[start:start + 16]))
        SEEN.setdefault("devices", []).append(self.device)
        return out


class RawProbe(Fusion):
    """Consumes raw items; predicts positive for texts longer than the train median."""

    name = "raw_probe"
    consumes = "raw"

    def fit(self, train, val, config, ctx=None):
        SEEN["raw"] = {m: type(v[0]).__name__ for m, v in train.raw.items()}
        SEEN["features"] = sorted(train.features)
        SEEN["encoders"] = {m: type(e).__name__ for m, e in ctx.encoders.items()}
        SEEN["fusion_device"] = ctx.device
        lengths = [len(t) for t in train.raw["text"]]
        self.threshold = (min(lengths) + max(lengths)) / 2
        return FitReport(epochs_run=1)

    def predict_proba(self, data):
        return np.array([float(len(t) > self.threshold) for t in data.raw["text"]])


class EncoderUser(Fusion):
    """Takes embeddings and, because it asks for them, the encoder objects."""

    name = "encoder_user"
    uses_encoders = True

    def fit(self, train, val, config, ctx=None):
        SEEN["encoders"] = {m: type(e).__name__ for m, e in ctx.encoders.items()}
        SEEN["features"] = sorted(train.features)
        return FitReport(epochs_run=1)

    def predict_proba(self, data):
        return np.full(len(data), 0.5)


@hookimpl
def mmbench_register_fusions():
    return [RawProbe, EncoderUser]


@hookimpl
def mmbench_register_encoders():
    return [BatchedLength]
