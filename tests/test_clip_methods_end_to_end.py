"""The raw-input methods of the PairDx paper on a tiny CLIP built from a config: zero-shot with
class prompts and end-to-end fine-tuning, in one suite beside an embedding fusion."""

from __future__ import annotations

import json

import pytest

from tiny_hf import tiny_clip_folder


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return tiny_clip_folder(tmp_path_factory.mktemp("tiny-clip"))


def test_zero_shot_finetune_and_a_probe_share_one_clip_suite(clip_folder, write_suite, run_cli, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip = f'{{ name = "hf_clip", model = "{clip_folder}" }}'
    suite = write_suite(f"""
        [suite]
        name = "clip_methods"
        [[datasets]]
        name = "synthetic_raw"
        n_samples = 90
        image_size = 32
        [[encoders]]
        image = {clip}
        text = {clip}
        tabular = "tabular"
        [[fusions]]
        name = "zero_shot"
        templates = ["a photo of a {{class}}", "an image of {{class}}"]
        [[fusions]]
        name = "finetune"
        train = {{ epochs = 2, batch_size = 16 }}
        [[fusions]]
        name = "early"
        train = {{ epochs = 2 }}
        """)
    assert run_cli("run", suite).code == 0
    files = (tmp_path / "results" / "clip_methods").glob("*.json")
    results = {r["labels"]["fusion"].split("(")[0]: r for r in (json.loads(p.read_text()) for p in files)}
    assert set(results) == {"zero_shot", "finetune", "early"} and all(r["status"] == "ok" for r in results.values())

    zero_shot = results["zero_shot"]
    assert zero_shot["fit_info"]["logit_scale"] == pytest.approx(14.29, abs=0.01)  # the model's own
    prompts = zero_shot["fit_info"]["prompts"]
    assert list(prompts) == zero_shot["data"]["classes"]
    assert prompts["class_0"] == ["a photo of a class_0", "an image of class_0"]
    assert zero_shot["extraction"]["image"]["encoder"] == "hf_clip"  # images through the cache

    finetune = results["finetune"]
    assert finetune["extraction"] == {}  # trains the towers on raw items: nothing extracted
    assert len(finetune["history"]) == finetune["metrics"]["epochs_run"] == 2
    assert finetune["metrics"]["train_s_per_epoch"] > 0
    # the embedding fusion found the vectors zero_shot's run cached (same encoder, same split)
    assert results["early"]["extraction"]["image"]["cached"]
