"""Built-in alignments: the identity, the modality-gap paper's gap shift (with Restrepo et al.'s regulariser)
and Restrepo et al.'s noise injection. Kept cheap to import: numpy only."""

from mmbench import hookimpl
from mmbench_alignment.gap_shift import GapShift
from mmbench_alignment.identity import NoAlignment
from mmbench_alignment.noise import GaussianNoise


@hookimpl
def mmbench_register_alignments():
    return [NoAlignment, GapShift, GaussianNoise]
