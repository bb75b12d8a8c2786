"""Leaderboards aggregate seeds honestly and render deterministically."""

import statistics

import pytest

from mmbench.leaderboard import from_results
from mmbench_reporters.tables import CsvReporter, JsonReporter, MarkdownReporter


def result(fusion, seed, auroc, seconds=0.1, dataset="d", status="ok"):
    return {
        "run_id": f"{dataset}-{fusion}-{seed}",
        "status": status,
        "error": None if status == "ok" else {"message": "it broke"},
        "labels": {"dataset": dataset, "encoder": "-", "alignment": "-", "fusion": fusion,
                   "config": f"- / - / {fusion}"},
        "spec": {"seed": seed},
        "data": {"task": "binary"},
        "metrics": {"auroc": auroc, "train_s_per_epoch": seconds},
        "environment": {"mmbench_version": "0", "torch": "t", "python": "p", "cpu_count": 2,
                        "threads": 1, "machine_id": "m"},
    }


RESULTS = [result("a", s, v, 0.2) for s, v in enumerate([0.70, 0.74, 0.72])] + \
          [result("b", s, v, 0.1) for s, v in enumerate([0.80, 0.78, 0.82])] + \
          [result("c", 0, None, status="failed")]


def board():
    return from_results(RESULTS, "demo", "a demo", "auroc", ["auroc", "train_s_per_epoch"])


def test_rows_hold_mean_and_sample_std_over_seeds_ranked_on_the_primary_metric():
    (dataset,) = board().datasets
    first, second = dataset.rows
    assert (first.fusion, first.rank, second.fusion, second.rank) == ("b", 1, "a", 2)
    assert first.stats["auroc"].mean == pytest.approx(0.80)
    assert first.stats["auroc"].std == pytest.approx(statistics.stdev([0.80, 0.78, 0.82]))
    assert first.seeds == [0, 1, 2]


def test_best_value_per_column_follows_the_metric_direction():
    first, second = board().datasets[0].rows
    assert "auroc" in first.best and "train_s_per_epoch" in first.best  # higher / lower is better
    assert second.best == []


def test_failed_runs_are_listed_not_averaged():
    lb = board()
    assert [f["config"] for f in lb.failed] == ["- / - / c"]
    assert all(row.fusion != "c" for row in lb.datasets[0].rows)


def test_markdown_marks_the_best_and_lists_failures(tmp_path):
    (page, index) = MarkdownReporter().write(board(), tmp_path)
    text = page.read_text()
    assert "**0.800 ± 0.020**" in text
    assert "## Failed runs (1)" in text and "it broke" in text
    assert "[demo](demo.md)" in index.read_text()


def test_files_are_byte_identical_for_the_same_results(tmp_path):
    reporters = [MarkdownReporter(), CsvReporter(), JsonReporter()]
    first = {p.name: p.read_bytes() for r in reporters for p in r.write(board(), tmp_path / "one")}
    second = {p.name: p.read_bytes() for r in reporters for p in r.write(board(), tmp_path / "two")}
    assert first == second and len(first) == 4
