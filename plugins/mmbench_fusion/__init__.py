"""Built-in fusion methods: each module lists its plugin classes in ``FUSIONS``."""

from mmbench import hookimpl
from mmbench_fusion import attention, baselines, finetune, late_voting, mlp, omnifuse, zero_shot


@hookimpl
def mmbench_register_fusions():
    return [*mlp.FUSIONS, *baselines.FUSIONS, *late_voting.FUSIONS, *attention.FUSIONS, *omnifuse.FUSIONS,
            *zero_shot.FUSIONS, *finetune.FUSIONS]
