"""Damaged, copied and hand-edited result files: every reader checks a result against its
schema (``results.result_problem``); an invalid file is named, left out and re-run, and a
run id counts once whatever the file is called."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmbench.results import load_results, result_problem

SUITE = """
[suite]
name = "tiny"
seeds = [0, 1, 2]
threads = 1

[train]
epochs = 2

[[datasets]]
name = "synthetic"
label = "binary"
n_samples = 200
dims = [8, 8]

[[fusions]]
name = "early"
hidden = 8
"""


@pytest.fixture
def finished(tmp_path, monkeypatch, write_suite, run_cli):
    """A suite of three runs (seeds 0, 1, 2), run once: (suite file, results folder, files by seed)."""
    monkeypatch.chdir(tmp_path)
    suite = write_suite(SUITE)
    assert run_cli("run", suite).code == 0
    folder = Path("results", "tiny")  # as the notes name them: relative to the current directory
    by_seed = {json.loads(p.read_text())["spec"]["seed"]: p for p in folder.glob("*.json")}
    assert sorted(by_seed) == [0, 1, 2]
    return suite, folder, by_seed


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def leaderboard_seeds(tmp_path: Path) -> list[list[int]]:
    board = json.loads((tmp_path / "leaderboard" / "tiny.json").read_text())
    return [row["seeds"] for d in board["datasets"] for row in d["rows"]]


@pytest.mark.parametrize("damage, reason", [
    (lambda r: r.pop("metrics"), "no metrics object"),
    (lambda r: r.pop("run_id"), "no run_id"),
    (lambda r: r["metrics"].update(auroc="0.9"), "metric 'auroc' is '0.9', not a number"),
    (lambda r: r.update(labels=None), "no labels object"),
])
def test_a_damaged_result_is_named_left_out_and_run_again(finished, tmp_path, run_cli, damage, reason):
    suite, folder, by_seed = finished
    edit(by_seed[1], damage)

    for command in (("leaderboard", suite), ("results", suite)):
        shown = run_cli(*command)
        assert shown.code == 0, shown.err
        text = " ".join(shown.out.split())  # rich may wrap a long note
        assert f"result file left out: {by_seed[1]}: {reason}; `mmbench run` runs it again" in text
    assert leaderboard_seeds(tmp_path) == [[0, 2]]

    again = run_cli("run", suite)
    assert again.code == 0, again.err
    assert "1 runs finished, 0 failed, 2 skipped" in " ".join(again.out.split())
    assert leaderboard_seeds(tmp_path) == [[0, 1, 2]]
    assert load_results(folder)[1] == []


def test_a_copied_result_counts_once_and_is_named(finished, tmp_path, run_cli):
    suite, folder, by_seed = finished
    copy = by_seed[0].with_name(f"{by_seed[0].stem} (1).json")
    shutil.copy(by_seed[0], copy)
    shown = run_cli("leaderboard", suite)
    assert shown.code == 0
    assert leaderboard_seeds(tmp_path) == [[0, 1, 2]]
    assert f"{copy}: a copy or a renamed file: its run_id is {by_seed[0].stem!r} (only " \
           f"{by_seed[0].name} counts); delete it" in " ".join(shown.out.split())
    # the copy does not stand in for its original either
    by_seed[0].unlink()
    assert run_cli("run", suite).code == 0
    assert by_seed[0].exists() and leaderboard_seeds(tmp_path) == [[0, 1, 2]]


def test_compare_leaves_damaged_results_out_and_says_so(finished, tmp_path, run_cli):
    suite, folder, by_seed = finished
    baseline = Path("baseline")
    shutil.copytree(folder, baseline)
    edit(by_seed[2], lambda r: r["metrics"].update(auroc=[1]))
    shown = run_cli("compare", baseline, folder)
    assert shown.code == 0, shown.err
    assert f"result file left out: {by_seed[2]}: metric 'auroc' is [1], not a number" in " ".join(shown.out.split())


def test_the_schema_check_accepts_what_run_writes_and_names_what_is_wrong(finished):
    _, _, by_seed = finished
    good = json.loads(by_seed[0].read_text())
    assert result_problem(good, by_seed[0].name) is None
    assert result_problem({**good, "status": "done"}) == "status is 'done', not 'ok' or 'failed'"
    assert result_problem({**good, "schema_version": 0}) == "schema_version is 0, this mmbench reads 1"
    assert result_problem({**good, "spec": {**good["spec"], "seed": True}}) == "spec.seed is not an integer"
    assert result_problem({**good, "status": "failed", "error": None}) == "a failed run without an error message"
    assert result_problem([good]) == "not a JSON object but a list"
    assert result_problem(good, "other.json").startswith("a copy or a renamed file")


def test_a_failed_runs_message_keeps_its_exception_type_everywhere(tmp_path, monkeypatch, write_suite, run_cli,
                                                                   use_plugins):
    use_plugins("mmbench,faulty_fusions")
    monkeypatch.chdir(tmp_path)
    suite = write_suite(SUITE.replace("seeds = [0, 1, 2]", "seeds = [0]") + '\n[[fusions]]\nname = "explodes"\n')
    ran = run_cli("run", suite)
    assert ran.code == 1
    shown = "RuntimeError: boom: this fusion always fails"
    assert shown in " ".join((ran.out + ran.err).split())  # as it happens, on the console
    assert shown in " ".join(run_cli("results", suite).out.split())
    board = json.loads((tmp_path / "leaderboard" / "tiny.json").read_text())
    assert [f["error"] for f in board["failed"]] == [shown]
    assert f"seed 0: {shown}" in (tmp_path / "leaderboard" / "tiny.md").read_text()
    (record,) = [r for r in map(json.loads, map(Path.read_text, Path("results/tiny").glob("*.json")))
                 if r["status"] == "failed"]
    assert record["error"]["type"] == "RuntimeError"  # the record keeps type and message apart


def test_error_text_names_the_type_unless_mmbench_wrote_the_sentence():
    from mmbench.results import error_text

    assert error_text({"type": "KeyError", "message": str(KeyError("image"))}) == "KeyError: 'image'"
    assert error_text({"type": "RuntimeError", "message": ""}) == "RuntimeError"
    assert error_text({"type": "UserError", "message": "dataset 'x': no root"}) == "dataset 'x': no root"
    assert error_text({"type": "SuiteError", "message": "s.toml: bad"}) == "s.toml: bad"
    assert error_text({"type": "OSError", "message": "OSError: twice"}) == "OSError: twice"
