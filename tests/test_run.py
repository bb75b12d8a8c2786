"""Running suites end to end: results files, resume, failures, workers, encoders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbench.cli import main


TINY = """
[suite]
name = "tiny"
seeds = [0, 1]
threads = 1

[train]
epochs = 4

[[datasets]]
name = "synthetic"
label = "binary"
n_samples = 300
dims = [16, 16]
signal = [0.6, 0.3]

[[datasets]]
name = "synthetic"
label = "three_classes"
n_samples = 300
task = "multiclass"
n_classes = 3
dims = [16, 8]

[[fusions]]
name = "early"
hidden = 16

[[fusions]]
name = "late_joint"
hidden = 8
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def with_fixture_plugins(use_plugins):
    use_plugins("mmbench,faulty_fusions,raw_text_dataset")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def result_files(root: Path, suite: str = "tiny") -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((root / "results" / suite).glob("*.json"))}


def test_run_writes_one_result_per_run_and_a_leaderboard(workdir):
    suite = write(workdir / "tiny.toml", TINY)
    assert main(["run", str(suite)]) == 0
    results = result_files(workdir)
    assert len(results) == 2 * 2 * 2  # datasets x fusions x seeds
    for name, result in results.items():
        assert name == f"{result['run_id']}.json"
        assert result["schema_version"] == 1
        assert result["status"] == "ok"
        assert result["suite"] == "tiny"
        env = result["environment"]
        assert {"mmbench_version", "python", "torch", "machine_id", "threads"} <= set(env)
        assert env["threads"] == 1
        m = result["metrics"]
        assert 0.0 <= m["auroc"] <= 1.0 and 0.0 <= m["f1"] <= 1.0 and 0.0 <= m["accuracy"] <= 1.0
        assert 1 <= m["best_epoch"] <= 4 and m["epochs_run"] == 4
        assert m["train_s_per_epoch"] > 0 and m["infer_s_per_sample"] > 0 and m["peak_rss_mb"] > 0
        assert len(result["history"]) == 4
        assert result["data"]["n"] == {"train": 210, "val": 30, "test": 60}
    for ext in ("md", "csv", "json"):
        assert (workdir / "leaderboard" / f"tiny.{ext}").is_file()
    index = (workdir / "leaderboard" / "README.md").read_text()
    assert "[tiny](tiny.md)" in index


def test_rerun_skips_finished_runs_and_keeps_the_leaderboard_byte_identical(workdir, capsys):
    suite = write(workdir / "tiny.toml", TINY)
    assert main(["run", str(suite)]) == 0
    before = {p: p.read_bytes() for p in (workdir / "leaderboard").rglob("*") if p.is_file()}
    stamps = {p: p.stat().st_mtime_ns for p in (workdir / "results" / "tiny").iterdir()}
    capsys.readouterr()
    assert main(["run", str(suite)]) == 0
    assert "0 runs finished, 0 failed, 8 skipped" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (workdir / "results" / "tiny").iterdir()} == stamps
    assert {p: p.read_bytes() for p in (workdir / "leaderboard").rglob("*") if p.is_file()} == before


def test_resume_computes_only_missing_runs(workdir, capsys):
    suite = write(workdir / "tiny.toml", TINY)
    assert main(["run", str(suite)]) == 0
    files = sorted((workdir / "results" / "tiny").glob("*.json"))
    for lost in files[:3]:
        lost.unlink()
    capsys.readouterr()
    assert main(["run", str(suite)]) == 0
    assert "3 runs finished, 0 failed, 5 skipped" in capsys.readouterr().out
    assert sorted((workdir / "results" / "tiny").glob("*.json")) == files


def test_rerun_flag_recomputes_everything(workdir, capsys):
    suite = write(workdir / "tiny.toml", TINY.replace("seeds = [0, 1]", "seeds = [0]"))
    assert main(["run", str(suite)]) == 0
    capsys.readouterr()
    assert main(["run", str(suite), "--rerun"]) == 0
    assert "4 runs finished, 0 failed, 0 skipped" in capsys.readouterr().out


def test_same_seed_gives_the_same_numbers(workdir):
    suite = write(workdir / "tiny.toml", TINY)
    assert main(["run", str(suite)]) == 0
    first = {k: v["metrics"]["auroc"] for k, v in result_files(workdir).items()}
    assert main(["run", str(suite), "--rerun"]) == 0
    assert {k: v["metrics"]["auroc"] for k, v in result_files(workdir).items()} == first


def test_a_failing_run_is_recorded_and_the_suite_goes_on(workdir, with_fixture_plugins, capsys):
    suite = write(workdir / "tiny.toml", TINY + '\n[[fusions]]\nname = "explodes"\n\n[[fusions]]\nname = "wrong_shape"\n')
    assert main(["run", str(suite)]) == 1
    results = result_files(workdir).values()
    failed = [r for r in results if r["status"] == "failed"]
    assert len(failed) == 2 * 2 * 2
    messages = {r["labels"]["fusion"]: r["error"]["message"] for r in failed}
    assert "boom" in messages["explodes"]
    assert "shape (60, 7)" in messages["wrong_shape"]
    assert sum(r["status"] == "ok" for r in results) == 8
    out = capsys.readouterr().out
    assert "8 failed" in out
    board = (workdir / "leaderboard" / "tiny.md").read_text()
    assert "## Failed runs (8)" in board
    # failed runs are retried on the next invocation, finished ones are not
    capsys.readouterr()
    assert main(["run", str(suite)]) == 1
    assert "0 runs finished, 8 failed, 8 skipped" in capsys.readouterr().out


def test_raw_modality_goes_through_its_encoder_fitted_on_train(workdir, with_fixture_plugins):
    suite = write(workdir / "raw.toml", """
[suite]
name = "raw"
[[datasets]]
name = "words_and_vectors"
[[encoders]]
text = "text_length"
[[fusions]]
name = "early"
train = { epochs = 30 }
""")
    assert main(["run", str(suite)]) == 0
    (result,) = result_files(workdir, "raw").values()
    assert result["status"] == "ok"
    assert result["data"]["dims"] == {"tabular": 4, "text": 2}
    assert result["labels"]["encoder"] == "text_length"
    assert result["metrics"]["auroc"] > 0.95  # text length gives the label away
    assert result["metrics"]["extract_s_per_sample"] > 0


def test_raw_modality_without_an_encoder_fails_with_advice(workdir, with_fixture_plugins, capsys):
    suite = write(workdir / "raw.toml", """
[suite]
name = "raw"
[[datasets]]
name = "words_and_vectors"
[[fusions]]
name = "prior"
""")
    assert main(["run", str(suite)]) == 1
    (result,) = result_files(workdir, "raw").values()
    assert "add an [[encoders]] entry that encodes 'text'" in result["error"]["message"]
    assert "add an [[encoders]] entry" in capsys.readouterr().err  # printed as text, not markup
    assert result["error"]["traceback"] is None  # a user error, not a crash


def test_constant_model_scores_chance_auroc_and_its_fit_is_timed(workdir, with_fixture_plugins):
    suite = write(workdir / "prior.toml", TINY.replace('name = "tiny"', 'name = "prior"').split("[[fusions]]")[0]
                  + '[[fusions]]\nname = "prior"\n')
    assert main(["run", str(suite)]) == 0
    for result in result_files(workdir, "prior").values():
        assert result["metrics"]["auroc"] == pytest.approx(0.5)
        # it reports no training time of its own: the runner's measurement of fit() stands in
        assert result["metrics"]["train_s_total"] > 0
        assert result["metrics"]["train_s_per_epoch"] == result["metrics"]["train_s_total"]


def test_relabelling_changes_the_leaderboard_without_rerunning(workdir, capsys):
    suite = write(workdir / "tiny.toml", TINY)
    assert main(["run", str(suite)]) == 0
    write(suite, TINY.replace('label = "binary"', 'label = "renamed"'))
    capsys.readouterr()
    assert main(["run", str(suite)]) == 0
    assert "0 runs finished, 0 failed, 8 skipped" in capsys.readouterr().out
    board = (workdir / "leaderboard" / "tiny.md").read_text()
    assert "## renamed (binary)" in board and "## binary (binary)" not in board


def test_worker_pool_gives_the_same_results_as_in_process(workdir, capsys):
    suite = write(workdir / "tiny.toml", TINY.replace("seeds = [0, 1]", "seeds = [0]"))
    assert main(["run", str(suite)]) == 0
    local = {k: v["metrics"]["auroc"] for k, v in result_files(workdir).items()}
    assert main(["run", str(suite), "--rerun", "--workers", "2"]) == 0
    pooled = result_files(workdir)
    assert {k: v["metrics"]["auroc"] for k, v in pooled.items()} == local
    assert all(r["environment"]["threads"] == 1 for r in pooled.values())


def test_leaderboard_command_rebuilds_from_results_alone(workdir):
    suite = write(workdir / "tiny.toml", TINY)
    assert main(["run", str(suite)]) == 0
    board = workdir / "leaderboard" / "tiny.md"
    original = board.read_bytes()
    board.unlink()
    assert main(["leaderboard", str(suite)]) == 0
    assert board.read_bytes() == original


def test_results_command_lists_every_run(workdir, capsys):
    suite = write(workdir / "tiny.toml", TINY)
    assert main(["run", str(suite)]) == 0
    capsys.readouterr()
    assert main(["results", str(suite)]) == 0
    out = capsys.readouterr().out
    run_ids = list(result_files(workdir))
    assert all(name.removesuffix(".json") in out for name in run_ids)


def test_encoders_apply_only_to_datasets_with_raw_modalities(workdir, with_fixture_plugins):
    suite = write(workdir / "mixed.toml", """
[suite]
name = "mixed"
[[datasets]]
name = "synthetic"
n_samples = 200
[[datasets]]
name = "words_and_vectors"
[[encoders]]
text = "text_length"
[[encoders]]
text = { name = "text_length", label = "text_length_again" }
[[fusions]]
name = "prior"
""")
    from mmbench.registry import load_registry
    from mmbench.suite import load_suite

    runs = load_suite(suite, load_registry()).runs()
    by_dataset = {}
    for spec in runs:
        by_dataset.setdefault(spec.dataset.label, []).append(spec.labels()["encoder"])
    # vectors need no encoder: one run, not one per encoder entry, and no encoder shown
    assert by_dataset["synthetic(n_samples=200)"] == ["-"]
    # a dataset that does not declare its raw modalities keeps the encoders; two entries
    # that differ only by label are one computation, so one run
    assert by_dataset["words_and_vectors"] == ["text_length"]


def test_recorded_quality_equals_scikit_learn_on_the_saved_test_predictions(workdir):
    """Kept from issue 15's audit: every run's accuracy, F1 and AUROC are scikit-learn's
    on the test predictions the run saved (binary: positive-class F1; multiclass: macro F1,
    one-vs-rest macro AUROC), and the test size is the one recorded in ``data.n``."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    from mmbench.results import read_predictions

    suite = write(workdir / "tiny.toml", TINY.replace("seeds = [0, 1]", "seeds = [0]"))
    assert main(["run", str(suite)]) == 0
    for result in result_files(workdir).values():
        saved = read_predictions(workdir / "results" / "tiny", result)
        labels, proba, m = saved["labels"], saved["proba"], result["metrics"]
        assert len(labels) == result["data"]["n"]["test"]
        if result["data"]["task"] == "binary":
            predicted = (proba >= 0.5).astype(int)
            assert m["f1"] == pytest.approx(f1_score(labels, predicted), abs=1e-12)
            assert m["auroc"] == pytest.approx(roc_auc_score(labels, proba), abs=1e-12)
        else:
            predicted = np.argmax(proba, axis=1)
            assert m["f1"] == pytest.approx(f1_score(labels, predicted, average="macro"), abs=1e-12)
            assert m["auroc"] == pytest.approx(roc_auc_score(labels, proba, multi_class="ovr", average="macro"),
                                               abs=1e-12)
        assert m["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
