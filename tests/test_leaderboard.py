"""Leaderboards aggregate seeds honestly and render deterministically."""

import json
import statistics

import pytest

from mmbench.leaderboard import Leaderboard, from_results
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


REFERENCE = {"dataset": "d", "config": "- / - / b", "metric": "auroc", "value": 0.85, "source": "paper X, Table 2"}


def test_a_papers_number_sits_beside_the_measured_one_in_every_format(tmp_path):
    lb = from_results(RESULTS, "demo", "", "auroc", ["auroc"], references=[REFERENCE])
    page = MarkdownReporter().write(lb, tmp_path)[0].read_text()
    csv_text = CsvReporter().write(lb, tmp_path)[0].read_text().splitlines()

    assert lb.datasets[0].rows[0].references == {"auroc": {"value": 0.85, "source": "paper X, Table 2"}}
    assert lb.datasets[0].rows[1].references == {}
    assert "| auroc             | auroc (paper)   |" in page
    assert "| **0.800 ± 0.020** | 0.850           |" in page
    assert "(paper): the number the source prints for that configuration: paper X, Table 2." in page
    header = csv_text[0].split(",")
    assert header[-1] == "auroc_paper"
    assert csv_text[1].split(",")[-1] == "0.85" and csv_text[2].split(",")[-1] == ""


TWO_DATASETS = (
    [result(f, 0, v, dataset="d1") for f, v in (("a", 0.9), ("b", 0.8), ("c", 0.7))]
    + [result(f, 0, v, dataset="d2") for f, v in (("a", 0.6), ("b", 0.65), ("c", 0.5))]
    + [result("only_d2", 0, 0.99, dataset="d2")]
)


def test_configurations_are_ranked_across_datasets_by_mean_rank_and_borda():
    lb = from_results(TWO_DATASETS, "demo", "", "auroc", ["auroc"])

    overall = [(o.fusion, o.ranks, o.mean_rank, o.borda) for o in lb.overall]
    # d1: a 1, b 2, c 3; d2: only_d2 1, b 2, a 3, c 4 -> Borda counts configurations beaten
    assert overall == [("a", {"d1": 1, "d2": 3}, 2.0, 2 + 1),
                       ("b", {"d1": 2, "d2": 2}, 2.0, 1 + 2),
                       ("c", {"d1": 3, "d2": 4}, 3.5, 0),
                       ("only_d2", {"d2": 1}, 1.0, 3)]  # fewer datasets: after the rest


def test_the_page_shows_the_ranking_across_datasets(tmp_path):
    page = MarkdownReporter().write(from_results(TWO_DATASETS, "demo", "", "auroc", ["auroc"]), tmp_path)[0]
    text = page.read_text()

    assert "## Across datasets" in text
    assert "| 1      | - / - / a       | 2.00        | 3       | **0.900 (1)** | 0.600 (3)     |" in text


def test_a_leaderboard_survives_its_json_unchanged():
    from mmbench.leaderboard import Leaderboard

    lb = from_results(TWO_DATASETS, "demo", "d", "auroc", ["auroc"], references=[
        {**REFERENCE, "dataset": "d1", "config": "- / - / a"}])

    assert Leaderboard.from_dict(lb.to_dict()).to_dict() == lb.to_dict()


def test_the_page_embeds_images_other_reporters_write_whatever_the_order(tmp_path):
    from mmbench.leaderboard import write
    from mmbench.plugin import Reporter

    class Figures(Reporter):
        name = "figures"

        def write(self, board, out_dir):
            path = out_dir / board.suite / "sweep.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\x89PNG")
            return [path]

    write(board(), tmp_path, [MarkdownReporter(), Figures()])

    assert "![sweep](demo/sweep.png)" in (tmp_path / "demo.md").read_text()


def test_configurations_the_epoch_cap_ended_are_warned_about_in_every_format(tmp_path):
    """Issue 15: a run whose early stopping never triggered was decided by the epoch cap;
    the leaderboard says which configurations that happened to (page, JSON, terminal)."""
    capped = [{**r, "spec": {"seed": r["spec"]["seed"], "fusion": {"train": {"epochs": 100}}},
               "metrics": {**r["metrics"], "hit_epoch_cap": float(r["spec"]["seed"] < 2)}}
              for r in RESULTS if r["labels"]["fusion"] == "a"]
    others = [r for r in RESULTS if r["labels"]["fusion"] != "a"]
    lb = from_results(capped + others, "demo", "a demo", "auroc", ["auroc"])
    assert lb.warnings == ["d | - / - / a: 2 of 3 run(s) reached the epoch cap (100 epochs) before early "
                           "stopping, so the cap decided their result; raise the fusion's train epochs"]
    MarkdownReporter().write(lb, tmp_path)
    JsonReporter().write(lb, tmp_path)
    assert "## Warnings" in (tmp_path / "demo.md").read_text() and lb.warnings[0] in (tmp_path / "demo.md").read_text()
    assert Leaderboard.from_dict(json.loads((tmp_path / "demo.json").read_text())).warnings == lb.warnings
    assert board().warnings == []  # no run hit it
