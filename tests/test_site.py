"""The static leaderboard site: every number in the HTML, hostile labels escaped, stable bytes,
no network, an index of every suite."""

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from mmbench_reporters.site import GENERATED, INDEX, HtmlReporter, render

from mmbench.errors import UserError
from mmbench.leaderboard import Leaderboard

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<script>alert('x')</script>&\"<img src=x onerror=alert(1)>"


def quickstart() -> Leaderboard:
    """The committed quickstart leaderboard: what the README's site page is built from."""
    return Leaderboard.from_dict(json.loads((ROOT / "leaderboard" / "quickstart.json").read_text()))


class Tables(HTMLParser):
    """Rows of every table as the browser sees them with JavaScript off, and every tag."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._table = self._row = self._cell = None
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", str(len(self.tables))), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "script":
            self._in_script = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_script:
            self.scripts.append(data)


def parse(text: str) -> Tables:
    parser = Tables()
    parser.feed(text)
    return parser


def test_every_configuration_and_number_is_in_the_html_without_javascript():
    board = quickstart()
    page = parse(render(board))
    brset = board.datasets[0]
    table = page.tables["t-d0"]
    assert table[0][:6] == ["rank", "encoder", "alignment", "fusion", "n", "auroc"]
    assert len(table) == 1 + len(brset.rows)
    best = brset.rows[0]
    auroc = best.stats["auroc"]
    assert table[1][3] == best.fusion
    assert table[1][5].startswith(f"{auroc.mean:.3f} ± {auroc.std:.3f} [{best.ci[0]:.3f}, {best.ci[1]:.3f}]")
    # the across-datasets table holds every configuration, with the "not different" marks
    across = page.tables["t-across"]
    assert [r[1] for r in across[1:]] == [o.config for o in board.overall]
    marked = {(row.config, d.dataset) for d in board.datasets for row in d.rows if row.not_different}
    assert marked and sum(cell.endswith("≈") for r in across[1:] for cell in r) == len(marked)


def test_same_leaderboard_gives_byte_identical_pages(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        shutil.copytree(ROOT / "leaderboard" / "quickstart", out / "quickstart")
        HtmlReporter().write(quickstart(), out)
    for name in ("quickstart.html", INDEX):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_hostile_labels_are_text_not_markup(tmp_path):
    board = quickstart()
    board.suite = "evil"
    board.description = HOSTILE
    row = board.datasets[0].rows[0]
    row.fusion = HOSTILE
    board.datasets[0].dataset = HOSTILE
    board.environments = [HOSTILE]
    board.failed = [{"dataset": HOSTILE, "config": HOSTILE, "seed": 0, "error": HOSTILE}]
    row.references = {"auroc": {"value": 0.9, "source": HOSTILE}}
    HtmlReporter().write(board, tmp_path)
    for name in ("evil.html", INDEX):
        text = (tmp_path / name).read_text()
        assert HOSTILE not in text and "<script>alert" not in text and "<img src=x" not in text
        page = parse(text)
        assert [tag for tag, _ in page.tags].count("script") == (1 if name == "evil.html" else 0)
        assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    page = parse((tmp_path / "evil.html").read_text())
    assert page.tables["t-d0"][1][3] == HOSTILE  # shown to the reader exactly as written
    index = parse((tmp_path / INDEX).read_text())
    assert index.tables["0"][1] == ["evil", HOSTILE]


def test_no_network_and_plots_linked_relatively(tmp_path):
    shutil.copytree(ROOT / "leaderboard" / "quickstart", tmp_path / "quickstart")
    (tmp_path / "history" / "quickstart").mkdir(parents=True)
    (tmp_path / "history" / "quickstart" / "auroc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    HtmlReporter().write(quickstart(), tmp_path)
    page = parse((tmp_path / "quickstart.html").read_text())
    links = [attrs.get("src") or attrs.get("href") for tag, attrs in page.tags
             if tag in ("img", "a", "link", "script") and (attrs.get("src") or attrs.get("href"))]
    assert not any(re.match(r"[a-z]+:|//", link) for link in links), links
    images = sorted(attrs["src"] for tag, attrs in page.tags if tag == "img")
    assert images == ["history/quickstart/auroc.png", *sorted(
        f"quickstart/{p.name}" for p in (ROOT / "leaderboard" / "quickstart").glob("*.png"))]
    assert all((tmp_path / src).is_file() for src in images)
    assert not any(tag in ("link", "iframe") for tag, _ in page.tags)
    assert all(attrs == {} for tag, attrs in page.tags if tag == "script")  # inline only, no src


def test_the_papers_numbers_sit_beside_ours():
    board = quickstart()
    row = board.datasets[0].rows[1]
    row.references = {"auroc": {"value": 0.8766, "source": "Restrepo et al., Table 2"}}
    page = parse(render(board))
    table = page.tables["t-d0"]
    column = table[0].index("auroc (paper)")
    assert table[0][column - 1] == "auroc"
    assert [r[column] for r in table[1:]] == ["", "0.877", ""]
    assert "Restrepo et al., Table 2" in render(board)


def test_index_lists_every_generated_page_and_nothing_else(tmp_path):
    for name in ("zeta", "alpha"):
        board = quickstart()
        board.suite, board.description = name, f"suite {name}"
        HtmlReporter().write(board, tmp_path)
    (tmp_path / "notes.html").write_text("<html>hand written</html>")
    index = parse((tmp_path / INDEX).read_text())
    assert index.tables["0"][1:] == [["alpha", "suite alpha"], ["zeta", "suite zeta"]]
    assert GENERATED in (tmp_path / "alpha.html").read_text()


@pytest.mark.parametrize("columns", [["auroc"], ["auroc", "f1", "peak_rss_mb"]])
def test_metric_headers_carry_their_metric_for_the_toggles(columns):
    board = quickstart()
    board.columns = columns
    page = parse(render(board))
    metrics = [attrs["data-metric"] for tag, attrs in page.tags if tag == "th" and "data-metric" in attrs]
    assert metrics == columns * len(board.datasets)


@pytest.mark.parametrize("name", ["quickstart.html", INDEX])
def test_a_hand_written_page_is_never_overwritten(tmp_path, name):
    mine = "<html><body>my own landing page</body></html>"
    (tmp_path / name).write_text(mine)
    with pytest.raises(UserError, match=f"{name} exists and was not generated by mmbench"):
        HtmlReporter().write(quickstart(), tmp_path)
    assert (tmp_path / name).read_text() == mine
    (tmp_path / name).unlink()
    HtmlReporter().write(quickstart(), tmp_path)
    HtmlReporter().write(quickstart(), tmp_path)  # its own pages it rewrites
