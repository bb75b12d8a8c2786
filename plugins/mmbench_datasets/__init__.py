"""Built-in datasets."""

from mmbench import hookimpl
from mmbench_datasets.synthetic import Synthetic


@hookimpl
def mmbench_register_datasets():
    return [Synthetic]
