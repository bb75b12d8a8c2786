"""What the runner hands plugins beyond embeddings: the device, extraction progress, raw
items and encoder objects for fusions that ask for them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from mmbench.cli import main
from mmbench.device import resolve_device
from mmbench.errors import UserError
from mmbench.registry import load_registry
from mmbench.run import encoder_objects, execute
from mmbench.suite import load_suite

SUITE = """
[suite]
name = "probe"
[[datasets]]
name = "words_and_vectors"
[[encoders]]
text = "batched_length"
[[fusions]]
name = "{fusion}"
"""


@pytest.fixture
def probes(use_plugins, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    use_plugins("mmbench,raw_text_dataset,contract_probes")
    import contract_probes

    contract_probes.SEEN.clear()
    return contract_probes.SEEN


def results(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "results" / "probe").glob("*.json"))]


def spec_of(path: Path):
    return load_suite(path, load_registry()).runs()[0]


def test_cpu_is_the_default_and_auto_falls_back_to_it_without_a_gpu():
    import torch

    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto") in ("cpu", "mps")


@pytest.mark.parametrize("name, says", [("cuda", "use --device cpu"), ("cuda:x", "cuda:N"),
                                        ("tpu", "cpu, cuda, cuda:N, mps or auto")])
def test_an_unusable_device_is_a_user_error_with_the_choices(name, says):
    import torch

    if name == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match=says.replace("(", r"\(")):
        resolve_device(name)


def test_run_with_an_unusable_device_stops_before_any_run(probes, tmp_path, write_suite, run_cli):
    suite = write_suite(SUITE.format(fusion="raw_probe"))
    result = run_cli("run", suite, "--device", "tpu")
    assert result.code == 2 and "--device 'tpu'" in result.err
    assert not (tmp_path / "results").exists()


def test_the_device_reaches_plugins_and_the_result_but_not_the_run_id(probes, write_suite):
    spec = spec_of(write_suite(SUITE.format(fusion="raw_probe")))
    assert replace(spec, device="cuda:0").run_id == spec.run_id  # same numbers, same result file
    result = execute(replace(spec, device="cpu"), load_registry())
    assert result["status"] == "ok", result["error"]
    assert result["environment"]["device"] == "cpu" and probes["fusion_device"] == "cpu"


def test_extraction_reports_items_per_batch_and_nothing_on_a_cache_hit(probes, write_suite):
    spec = spec_of(write_suite(SUITE.format(fusion="encoder_user")))
    calls: list[tuple[str, int, int]] = []
    first = execute(spec, load_registry(), on_items=lambda what, done, total: calls.append((what, done, total)))
    assert first["status"] == "ok", first["error"]
    assert {what for what, _, _ in calls} == {"extracting text (batched_length)"}
    done = [d for _, d, _ in calls]
    assert done == sorted(done) and done[-1] == calls[-1][2] == 200  # every sample, in order
    assert len(calls) > 3  # batch by batch (16 per batch, three splits), not once at the end
    calls.clear()
    second = execute(spec, load_registry(), on_items=lambda *a: calls.append(a))
    assert second["extraction"]["text"]["cached"] and calls == []


def test_a_raw_input_fusion_gets_raw_items_vectors_and_the_encoders(probes, write_suite):
    suite = write_suite(SUITE.format(fusion="raw_probe"))
    assert main(["run", str(suite)]) == 0
    (result,) = results(suite.parent)
    assert probes["raw"] == {"text": "str"}  # the texts themselves, not vectors
    assert probes["features"] == ["tabular"]  # modalities that are vectors stay vectors
    assert probes["encoders"] == {"text": "BatchedLength"}
    assert "devices" not in probes  # nothing extracted: the fusion runs the backbones itself
    assert result["extraction"] == {} and result["metrics"]["auroc"] > 0.95
    assert result["data"]["missing"]["test"] == {"tabular": 0, "text": 0}


def test_an_embedding_fusion_asking_for_encoders_gets_them_with_the_vectors(probes, write_suite):
    suite = write_suite(SUITE.format(fusion="encoder_user"))
    assert main(["run", str(suite)]) == 0
    assert probes["encoders"] == {"text": "BatchedLength"} and probes["features"] == ["tabular", "text"]


@pytest.mark.parametrize("extra, says", [
    ('[[alignments]]\nname = "gap_shift"\nimage = "tabular"\ntext = "text"\n', "cannot apply"),
    ('[robustness]\nmissing_rate = [0.3]\nmissing_modality = "text"\n', "without [robustness]"),
])
def test_raw_input_fusions_refuse_what_only_applies_to_embeddings(probes, write_suite, extra, says):
    suite = write_suite(SUITE.format(fusion="raw_probe") + extra)
    assert main(["run", str(suite)]) == 1
    (result,) = results(suite.parent)
    assert says in result["error"]["message"] and result["error"]["traceback"] is None


def test_the_identity_alignment_is_accepted_by_raw_input_fusions(probes, write_suite):
    suite = write_suite(SUITE.format(fusion="raw_probe") + '[[alignments]]\nname = "none"\n')
    assert main(["run", str(suite)]) == 0


def test_one_encoder_table_for_two_modalities_is_one_object_and_sweeps_together(probes, write_suite):
    suite = write_suite("""
        [suite]
        name = "probe"
        [[datasets]]
        name = "synthetic_raw"
        [[encoders]]
        image = "color_histogram"
        text = "tfidf_svd"
        tabular = "tabular"
        [[encoders]]
        image = { name = "color_histogram", bins = [4, 8] }
        text = "tfidf_svd"
        tabular = { name = "color_histogram", bins = [4, 8] }
        [[fusions]]
        name = "early"
        """)
    runs = [spec.encoders for spec in load_suite(suite, load_registry()).runs()]
    assert len(runs) == 3  # the sweep moves image and tabular together: 1 + 2 runs, not 1 + 4
    assert len({id(c) for c in runs[0].values()}) == 3
    for encoders in runs[1:]:
        assert encoders["image"] is encoders["tabular"]  # a paired model (image = text = "clip") loads once
        objects = encoder_objects(encoders, load_registry())
        assert objects["image"] is objects["tabular"] and objects["text"] is not objects["image"]
    assert {e["image"].params["bins"] for e in runs[1:]} == {4, 8}
