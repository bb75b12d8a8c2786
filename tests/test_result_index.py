"""The results index: a rebuild reads and bootstraps only what changed, and never changes a number."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import TINY_SUITE

from mmbench import bootstrap, leaderboard, result_index
from mmbench.registry import load_registry
from mmbench.suite import load_suite



@pytest.fixture
def suite(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SUITE)
    assert run_cli("run", path).code == 0
    return load_suite(path, load_registry())


def counting(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def text(board) -> str:
    return json.dumps(board.to_dict(), sort_keys=True)


def test_a_rebuild_reads_and_bootstraps_only_the_changed_files(suite, monkeypatch):
    first, _ = leaderboard.build(suite)  # `run` already wrote the index: this build is served by it
    reads = counting(monkeypatch, result_index, "check_result")
    boots = counting(monkeypatch, bootstrap, "replicates")
    again, _ = leaderboard.build(suite)
    assert reads == [] and boots == []
    assert text(again) == text(first)
    # one result rewritten (same bytes, new mtime): that file alone is read and bootstrapped again
    one = sorted(suite.results_dir.glob("*.json"))[0]
    os.utime(one, ns=(one.stat().st_atime_ns, one.stat().st_mtime_ns + 1_000_000))
    third, _ = leaderboard.build(suite)
    assert [Path(a[0]).name for a in reads] == [one.name] and len(boots) == 1
    assert text(third) == text(first)


def test_the_index_changes_no_number_and_a_damaged_index_is_rebuilt(suite):
    with_index, _ = leaderboard.build(suite)
    folder = suite.results_dir / result_index.FOLDER
    for path in folder.iterdir():
        path.write_bytes(b"\x00garbage")
    damaged, notes = leaderboard.build(suite)
    assert text(damaged) == text(with_index) and notes == []
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    without, _ = leaderboard.build(suite)
    assert text(without) == text(with_index)
    assert json.loads((folder / result_index.SUMMARIES).read_text())["version"] == result_index.VERSION


def test_a_result_changed_or_removed_behind_the_index_is_seen(suite):
    before, _ = leaderboard.build(suite)
    files = sorted(suite.results_dir.glob("*.json"))
    data = json.loads(files[0].read_text())
    data["metrics"]["auroc"] = 0.123456
    files[0].write_text(json.dumps(data))  # another size: re-read whatever the mtime resolution
    files[1].unlink()
    after, _ = leaderboard.build(suite)
    assert sum(len(row.seeds) for d in after.datasets for row in d.rows) == len(files) - 1
    assert text(after) != text(before)
    summaries = json.loads((suite.results_dir / result_index.FOLDER / result_index.SUMMARIES).read_text())["files"]
    assert files[1].name not in summaries and summaries[files[0].name][1]["metrics"]["auroc"] == 0.123456
    # the same as a build from the files alone
    for path in (suite.results_dir / result_index.FOLDER).iterdir():
        path.unlink()
    scratch, _ = leaderboard.build(suite)
    assert text(scratch) == text(after)


def test_the_terminal_shows_the_first_rows_and_says_where_the_rest_are(suite, run_cli):
    shown = run_cli("leaderboard", suite.path, "--rows", "1")
    assert shown.code == 0, shown.err
    lines = " ".join(shown.out.split())
    dataset = suite.runs()[0].labels()["dataset"]
    assert f"1 more row(s) of {dataset} in leaderboard/tiny.md; --rows all prints them" in lines
    table = lines.split("more row(s)")[0]
    assert table.count("early(") + table.count("late_joint(") == 1  # one row of two
    every = " ".join(run_cli("leaderboard", suite.path, "--rows", "all").out.split()).split(" wrote ")[0]
    assert "more row(s)" not in every and "early(" in every and "late_joint(" in every
    with pytest.raises(SystemExit) as refused:  # argparse: usage and the reason, exit 2
        run_cli("leaderboard", suite.path, "--rows", "0")
    assert refused.value.code == 2
