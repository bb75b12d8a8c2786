"""Built-in datasets: generated data for tests and method checks, the papers' real
datasets read from the folders users downloaded (docs/datasets.md), and two generic
loaders (`table` for any CSV / Parquet of samples, `embeddings_table` for precomputed
vectors)."""

from mmbench import hookimpl
from mmbench_datasets.brset import Brset, Mbrset
from mmbench_datasets.coco_qa import CocoQa
from mmbench_datasets.daquar import Daquar
from mmbench_datasets.embeddings_table import EmbeddingsTable
from mmbench_datasets.fakeddit import Fakeddit
from mmbench_datasets.ham10000 import Ham10000
from mmbench_datasets.mimic_cxr import MimicCxr
from mmbench_datasets.mimic_mortality import MimicMortality
from mmbench_datasets.mvsa import MvsaMultiple, MvsaSingle
from mmbench_datasets.pairdx import PairDx
from mmbench_datasets.recipes5k import Recipes5k
from mmbench_datasets.satellitebench import SatelliteBench
from mmbench_datasets.synthetic import Synthetic
from mmbench_datasets.synthetic_raw import SyntheticRaw
from mmbench_datasets.table import Table


@hookimpl
def mmbench_register_datasets():
    return [Synthetic, SyntheticRaw,  # generated
            Table, EmbeddingsTable,  # any user table
            Brset, Mbrset, Ham10000, MimicCxr, MimicMortality, SatelliteBench, PairDx,  # medical
            MvsaSingle, MvsaMultiple, Fakeddit, CocoQa, Daquar, Recipes5k]  # natural-domain references
