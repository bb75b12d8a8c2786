"""The quickstart's site page in a real headless browser: sorting, filtering, tabs, toggles.

Chromium comes from the system's packages (Debian: ``apt-get install chromium``; CI installs
it) and Playwright drives it through ``executable_path``: no browser is ever downloaded
(never ``playwright install``). Where the browser or Playwright is absent the test is skipped
with the reason, except in CI, which sets ``MMBENCH_REQUIRE_BROWSER=1`` so it cannot skip.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from mmbench_reporters.site import HtmlReporter

from mmbench.leaderboard import Leaderboard

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

pytestmark = pytest.mark.slow


def system_chromium() -> str:
    """The system's Chromium ($MMBENCH_CHROMIUM, else on PATH), or skip (fail in CI) saying why."""
    found = os.environ.get("MMBENCH_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    problem = None
    if not found:
        problem = "no system Chromium (apt-get install chromium, or set MMBENCH_CHROMIUM)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed (pip install -e '.[test]')"
    if problem:
        if os.environ.get("MMBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MMBENCH_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    return found


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    executable = system_chromium()
    shutil.copytree(ROOT / "leaderboard" / "quickstart", tmp_path / "site" / "quickstart")
    board = Leaderboard.from_dict(json.loads((ROOT / "leaderboard" / "quickstart.json").read_text()))
    HtmlReporter().write(board, tmp_path / "site")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto((tmp_path / "site" / "quickstart.html").as_uri())
        yield tab
        assert errors == [], errors
        browser.close()


def column(page, table: str, index: int) -> list[str]:
    """A column's visible cells, top to bottom."""
    return page.eval_on_selector_all(
        f"#{table} tbody tr:not([hidden])", f"rows => rows.map(r => r.cells[{index}].textContent.trim())")


def test_sort_filter_tabs_and_toggles_in_a_real_browser(page, tmp_path):
    # the committed board's brset_like rows as written (ranked) and its probe's label (the
    # probe's swept step is part of the label and changes with the suite)
    board = json.loads((ROOT / "leaderboard" / "quickstart.json").read_text())
    [brset] = [d for d in board["datasets"] if d["dataset"] == "brset_like"]
    ranked = [row["fusion"] for row in brset["rows"]]
    probe = next(f for f in ranked if f.startswith("linear_probe"))
    fastest = min(brset["rows"], key=lambda row: row["metrics"]["train_s_per_epoch"]["mean"])["fusion"]
    # tabs: one dataset at a time once the script runs
    assert page.is_visible("#t-across") and not page.is_visible("#t-d0")
    page.click("#tabs button:has-text('brset_like')")
    assert page.is_visible("#t-d0") and not page.is_visible("#t-across")

    # sort: ranked by auroc as written; a click on "fusion" sorts by name, a second reverses it
    fusions = column(page, "t-d0", 3)
    assert fusions == ranked and sorted(ranked) == ["early", "late_joint", probe]
    page.click("#t-d0 th:text-is('fusion')")
    assert column(page, "t-d0", 3) == ["early", "late_joint", probe]
    page.click("#t-d0 th:text-is('fusion')")
    assert column(page, "t-d0", 3) == [probe, "late_joint", "early"]
    # a numeric column sorts by value, not by text: fastest training first
    page.click("#t-d0 th:text-is('train_s_per_epoch')")
    times = [float(t.split(" ± ")[0]) for t in column(page, "t-d0", 9)]
    assert times == sorted(times) and column(page, "t-d0", 3)[0] == fastest

    # filter: words of the encoder / alignment / fusion text, every table at once
    page.fill("#filter", "late")
    assert column(page, "t-d0", 3) == ["late_joint"]
    assert page.text_content("#t-d0-count") == "1 of 3 rows"
    page.click("#tabs button:has-text('Across datasets')")
    assert column(page, "t-across", 1) == ["- / - / late_joint", "color_histogram+tabular+tfidf_svd / - / late_joint"]
    page.fill("#filter", "tfidf linear")
    assert column(page, "t-across", 1) == [f"color_histogram+tabular+tfidf_svd / - / {probe}"]
    page.fill("#filter", "")
    assert len(column(page, "t-across", 1)) == 6

    # toggle a metric: its header and cells disappear, and come back
    page.click("#tabs button:has-text('brset_like')")
    page.uncheck("#metrics input[value=f1]")
    assert not page.is_visible("#t-d0 th:text-is('f1')")
    page.check("#metrics input[value=f1]")
    assert page.is_visible("#t-d0 th:text-is('f1')")

    shot = tmp_path / "quickstart.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readable_with_javascript_off(tmp_path):
    from playwright.sync_api import sync_playwright

    executable = system_chromium()
    board = Leaderboard.from_dict(json.loads((ROOT / "leaderboard" / "quickstart.json").read_text()))
    HtmlReporter().write(board, tmp_path)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        tab = browser.new_page(java_script_enabled=False)
        tab.goto((tmp_path / "quickstart.html").as_uri())
        # every table shown at once, the controls that need the script hidden
        assert all(tab.is_visible(f"#t-d{i}") for i in range(len(board.datasets)))
        assert tab.is_visible("#t-across") and not tab.is_visible("#controls")
        browser.close()
