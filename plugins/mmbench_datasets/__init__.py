"""Built-in datasets."""

from mmbench import hookimpl
from mmbench_datasets.embeddings_table import EmbeddingsTable
from mmbench_datasets.synthetic import Synthetic
from mmbench_datasets.synthetic_raw import SyntheticRaw


@hookimpl
def mmbench_register_datasets():
    return [Synthetic, SyntheticRaw, EmbeddingsTable]
