"""Plugins at the edges of the contract: a bad default, a dataset that fails while
preparing, an encoder that declares no modalities, a default data root that is missing."""

from pathlib import Path

from mmbench import hookimpl
from mmbench.params import Param
from mmbench.plugin import Dataset, Encoder, Fusion


class BadDefault(Fusion):
    """Its default is not of its declared type."""

    name = "bad_default"
    parameters = (Param("hidden", int, "sixty-four", "hidden units"),)


class FailsToPrepare(Dataset):
    """Raises an ordinary exception from fingerprint()."""

    name = "fails_to_prepare"
    task_kinds = ("binary",)

    def fingerprint(self):
        raise ValueError("cannot read the index file")

    def load(self):
        raise NotImplementedError("a registry fixture: never loaded")


class DefaultRoot(Dataset):
    """Reads a folder that by default is missing."""

    name = "default_root"
    task_kinds = ("binary",)
    parameters = (Param("root", Path, "~/no-such-mmbench-data", "data folder", must_exist=True),)

    def load(self):
        raise NotImplementedError("a registry fixture: never loaded")


class Anything(Encoder):
    """Declares no modalities."""

    name = "anything"

    def encode(self, modality, items):
        raise NotImplementedError("a registry fixture: never encodes")


@hookimpl
def mmbench_register_fusions():
    return [BadDefault]


@hookimpl
def mmbench_register_datasets():
    return [FailsToPrepare, DefaultRoot]


@hookimpl
def mmbench_register_encoders():
    return [Anything]
