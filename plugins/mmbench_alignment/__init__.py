"""Built-in alignments."""

from mmbench import hookimpl
from mmbench_alignment.identity import NoAlignment


@hookimpl
def mmbench_register_alignments():
    return [NoAlignment]
