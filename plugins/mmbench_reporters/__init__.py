"""Built-in leaderboard reporters: markdown (with an index), CSV and JSON."""

from mmbench import hookimpl
from mmbench_reporters.tables import CsvReporter, JsonReporter, MarkdownReporter


@hookimpl
def mmbench_register_reporters():
    return [MarkdownReporter, CsvReporter, JsonReporter]
