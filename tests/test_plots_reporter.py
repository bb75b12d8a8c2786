"""Leaderboard plots: the right rows on the right lines, honest error bars, stable bytes."""

import statistics
import struct

import pytest
from mmbench_reporters.plots import (
    LABELLED,
    PlotsReporter,
    missing_rate_series,
    pareto_front,
    plan,
    sweeps,
)

from mmbench.leaderboard import from_results

PNG = b"\x89PNG\r\n\x1a\n"
ROB = {"missing_rate": 0.0, "missing_modality": "random", "missing_at": "both", "fill": "zero", "test_noise": 0.0}


def result(auroc, *, seed=0, lam=0.5, fusion="early", dataset="d", rate=None, modality="random",
           seconds=0.01, total=None):
    """A finished run as the runner records it, with the run spec the settings come from."""
    alignment = {"name": "gap_shift", "version": "1",
                 "params": {"lambda": lam, "image": "image", "reg_weight": 0.0, "center": True}}
    robustness = None if rate is None else {**ROB, "missing_rate": rate, "missing_modality": modality}
    rob_label = "-" if not rate else f"missing {rate:g} {modality}@both fill=zero"
    metrics = {"auroc": auroc, "train_s_per_epoch": seconds}
    if total is not None:
        metrics["train_s_total"] = total
    return {
        "run_id": f"{dataset}-{lam}-{fusion}-{rate}-{modality}-{seed}",
        "status": "ok",
        "error": None,
        "labels": {"dataset": dataset, "encoder": "-", "alignment": f"gap_shift(lambda={lam:g})",
                   "fusion": fusion, "robustness": rob_label, "config": "unused"},
        "spec": {"seed": seed, "encoders": {}, "alignment": alignment,
                 "fusion": {"name": fusion, "version": "1", "params": {}, "train": {"epochs": 5}},
                 "robustness": robustness},
        "data": {"task": "binary"},
        "metrics": metrics,
        "environment": {},
    }


def board(results, columns=("auroc", "train_s_per_epoch")):
    return from_results(results, "demo", "", "auroc", list(columns))


def lambda_results(dataset="d"):
    """Two fusions x lambda 0, 0.5, 1 x two seeds; late is faster and worse."""
    out = []
    for lam, base in [(0.0, 0.70), (0.5, 0.74), (1.0, 0.72)]:
        for seed, noise in [(0, -0.01), (1, 0.01)]:
            out.append(result(base + noise, seed=seed, lam=lam, dataset=dataset, seconds=0.02 + lam / 100))
            out.append(result(base - 0.1 + noise, seed=seed, lam=lam, fusion="late", dataset=dataset,
                              seconds=0.001 + lam / 1000))
    return out


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def test_a_lambda_sweep_gives_one_line_per_fusion_with_mean_and_std_over_seeds():
    (dataset,) = board(lambda_results()).datasets
    found = sweeps(dataset, "auroc")
    assert list(found) == ["lambda"]  # constant numbers (reg_weight) and booleans are no sweep
    lines = found["lambda"]
    assert [s.label for s in lines.series] == ["early", "late"]  # only the part that differs
    assert lines.shared == "gap_shift"
    early = lines.series[0]
    assert [p.x for p in early.points] == [0.0, 0.5, 1.0]
    assert [p.y for p in early.points] == pytest.approx([0.70, 0.74, 0.72])
    std = statistics.stdev([0.69, 0.71])
    assert [(p.below, p.above) for p in early.points] == [pytest.approx((std, std))] * 3
    assert missing_rate_series(dataset, "auroc") is None


def test_bootstrap_intervals_become_the_error_bars_when_every_point_has_one():
    lb = board(lambda_results())
    for row in lb.datasets[0].rows:
        row.ci = (row.stats["auroc"].mean - 0.03, row.stats["auroc"].mean + 0.05)
    point = sweeps(lb.datasets[0], "auroc")["lambda"].series[0].points[0]
    assert (point.below, point.above) == (pytest.approx(0.03), pytest.approx(0.05))
    (sweep, _) = plan(lb)
    assert "95% bootstrap interval" in sweep.title and "mean over 2 seeds" in sweep.title


def test_score_against_missing_rate_keeps_other_robustness_settings_apart():
    # at rate 0 nothing goes missing: both modalities' clean runs are one row, the first
    # point of both lines
    results = [result(0.9 - rate / 4 - (modality == "text" and rate > 0) * 0.1, rate=rate, modality=modality)
               for rate in (0.0, 0.3, 0.6) for modality in ("image", "text")]
    (dataset,) = board(results).datasets
    assert sweeps(dataset, "auroc") == {}
    lines = missing_rate_series(dataset, "auroc")
    assert [s.label for s in lines.series] == ["image@both fill=zero", "text@both fill=zero"]
    assert [p.x for p in lines.series[1].points] == [0.0, 0.3, 0.6]
    assert [p.y for p in lines.series[0].points] == pytest.approx([0.9, 0.825, 0.75])
    assert [p.y for p in lines.series[1].points] == pytest.approx([0.9, 0.725, 0.65])
    assert [p.path for p in plan(board(results))] == ["demo/missing_rate_d.png", "demo/pareto_d.png"]


def test_pareto_front_is_the_best_score_for_at_most_that_time():
    times = {"a": (1.0, 0.70), "b": (2.0, 0.80), "c": (3.0, 0.75), "d": (2.0, 0.60), "e": (4.0, 0.90)}
    results = [result(score, fusion=name, seconds=100.0, total=t) for name, (t, score) in times.items()]
    (dataset,) = board(results, columns=("auroc", "train_s_total", "train_s_per_epoch")).datasets
    # train_s_total wins over the per-epoch time, which is equal for all and would keep one row
    assert [row.fusion for row in pareto_front(dataset, "auroc")] == ["a", "b", "e"]


def test_a_big_board_numbers_its_best_ranks_and_its_front_and_draws_the_other_points_bare():
    # 200 configurations, each slower and better than the last but every tenth: the front
    # runs through the whole time range, not only the best ranks
    results = [result(0.5 + i / 1000 - (i % 10 == 3) * 0.2, fusion=f"f{i:03d}", seconds=100.0, total=1.0 + i)
               for i in range(200)]
    lb = board(results, columns=("auroc", "train_s_total"))
    (pareto,) = plan(lb)
    (everything,) = pareto.series
    front = {p.rank for p in pareto.front}
    assert len(everything.points) == 200 and len(front) > 100  # every point drawn
    assert pareto.labelled == frozenset(range(1, LABELLED + 1)) | front
    assert len(pareto.legend) == len(pareto.labelled) + 1
    assert pareto.legend[-1] == f"... {200 - len(pareto.labelled)} more, unlabelled: every row is in the table"
    small = plan(board(lambda_results()))[-1]
    assert small.labelled == {p.rank for p in small.series[0].points}  # a small board: every point


def test_no_time_metric_no_pareto_plot_and_no_sweep_no_sweep_file():
    results = [result(0.7 + seed / 100, seed=seed, fusion=f) for seed in (0, 1) for f in ("x", "y")]
    assert plan(board(results, columns=("auroc",))) == []


def test_plots_are_pngs_of_fixed_size_byte_identical_and_safely_named(tmp_path):
    lb = board(lambda_results("brset/v1") + lambda_results("brset v1"))
    first = PlotsReporter().write(lb, tmp_path / "one")
    # two labels that clean up to the same name each get a hash, never one file for both
    names = sorted(p.name for p in first)
    assert len(names) == 4 and len({n.split("-")[0] for n in names}) == 2
    assert all(n.startswith(("lambda_sweep_brset_v1-", "pareto_brset_v1-")) for n in names)
    assert first == sorted(first) and all(p.parent == tmp_path / "one" / "demo" for p in first)
    assert {png_size(p) for p in first} == {(1100, 500)}
    second = PlotsReporter().write(lb, tmp_path / "two")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert b"matplotlib" not in first[0].read_bytes()  # no version stamp to churn in git


def test_plots_of_an_earlier_result_set_are_removed(tmp_path):
    PlotsReporter().write(board(lambda_results()), tmp_path)
    other = PlotsReporter().write(board(lambda_results()[:2]), tmp_path)  # one lambda: no sweep
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [p.name for p in other] == ["pareto_d.png"]


SUITE = """
[suite]
name = "tiny"
[[datasets]]
name = "synthetic"
label = "syn/a"
n_samples = 120
dims = [4, 4]
[[alignments]]
name = "gap_shift"
lambda = [0.0, 1.0]
[[fusions]]
name = "early"
train = { epochs = 1 }
"""


def test_mmbench_run_writes_the_plots_beside_the_leaderboard(tmp_path, monkeypatch, write_suite, run_cli):
    monkeypatch.chdir(tmp_path)
    assert run_cli("run", write_suite(SUITE, "tiny.toml")).code == 0
    pngs = sorted(p.name for p in (tmp_path / "leaderboard" / "tiny").glob("*.png"))
    assert pngs == ["lambda_sweep_syn_a.png", "pareto_syn_a.png"]
    assert "](tiny/lambda_sweep_syn_a.png)" in (tmp_path / "leaderboard" / "tiny.md").read_text()
