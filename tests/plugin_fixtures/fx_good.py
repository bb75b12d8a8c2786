"""A well-behaved third-party plugin: one fusion and one dataset, both usable in suites."""

from pathlib import Path

from mmbench import hookimpl
from mmbench.params import Param
from mmbench.plugin import Dataset, Fusion

__version__ = "1.2.3"


class BinaryOnly(Fusion):
    """A fusion that only handles binary tasks."""

    name = "binary_only"
    task_kinds = ("binary",)
    parameters = (Param("depth", int, 1, "layers", min=1),)

    def fit(self, train, val, config, ctx=None):
        raise NotImplementedError("a registry fixture: never fitted")

    def predict_proba(self, data):
        raise NotImplementedError("a registry fixture: never fitted")


class FolderData(Dataset):
    """A dataset read from a folder on disk."""

    name = "folder_data"
    task_kinds = ("binary",)
    parameters = (Param("root", Path, Param.REQUIRED, "folder holding the data", must_exist=True),)

    def load(self):
        raise NotImplementedError("a registry fixture: never loaded")


@hookimpl
def mmbench_register_fusions():
    return [BinaryOnly]


@hookimpl
def mmbench_register_datasets():
    return [FolderData]
