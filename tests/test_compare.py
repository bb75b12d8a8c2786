"""`mmbench compare` fails CI on a real regression and never on seed noise or another machine."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from mmbench_reporters.tables import JsonReporter

from mmbench.compare import NOT_COMPARED_MACHINE, compare, load_side
from mmbench.leaderboard import from_results
from mmbench.results import write_result

COMMITTED = Path(__file__).resolve().parent.parent / "leaderboard" / "quickstart.json"
FUSIONS = {"early": 0.86, "late_joint": 0.84}


def result(fusion: str, seed: int, auroc: float, seconds: float = 0.010, rss: float = 800.0,
           machine: str = "m1", extract: float = 0.0) -> dict:
    return {
        "schema_version": 1, "run_id": f"{fusion}-{seed}", "suite": "demo", "status": "ok", "error": None,
        "labels": {"dataset": "brset_like", "encoder": "-", "alignment": "-", "fusion": fusion,
                   "robustness": "-", "config": f"- / - / {fusion}"},
        "spec": {"seed": seed}, "data": {"task": "binary"},
        "metrics": {"auroc": auroc, "f1": 0.6 + 0.01 * (seed % 3), "best_epoch": 3 + seed,
                    "train_s_per_epoch": seconds * (1 + 0.02 * seed), "peak_rss_mb": rss,
                    "extract_s_per_sample": extract},
        "environment": {"machine_id": machine, "threads": 1},
    }


def write_dir(folder: Path, results: list[dict]) -> Path:
    for r in results:
        write_result(folder, r)
    return folder


def grid(seeds=(0, 1, 2), shift: dict[str, float] | None = None, **kwargs) -> list[dict]:
    """Both fusions over ``seeds``, AUROC within +-0.01 of its mean, ``shift`` added per fusion."""
    shift = shift or {}
    return [result(f, s, mean + 0.01 * ((s % 3) - 1) + shift.get(f, 0.0), **kwargs)
            for f, mean in FUSIONS.items() for s in seeds]


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    return write_dir(tmp_path / "baseline", grid())


def test_a_planted_auroc_drop_exits_1_and_names_the_row(run_cli, baseline, tmp_path):
    current = write_dir(tmp_path / "current", grid(shift={"early": -0.08}))
    out = run_cli("compare", baseline, current)
    assert out.code == 1
    summary = out.out.split("regression(s):")[1]
    assert "brset_like | - / - / early: auroc 0.860 -> 0.780" in summary
    assert "late_joint" not in summary  # the untouched row is not blamed


def test_a_rerun_with_other_seeds_is_no_false_alarm(run_cli, baseline, tmp_path):
    current = write_dir(tmp_path / "current", grid(seeds=(3, 4, 5), shift={"early": 0.004, "late_joint": -0.006}))
    out = run_cli("compare", baseline, current)
    assert out.code == 0, out.out
    assert "no regression" in out.out


def test_a_real_suite_rerun_with_other_seeds_passes(run_cli, write_suite, tmp_path):
    suite = write_suite("""
        [suite]
        name = "noise"
        seeds = [0, 1, 2, 3, 4, 5]
        threads = 1
        [[datasets]]
        name = "synthetic"
        n_samples = 200
        dims = [16, 16]
        [[fusions]]
        name = "early"
        train = { epochs = 3 }
        [report]
        primary = "auroc"
    """)
    assert run_cli("run", suite, "--results", tmp_path / "runs", "--output", tmp_path / "lb").code == 0
    for path in (tmp_path / "runs" / "noise").glob("*.json"):  # seeds 0-2 vs a rerun with 3-5
        half = "a" if json.loads(path.read_text())["spec"]["seed"] < 3 else "b"
        (tmp_path / half).mkdir(exist_ok=True)
        path.rename(tmp_path / half / path.name)
    comparison = compare(load_side(tmp_path / "a"), load_side(tmp_path / "b"))
    aurocs = [c for c in comparison.changes if c.metric == "auroc"]
    assert aurocs and all(c.delta != 0 for c in aurocs)  # other seeds, other numbers ...
    assert comparison.regressions == []  # ... and no alarm


def test_time_growth_fails_on_the_same_machine_only(run_cli, baseline, tmp_path):
    # extraction time 0 in the baseline means served from the cache: no ratio, no alarm
    slower = write_dir(tmp_path / "same", grid(seconds=0.025, extract=1e-4))
    out = run_cli("compare", baseline, slower)
    assert out.code == 1
    assert "brset_like | - / - / early: train_s_per_epoch" in out.out.split("regression(s):")[1]
    assert {c.metric for c in compare(load_side(baseline), load_side(slower)).regressions} == {
        "train_s_per_epoch"}

    elsewhere = write_dir(tmp_path / "other", grid(seconds=0.025, machine="m2"))
    out = run_cli("compare", baseline, elsewhere)
    assert out.code == 0
    assert NOT_COMPARED_MACHINE in out.out


def test_memory_growth_past_its_ratio_fails(baseline, tmp_path):
    bigger = write_dir(tmp_path / "bigger", grid(rss=1100.0))
    comparison = compare(load_side(baseline), load_side(bigger))
    assert {(c.config, c.metric) for c in comparison.regressions} == {
        ("- / - / early", "peak_rss_mb"), ("- / - / late_joint", "peak_rss_mb")}


def test_a_leaderboard_json_compares_equal_to_its_results(run_cli, baseline, tmp_path):
    results = [json.loads(p.read_text()) for p in sorted(baseline.glob("*.json"))]
    board = from_results(results, "demo", "", "auroc", ["auroc", "f1", "train_s_per_epoch", "peak_rss_mb"])
    (path,) = JsonReporter().write(board, tmp_path / "lb")
    comparison = compare(load_side(path), load_side(baseline))
    assert comparison.costs_compared  # the machine id is read from the leaderboard's environment line
    assert comparison.changes and all(c.delta == pytest.approx(0.0) for c in comparison.changes)

    dropped = write_dir(tmp_path / "dropped", grid(shift={"late_joint": -0.1}))
    out = run_cli("compare", path, dropped)
    assert out.code == 1 and "late_joint: auroc" in out.out


def test_the_committed_quickstart_tolerates_noise_within_its_std_but_not_a_drop(tmp_path):
    data = json.loads(COMMITTED.read_text())
    noisy = copy.deepcopy(data)
    for board in noisy["datasets"]:
        for row in board["rows"]:
            for metric in ("auroc", "f1", "accuracy"):
                stat = row["metrics"][metric]
                stat["mean"] -= max(stat["std"], 0.005)  # one std worse, every row and metric
    (tmp_path / "noisy.json").write_text(json.dumps(noisy))
    assert compare(load_side(COMMITTED), load_side(tmp_path / "noisy.json")).regressions == []

    dropped = copy.deepcopy(data)
    row = dropped["datasets"][0]["rows"][0]
    row["metrics"]["auroc"]["mean"] -= 0.1
    (tmp_path / "dropped.json").write_text(json.dumps(dropped))
    (regression,) = compare(load_side(COMMITTED), load_side(tmp_path / "dropped.json")).regressions
    assert (regression.dataset, regression.config, regression.metric) == (
        dropped["datasets"][0]["dataset"], f"- / - / {row['fusion']}", "auroc")


def test_configurations_on_one_side_are_listed_not_failures(run_cli, baseline, tmp_path):
    extra = grid() + [result("linear_probe", s, 0.5) for s in range(3)]
    out = run_cli("compare", baseline, write_dir(tmp_path / "extra", extra))
    assert out.code == 0
    assert "only in the current (not compared): brset_like | - / - / linear_probe" in out.out


def test_json_report_holds_every_verdict(run_cli, baseline, tmp_path):
    current = write_dir(tmp_path / "current", grid(shift={"early": -0.08}))
    report = tmp_path / "report.json"
    assert run_cli("compare", baseline, current, "--json", report).code == 1
    data = json.loads(report.read_text())
    assert data["regressions"] == 1
    verdicts = {(c["config"], c["metric"]): c["verdict"] for c in data["changes"]}
    assert verdicts[("- / - / early", "auroc")] == "regression"
    assert verdicts[("- / - / late_joint", "auroc")] == "ok"
    assert ("- / - / early", "best_epoch") not in verdicts  # no better direction: not judged


def test_wider_limits_accept_the_same_drop(run_cli, baseline, tmp_path):
    current = write_dir(tmp_path / "current", grid(shift={"early": -0.08}))
    assert run_cli("compare", baseline, current, "--tolerance", "0.1").code == 0


def test_bad_inputs_are_usage_errors_that_say_what_to_pass(run_cli, baseline, tmp_path):
    out = run_cli("compare", tmp_path / "missing", baseline)
    assert out.code == 2 and "results folder" in out.err
    out = run_cli("compare", tmp_path, baseline)  # the parent of a suite's results folder
    assert out.code == 2 and "baseline" in out.err
    (tmp_path / "other.json").write_text('{"rows": []}')
    out = run_cli("compare", tmp_path / "other.json", baseline)
    assert out.code == 2 and "not a leaderboard JSON" in out.err
    assert run_cli("compare", baseline, baseline, "--time-ratio", "0.5").code == 2


def test_results_and_leaderboards_written_before_the_rename_of_infer_s_per_epoch_still_compare(
        run_cli, tmp_path):
    """Issue 15: ``infer_s_per_epoch`` was one inference pass over the test split (Restrepo
    et al.'s "inference time per epoch"), now named ``infer_s_test_pass``. Old result files
    and leaderboard JSONs read under the new name, so an old baseline compares with a new run."""
    def timed(results, key, seconds):
        return [{**r, "metrics": {**r["metrics"], key: seconds}} for r in results]

    old = write_dir(tmp_path / "old", timed(grid(), "infer_s_per_epoch", 0.01))
    new = write_dir(tmp_path / "new", timed(grid(), "infer_s_test_pass", 0.05))
    old_side, new_side = load_side(old), load_side(new)
    assert all("infer_s_test_pass" in m and "infer_s_per_epoch" not in m for m in old_side.rows.values())
    changes = compare(old_side, new_side).changes
    assert any(c.metric == "infer_s_test_pass" for c in changes)
    board = from_results(timed(grid(), "infer_s_per_epoch", 0.01), "demo", "", "auroc", ["auroc"]).to_dict()
    for row in board["datasets"][0]["rows"]:  # a leaderboard JSON from before the rename
        row["metrics"]["infer_s_per_epoch"] = {"mean": 0.01, "std": 0.0, "n": 3}
    (tmp_path / "old.json").write_text(json.dumps(board))
    assert all("infer_s_test_pass" in m for m in load_side(tmp_path / "old.json").rows.values())
