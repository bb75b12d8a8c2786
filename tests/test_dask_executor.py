"""The Dask executor on a LocalCluster started here: same numbers as the local executor,
resume, failed runs and extractions, lost workers, Ctrl-C, the CLI's [executor] table,
and the advice when dask is missing or the scheduler unreachable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mmbench.errors import UserError
from mmbench.registry import load_registry
from mmbench.suite import load_suite

distributed = pytest.importorskip("distributed")

RUN_FIXTURES = Path(__file__).resolve().parent / "run_fixtures"
PLUGINS = "mmbench,faulty_fusions,raw_text_dataset,cluster_faults"
#: a vectors dataset and one whose text goes through an encoder (so extraction runs first)
SUITE = """
[suite]
name = "{name}"
seeds = [0, 1]
threads = {threads}

[train]
epochs = 3

[[datasets]]
name = "synthetic"
n_samples = 200
dims = [8, 8]

[[datasets]]
name = "words_and_vectors"

[[encoders]]
text = "{encoder}"

{fusions}
"""
EARLY = '[[fusions]]\nname = "early"\nhidden = 8\n'


def quality(metrics: dict) -> dict:
    """The metrics that measure the model, not the time or memory it took."""
    return {k: v for k, v in metrics.items() if not ("_s_" in k or k.endswith(("_s", "_mb")))}


@pytest.fixture(scope="module")
def worker_env(tmp_path_factory):
    """What the workers inherit: the fixture plugins importable (spawned workers start with
    this process's sys.path), a private embedding cache. The nannies run in this process
    and restart dead workers with its state, so it stays for the whole module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(RUN_FIXTURES))
        patch.setenv("MMBENCH_PLUGINS", PLUGINS)
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("MMBENCH_CACHE", str(tmp_path_factory.mktemp("worker-cache")))
        yield


@pytest.fixture(scope="module")
def cluster(worker_env):
    """Two single-thread worker processes, configured as ``run_suite_dask`` configures its
    own LocalCluster (the scheduler retries nothing; the executor does)."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
    with cluster:
        yield cluster


@pytest.fixture
def plugins(use_plugins):
    use_plugins(PLUGINS)


@pytest.fixture
def make_suite(tmp_path, plugins):
    def make(name: str, fusions: str = EARLY, threads: int = 0, encoder: str = "text_length"):
        path = tmp_path / f"{name}.toml"
        path.write_text(SUITE.format(name=name, threads=threads, fusions=fusions, encoder=encoder))
        suite = load_suite(path, load_registry())
        suite.report["results"] = str(tmp_path / "results")
        return suite

    return make


def results(suite) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in suite.results_dir.glob("*.json")}


def dask_run(suite, cluster, **options):
    from mmbench.dask_executor import run_suite_dask

    return run_suite_dask(suite, load_registry(), address=cluster.scheduler_address, **options)


def test_same_metrics_and_predictions_as_the_local_executor(make_suite, tmp_path, cluster):
    from mmbench.executor import run_suite
    from mmbench.results import read_predictions

    local = make_suite("same")
    local.report["results"] = str(tmp_path / "local")
    assert len(run_suite(local, load_registry()).ok) == 4
    on_dask = make_suite("same")
    outcome = dask_run(on_dask, cluster)
    assert len(outcome.ok) == 4 and not outcome.failed

    expected, got = results(local), results(on_dask)
    assert set(got) == set(expected)
    for run_id, result in got.items():
        assert quality(result["metrics"]) == quality(expected[run_id]["metrics"])
        assert "auroc" in quality(result["metrics"])
        # the client wrote the predictions the worker sent back, beside the result
        mine, theirs = read_predictions(on_dask.results_dir, result), read_predictions(local.results_dir,
                                                                                      expected[run_id])
        np.testing.assert_array_equal(mine["proba"], theirs["proba"])
        # torch threads default to the worker's single thread
        assert result["environment"]["threads"] == 1
        if "text" in result["extraction"]:  # extracted once ahead of the runs, so a cache hit
            assert result["extraction"]["text"]["cached"] is True


def test_resume_runs_only_what_has_no_result(make_suite, cluster):
    suite = make_suite("resume")
    suite.datasets = suite.datasets[:1]
    first = dask_run(suite, cluster)
    assert len(first.ok) == 2 and first.skipped == 0
    again = dask_run(suite, cluster)
    assert again.ok == [] and again.failed == [] and again.skipped == 2

    run_id = sorted(results(suite))[0]
    (suite.results_dir / f"{run_id}.json").unlink()
    partial = dask_run(suite, cluster)
    assert len(partial.ok) == 1 and partial.skipped == 1
    assert run_id in results(suite)


def test_a_run_that_raises_is_recorded_and_the_others_finish(make_suite, cluster):
    suite = make_suite("raises", fusions='[[fusions]]\nname = "explodes"\n[[fusions]]\nname = "prior"\n',
                       threads=1)
    suite.datasets = suite.datasets[:1]
    outcome = dask_run(suite, cluster)
    assert len(outcome.ok) == 2 and len(outcome.failed) == 2
    for result in results(suite).values():
        if result["labels"]["fusion"] == "explodes":
            assert result["status"] == "failed"
            assert "boom: this fusion always fails" in result["error"]["message"]
        else:
            assert result["status"] == "ok"


def test_a_failed_extraction_fails_its_runs_once_and_the_others_finish(make_suite, cluster):
    suite = make_suite("extraction", fusions='[[fusions]]\nname = "prior"\n', encoder="fails_to_encode")
    outcome = dask_run(suite, cluster)
    assert len(outcome.ok) == 2 and len(outcome.failed) == 2  # synthetic needs no encoder
    for result in results(suite).values():
        if result["labels"]["dataset"] == "words_and_vectors":
            assert result["status"] == "failed"
            assert result["error"]["message"] == ("extracting the embeddings it needs failed: RuntimeError: "
                                                  "this encoder cannot encode anything")


def test_ctrl_c_keeps_what_finished_and_the_next_call_resumes(make_suite, cluster, monkeypatch):
    import mmbench.dask_executor as executor

    suite = make_suite("interrupted")
    suite.seeds = [0, 1, 2]
    suite.datasets = suite.datasets[:1]
    real_write = executor.write_result

    def write_then_interrupt(results_dir, result):
        real_write(results_dir, result)
        raise KeyboardInterrupt  # as if Ctrl-C came right after the first result

    monkeypatch.setattr(executor, "write_result", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        dask_run(suite, cluster)
    assert len(results(suite)) == 1

    monkeypatch.setattr(executor, "write_result", real_write)
    resumed = dask_run(suite, cluster)
    assert len(resumed.ok) == 2 and resumed.skipped == 1


@pytest.mark.slow
def test_a_lost_worker_is_retried_then_the_run_is_marked_failed(make_suite, cluster, tmp_path):
    marker = tmp_path / "died-once"
    fusions = f'[[fusions]]\nname = "dies_once"\nmarker = "{marker}"\n[[fusions]]\nname = "always_dies"\n'
    suite = make_suite("killed", fusions=fusions)
    suite.seeds, suite.datasets = [0], suite.datasets[:1]
    outcome = dask_run(suite, cluster, retries=1)

    by_fusion = {r["spec"]["fusion"]["name"]: r for r in results(suite).values()}
    assert marker.exists()  # the first attempt did kill its worker...
    assert by_fusion["dies_once"]["status"] == "ok"  # ...and the retry on a fresh one finished
    lost = by_fusion["always_dies"]
    assert lost["status"] == "failed" and lost["error"]["type"] == "KilledWorker"
    assert "worker died 2 time(s)" in lost["error"]["message"] and "more memory" in lost["error"]["message"]
    assert len(outcome.ok) == 1 and len(outcome.failed) == 1


@pytest.mark.slow
def test_a_run_past_its_time_limit_is_stopped_and_recorded_failed(make_suite, cluster):
    fusions = '[[fusions]]\nname = "sleeps"\nseconds = 600\n[[fusions]]\nname = "prior"\n'
    suite = make_suite("timeout", fusions=fusions)
    suite.seeds, suite.datasets = [0], suite.datasets[:1]
    outcome = dask_run(suite, cluster, run_timeout=30)
    assert len(outcome.ok) == 1 and len(outcome.failed) == 1
    by_fusion = {r["spec"]["fusion"]["name"]: r for r in results(suite).values()}
    assert by_fusion["prior"]["status"] == "ok"
    slow = by_fusion["sleeps"]
    assert slow["status"] == "failed" and slow["error"]["type"] == "TimeoutError"
    assert slow["error"]["message"].startswith("timed out after 30 s")
    # its worker was restarted: the cluster takes the next suite with every worker
    again = make_suite("after_timeout")
    again.seeds, again.datasets = [0, 1], again.datasets[:1]
    assert len(dask_run(again, cluster).ok) == 2


@pytest.mark.slow
def test_without_an_address_it_runs_on_a_local_cluster_of_its_own(make_suite, worker_env):
    from mmbench.dask_executor import run_suite_dask

    suite = make_suite("own")
    suite.seeds, suite.datasets = [0], suite.datasets[:1]
    outcome = run_suite_dask(suite, load_registry(), address=None, n_workers=1, threads_per_worker=2)
    assert len(outcome.ok) == 1
    (result,) = results(suite).values()
    assert result["environment"]["threads"] == 2  # the worker's threads


def test_without_dask_installed_it_says_how_to_install(make_suite, monkeypatch):
    from mmbench.dask_executor import run_suite_dask

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(UserError, match=r'pip install "mmbench\[dask\]"'):
        run_suite_dask(make_suite("absent"), load_registry(), address=None)


def test_an_unreachable_scheduler_is_a_user_error(make_suite):
    import dask

    from mmbench.dask_executor import run_suite_dask

    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}), pytest.raises(UserError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_suite_dask(make_suite("nowhere"), load_registry(), address="tcp://127.0.0.1:9")


def test_suite_with_executor_table_runs_on_dask_from_the_cli(tmp_path, plugins, cluster, run_cli):
    path = tmp_path / "cli.toml"
    text = SUITE.format(name="cli", threads=0, fusions=EARLY, encoder="text_length").replace("seeds = [0, 1]", "seeds = [0]")
    path.write_text(text + f'\n[report]\nbootstrap = 0\n[executor]\nkind = "dask"\n'
                    f'address = "{cluster.scheduler_address}"\n')
    result = run_cli("run", path, "--results", tmp_path / "results", "--output", tmp_path / "board")
    assert result.code == 0, result.err
    assert "2 runs finished, 0 failed" in result.out
    assert "words_and_vectors" in (tmp_path / "board" / "cli.md").read_text()
    assert len(list((tmp_path / "results" / "cli").glob("*.test.npz"))) == 2

