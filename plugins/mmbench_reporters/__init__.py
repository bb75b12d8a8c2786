"""Built-in leaderboard reporters: markdown (with an index), CSV, JSON, PNG plots and the HTML site."""

from mmbench import hookimpl
from mmbench_reporters.plots import PlotsReporter
from mmbench_reporters.site import HtmlReporter
from mmbench_reporters.tables import CsvReporter, JsonReporter, MarkdownReporter


@hookimpl
def mmbench_register_reporters():
    return [MarkdownReporter, CsvReporter, JsonReporter, PlotsReporter, HtmlReporter]
