"""Built-in alignments: the identity, seed 004's gap shift (with seed 000's regulariser)
and seed 000's noise injection. Kept cheap to import: numpy only."""

from mmbench import hookimpl
from mmbench_alignment.gap_shift import GapShift
from mmbench_alignment.identity import NoAlignment
from mmbench_alignment.noise import GaussianNoise


@hookimpl
def mmbench_register_alignments():
    return [NoAlignment, GapShift, GaussianNoise]
