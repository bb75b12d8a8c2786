"""The reference point every alignment is compared against."""

from mmbench.data import SplitData
from mmbench.plugin import Alignment


class NoAlignment(Alignment):
    """Leave the embeddings as the encoders produced them (lambda = 0 in the modality-gap paper)."""

    name = "none"
    identity = True

    def transform(self, data: SplitData) -> SplitData:
        return data
