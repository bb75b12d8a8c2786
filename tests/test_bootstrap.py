"""Bootstrap intervals and paired "not different from the best" marks in the leaderboard."""

import json

import numpy as np
import pytest

from mmbench import bootstrap, metrics
from mmbench.leaderboard import from_results
from mmbench.results import is_finished, load_results, read_predictions, write_result
from mmbench_reporters.tables import CsvReporter, JsonReporter, MarkdownReporter


def binary_predictions(n, signal, seed, offset=0):
    """A test set of ``n`` samples whose scores separate the classes by ``signal``."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    proba = 1 / (1 + np.exp(-(signal * (labels - 0.5) + rng.normal(size=n))))
    return {"ids": np.array([f"s{i + offset:05d}" for i in range(n)]), "labels": labels, "proba": proba}


def result(fusion, seed, predictions, task="binary"):
    auroc = metrics.auroc(predictions["labels"], predictions["proba"], task)
    return {
        "run_id": f"{fusion}-{seed}", "status": "ok", "error": None,
        "labels": {"dataset": "d", "encoder": "-", "alignment": "-", "fusion": fusion, "config": fusion},
        "spec": {"seed": seed}, "data": {"task": task}, "metrics": {"auroc": auroc},
    }


def board(runs, resamples=300, seed=0, with_predictions=True):
    """``runs``: (fusion, seed, predictions); each seed's test set is its own samples."""
    results = [result(f, s, p) for f, s, p in runs]
    predictions = {f"{f}-{s}": p for f, s, p in runs} if with_predictions else None
    return from_results(results, "demo", "", "auroc", ["auroc"], predictions=predictions,
                        resamples=resamples, seed=seed)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@pytest.mark.parametrize("metric", ["auroc", "f1", "accuracy"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_resampled_metrics_are_scikit_learns_on_every_resample(task, metric):
    rng = np.random.default_rng(1)
    n = 30  # small: some resamples miss a class, where AUROC is undefined (NaN)
    if task == "binary":
        labels, proba = (np.arange(n) < 2).astype(int), np.round(rng.random(n), 1)  # 2 positives; ties
    elif task == "multiclass":
        proba = rng.dirichlet(np.ones(5), n) * [1, 1, 1, 1, 0.1]  # the rare class is seldom predicted
        labels, proba = rng.choice(5, n, p=[0.5, 0.3, 0.15, 0.04, 0.01]), proba / proba.sum(axis=1, keepdims=True)
    else:
        labels = (rng.random((n, 4)) < [0.5, 0.2, 0.05, 0.02]).astype(int)
        proba = np.round(rng.random((n, 4)) * [1, 1, 1, 0.4], 1)  # the rarest label is never predicted
    test = bootstrap.TestSet.of(np.arange(n), labels, proba, task)
    index = bootstrap.draws(test, 200, seed=0)
    fast = bootstrap.replicates(test, metric, index)
    reference = np.array([metrics.quality(test.labels[rows], test.proba[rows], task)[metric] for rows in index])
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-12)  # NaN where sklearn's is NaN
    assert metric != "auroc" or task != "binary" or np.isnan(reference).any()
    if task != "binary":  # the edge case occurs: a class / label absent from labels and predictions
        predicted = metrics.predictions(test.proba, task)
        if task == "multiclass":
            present = [len(np.unique(np.r_[test.labels[rows], predicted[rows]])) for rows in index]
        else:
            present = [int((test.labels[rows] | predicted[rows]).any(axis=0).sum()) for rows in index]
        assert min(present) < test.proba.shape[1]


def test_interval_covers_the_point_estimate_and_shrinks_with_more_test_samples():
    widths = []
    for n in (100, 1600):
        data = binary_predictions(n, signal=1.5, seed=n)
        (row,) = board([("a", 0, data)]).datasets[0].rows
        lo, hi = row.ci
        assert lo < row.stats["auroc"].mean < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # ~ 1 / sqrt(n): 4x narrower for 16x the samples


def test_identical_configuration_is_marked_not_different_and_a_clearly_worse_one_is_not():
    runs = []
    for seed in (0, 1):  # a different test set per seed, as when the split follows the run's seed
        good = binary_predictions(400, signal=3.0, seed=seed, offset=1000 * seed)
        worse = {**good, "proba": binary_predictions(400, signal=0.3, seed=seed + 10)["proba"]}
        runs += [("a", seed, good), ("b", seed, dict(good)), ("c", seed, worse)]
    best, same, worse = board(runs).datasets[0].rows
    assert (best.fusion, same.fusion, worse.fusion) == ("a", "b", "c")
    assert best.not_different is None and same.not_different is True and worse.not_different is False
    assert same.ci == best.ci  # the same draws for every configuration on the same samples


def test_close_configurations_on_the_same_samples_are_told_apart_only_when_paired():
    good = binary_predictions(400, signal=2.0, seed=3)
    rng = np.random.default_rng(4)
    # slightly but consistently better scores on the same samples: unpaired intervals overlap
    better = {**good, "proba": good["proba"] + 0.05 * (good["labels"] - 0.5) * rng.random(400)}
    first, second = board([("a", 0, good), ("b", 0, better)], resamples=1000).datasets[0].rows
    assert first.fusion == "b" and first.ci[0] < second.ci[1]  # the intervals overlap
    assert second.not_different is False  # but the paired difference is clearly not 0


def test_same_seed_gives_byte_identical_files_and_another_seed_other_intervals(tmp_path):
    runs = [("a", 0, binary_predictions(200, 1.0, 0)), ("b", 0, binary_predictions(200, 0.8, 1))]
    reporters = [MarkdownReporter(), CsvReporter(), JsonReporter()]
    first = {p.name: p.read_bytes() for r in reporters for p in r.write(board(runs), tmp_path / "one")}
    second = {p.name: p.read_bytes() for r in reporters for p in r.write(board(runs), tmp_path / "two")}
    assert first == second
    assert board(runs, seed=1).datasets[0].rows[0].ci != board(runs).datasets[0].rows[0].ci


def test_reporters_show_the_interval_the_mark_and_a_legend(tmp_path):
    data = binary_predictions(300, 2.0, 0)
    lb = board([("a", 0, data), ("b", 0, dict(data))])
    best, same = lb.datasets[0].rows
    md = MarkdownReporter().write(lb, tmp_path)[0].read_text()
    assert f"[{best.ci[0]:.3f}, {best.ci[1]:.3f}]" in md and "≈" in md
    assert "300 resamples of the test set, seed 0" in md
    csv = (CsvReporter().write(lb, tmp_path)[0]).read_text().splitlines()
    assert csv[0].endswith("auroc_ci_lo,auroc_ci_hi,not_different_from_best")
    assert csv[2].endswith(f"{best.ci[0]!r},{best.ci[1]!r},true")
    rows = json.loads(JsonReporter().write(lb, tmp_path)[0].read_text())["datasets"][0]["rows"]
    assert rows[1]["ci"] == {"metric": "auroc", "lo": same.ci[0], "hi": same.ci[1]}
    assert [r["not_different_from_best"] for r in rows] == [None, True]


def test_results_without_predictions_still_make_a_leaderboard_without_intervals(tmp_path):
    runs = [("a", 0, binary_predictions(100, 1.0, 0)), ("b", 0, binary_predictions(100, 0.5, 1))]
    lb = board(runs, with_predictions=False)
    assert [row.ci for row in lb.datasets[0].rows] == [None, None]
    md = MarkdownReporter().write(lb, tmp_path)[0].read_text()
    assert "[" not in md.split("## d")[1].split("Columns:")[0] and "bootstrap" not in md
    assert CsvReporter().write(lb, tmp_path)[0].read_text().splitlines()[1].endswith(",,,")


def test_predictions_live_in_a_sidecar_that_loads_without_pickle_and_never_counts_as_a_result(tmp_path):
    data = binary_predictions(50, 1.0, 0)
    record = {**result("a", 0, data), "schema_version": 1, "test_predictions": data}
    write_result(tmp_path, record)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-0.json", "a-0.test.npz"]
    stored = json.loads((tmp_path / "a-0.json").read_text())
    assert stored["predictions"] == "a-0.test.npz" and "test_predictions" not in stored
    (loaded,), bad = load_results(tmp_path)
    assert bad == [] and is_finished(tmp_path, "a-0")
    arrays = read_predictions(tmp_path, loaded)
    assert arrays["ids"].dtype.kind == "U" and arrays["proba"].dtype == np.float32
    np.testing.assert_array_equal(arrays["ids"], data["ids"])
    np.testing.assert_array_equal(arrays["labels"], data["labels"])
    np.testing.assert_allclose(arrays["proba"], data["proba"], rtol=1e-6)
    (tmp_path / "a-0.test.npz").unlink()
    assert read_predictions(tmp_path, loaded) is None  # the row just shows no interval
