"""A dataset with a raw text modality, which needs an encoder before fusion."""

import numpy as np

from mmbench import hookimpl
from mmbench.data import DatasetTable
from mmbench.plugin import Dataset


class WordsAndVectors(Dataset):
    """Positive samples have long texts; the vector modality carries weak signal."""

    name = "words_and_vectors"
    task_kinds = ("binary",)

    def load(self):
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 2, 200)
        texts = ["a long positive sentence with many words" if y else "short" for y in labels]
        vectors = rng.standard_normal((200, 4)) + labels[:, None] * 0.5
        return DatasetTable(ids=np.arange(200), labels=labels, task="binary", classes=("neg", "pos"),
                            modalities={"text": texts, "tabular": vectors})


@hookimpl
def mmbench_register_datasets():
    return [WordsAndVectors]
