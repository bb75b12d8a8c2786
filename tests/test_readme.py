"""The README's results section follows the committed leaderboard, and CI can tell when not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SUITE = """
[suite]
name = "demo"
seeds = [0, 1]
[[datasets]]
name = "synthetic"
label = "first"
n_samples = 120
dims = [8, 8]
[[datasets]]
name = "synthetic"
label = "second"
n_samples = 120
dims = [8, 8]
signal = [0.3, 0.0]
[[fusions]]
name = "early"
train = { epochs = 3 }
[[fusions]]
name = "linear_probe"
train = { epochs = 3 }
[report]
bootstrap = 50
"""
README = """# My project

Intro.

<!-- mmbench:leaderboard demo -->
old text
<!-- /mmbench:leaderboard demo -->

More.
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A suite run once (results + leaderboard files); tests copy it."""
    import os

    from mmbench.cli import main

    folder = tmp_path_factory.mktemp("readme-suite")
    (folder / "suite.toml").write_text(SUITE)
    before = Path.cwd()
    os.chdir(folder)
    try:
        assert main(["run", "suite.toml"]) == 0
    finally:
        os.chdir(before)
    return folder


@pytest.fixture
def project(finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(finished, tmp_path / "p")
    (tmp_path / "p" / "README.md").write_text(README)
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


def test_update_readme_replaces_only_the_marked_section(project, run_cli):
    result = run_cli("leaderboard", "suite.toml", "--update-readme")
    text = (project / "README.md").read_text()

    assert result.code == 0
    assert "old text" not in text
    assert text.startswith("# My project\n\nIntro.\n\n<!-- mmbench:leaderboard demo -->\nSuite `demo`")
    assert text.endswith("<!-- /mmbench:leaderboard demo -->\n\nMore.\n")
    assert "[leaderboard/demo.md](leaderboard/demo.md)" in text
    assert "| rank   | configuration" in text and "| first" in text and "| second" in text


def test_check_readme_passes_when_current_and_fails_with_a_diff_when_stale(project, run_cli):
    run_cli("leaderboard", "suite.toml", "--update-readme")
    assert run_cli("leaderboard", "suite.toml", "--check-readme").code == 0

    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("- / - / early", "- / - / earlier"))
    stale = run_cli("leaderboard", "suite.toml", "--check-readme")

    assert stale.code == 1
    assert "-| " in stale.out and "earlier" in stale.out and "+| " in stale.out
    assert "--update-readme README.md" in stale.err + stale.out


def test_the_check_reads_the_committed_json_and_needs_no_results(project, run_cli):
    run_cli("leaderboard", "suite.toml", "--update-readme")
    shutil.rmtree(project / "results")

    assert run_cli("leaderboard", "suite.toml", "--check-readme").code == 0


def test_the_same_leaderboard_gives_the_same_section(project, run_cli):
    run_cli("leaderboard", "suite.toml", "--update-readme")
    first = (project / "README.md").read_bytes()
    run_cli("leaderboard", "suite.toml", "--update-readme")

    assert (project / "README.md").read_bytes() == first


def test_a_readme_without_markers_says_which_lines_to_add(project, run_cli):
    (project / "README.md").write_text("# nothing marked\n")

    result = run_cli("leaderboard", "suite.toml", "--update-readme")

    assert result.code == 2
    assert "<!-- mmbench:leaderboard demo -->" in result.err
    assert "<!-- /mmbench:leaderboard demo -->" in result.err


def test_the_suite_the_readme_shows_is_valid_as_written(tmp_path, run_cli):
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (example,) = re.findall(r"```toml\n(\[suite\]\nname = \"my_suite\".*?)```", readme, flags=re.S)
    path = tmp_path / "my_suite.toml"
    path.write_text(example)

    result = run_cli("validate", path)

    assert result.code == 0, result.err
    assert "suite 'my_suite'" in result.out
