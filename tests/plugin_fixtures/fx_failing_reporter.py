"""A reporter that raises while writing, as a buggy third-party reporter would."""

from mmbench import hookimpl
from mmbench.plugin import Reporter


class Explodes(Reporter):
    """Raises on every leaderboard."""

    name = "explodes"

    def write(self, board, out_dir):
        raise ValueError("cannot format this leaderboard")


@hookimpl
def mmbench_register_reporters():
    return [Explodes]
