"""An example mmbench plugin: the ``gated_sum`` fusion and the ``xor_blobs`` dataset.

This module is what the ``mmbench`` entry point names. It must stay cheap to import
(no torch): ``mmbench plugins`` and ``mmbench validate`` import it to read metadata.
"""

from mmbench import hookimpl
from mmbench_plugin_example.dataset import XorBlobs
from mmbench_plugin_example.fusion import GatedSum


@hookimpl
def mmbench_register_fusions():
    return [GatedSum]


@hookimpl
def mmbench_register_datasets():
    return [XorBlobs]
