"""The conformance kit (mmbench.testing): every built-in passes it, and each kind of contract
breach it exists to catch is caught and named."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures_ham10000
import fixtures_social
import numpy as np
import pytest

from mmbench.registry import load_registry
from mmbench.testing import PluginCheckError, check_plugin, check_probabilities, make_splits, make_table, run_checks
from mmbench.train_config import FitReport

REGISTRY = load_registry()


def builtins(kind: str, *, leave_out: tuple[str, ...] = ()) -> list[str]:
    return [i.name for i in REGISTRY.all() if i.kind == kind and i.source.distribution == "mmbench"
            and i.name not in leave_out]


def passes(kind: str, name: str, params: dict | None = None) -> None:
    """check_plugin passes and nothing was skipped (each built-in runs every check here)."""
    results = check_plugin(REGISTRY.get(kind, name).cls, params)
    skipped = [str(r) for r in results if r.status == "skipped"]
    assert not skipped, skipped
    assert all(r.status == "passed" for r in results) and len(results) > 1


@pytest.mark.parametrize("name", builtins("fusion"))
def test_every_builtin_fusion_passes(name):
    passes("fusion", name)


@pytest.mark.parametrize("name", builtins("alignment"))
def test_every_builtin_alignment_passes(name):
    passes("alignment", name)


@pytest.mark.parametrize("name", builtins("reporter"))
def test_every_builtin_reporter_passes(name):
    passes("reporter", name)


#: encoders whose weights are a model download: checked on tiny models in their own tests
WEIGHTS = ("causal_lm", "hf_clip", "hf_text", "hf_vision", "open_clip", "timm", "glove", "minilm",
           "sentence_transformers")


@pytest.mark.parametrize("name", builtins("encoder", leave_out=WEIGHTS))
def test_every_builtin_encoder_without_weights_passes(name):
    passes("encoder", name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minilm", "sentence_transformers"])
def test_the_offline_pretrained_encoders_pass(name):
    passes("encoder", name)


DATA_ROOTS = {
    "ham10000": lambda root: (fixtures_ham10000.build(root), {"root": str(root)})[1],
    "mvsa_single": lambda root: {"root": str(fixtures_social.build_mvsa_single(root))},
    "mvsa_multiple": lambda root: {"root": str(fixtures_social.build_mvsa_multiple(root))},
}


@pytest.mark.parametrize("name", ["synthetic", "synthetic_raw", *DATA_ROOTS])
def test_builtin_datasets_pass_on_generated_or_fixture_data(name, tmp_path):
    passes("dataset", name, DATA_ROOTS[name](tmp_path) if name in DATA_ROOTS else None)


def test_a_dataset_that_needs_a_data_root_is_skipped_not_failed():
    results = run_checks(REGISTRY.get("dataset", "ham10000").cls)
    assert {r.status for r in results[1:]} == {"skipped"}
    assert "root: required parameter missing" in results[1].message


# --- the helpers ------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_make_splits_gives_what_a_fusion_receives(task):
    splits = make_splits(task, {"image": 5, "text": 3}, missing=0.3, sequences=["text"])
    train = splits["train"]
    assert set(splits) == {"train", "val", "test"} and sum(len(s) for s in splits.values()) == 90
    assert train.features["image"].shape[1] == 5 and train.sequences["text"].values.shape[1:] == (4, 3)
    assert not train.present("text").all() and train.present("image").all()
    assert (train.features["text"][~train.present("text")] == 0).all()
    assert train.n_outputs == (1 if task == "binary" else 3)


def test_make_table_keeps_groups_and_raw_items():
    table = make_table("multiclass", ["image", "text"], raw=["text"], groups=True, missing=0.2)
    assert isinstance(table.modalities["text"], list) and None in table.modalities["text"]
    assert list(table.groups[:3]) == ["g0000"] * 3


# --- planted breaches: each is caught and named -------------------------------------------

def failures(cls, params=None) -> dict[str, str]:
    with pytest.raises(PluginCheckError) as caught:
        check_plugin(cls, params)
    return {f.check: f.message for f in caught.value.failures}


class _Base:
    """predict_proba from the first feature column, so every task kind has a shape."""

    name = "planted"

    def fit(self, train, val, config, ctx=None):
        return FitReport()

    def proba(self, data):
        x = data.features[sorted(data.features)[0]]
        columns = 1 if data.task == "binary" else len(data.classes)
        p = 1 / (1 + np.exp(-x[:, :columns]))
        return p[:, 0] if data.task == "binary" else p


def fusion(**body):
    from mmbench.plugin import Fusion

    return type("Planted", (_Base, Fusion), {"predict_proba": lambda self, data: self.proba(data), **body})


def test_a_fusion_returning_logits_is_named():
    found = failures(fusion(predict_proba=lambda self, data: 10 * self.proba(data) - 5))
    assert "outside [0, 1]" in found["binary: fits and predicts probabilities"]


def test_multiclass_rows_that_do_not_sum_to_one_are_named():
    found = failures(fusion())
    assert "multiclass rows must sum to 1" in found["multiclass: fits and predicts probabilities"]
    assert "binary: fits and predicts probabilities" not in found


def test_a_wrong_shape_is_named():
    found = failures(fusion(predict_proba=lambda self, data: np.full((len(data), 2), 0.5)), )
    assert "expected (" in found["binary: fits and predicts probabilities"]


def test_a_fusion_that_ignores_the_seed_is_named():
    def noisy(self, data):
        return np.random.default_rng(int.from_bytes(os.urandom(4), "little")).random(len(data))

    cls = fusion(predict_proba=noisy, task_kinds=("binary",))
    assert "two fits under seed 0 predict differently" in failures(cls)["binary: deterministic under a seed"]


def test_a_fusion_that_claims_to_handle_missing_modalities_and_does_not_is_named():
    def nan_where_missing(self, data):
        p = self.proba(data)
        return np.where(data.present("text"), p, np.nan) if data.task == "binary" else p

    cls = fusion(predict_proba=nan_where_missing, handles_missing=True, task_kinds=("binary",))
    assert "non-finite" in failures(cls)["binary: predicts with absent modalities"]


def test_undeclared_contract_breaches_fail_the_declarations_check():
    from mmbench.plugin import Fusion

    broken = type("NoPredict", (Fusion,), {"name": "no_predict", "fit": _Base.fit})
    assert "does not define predict_proba()" in failures(broken)["declarations"]


def test_dataset_breaches_are_named():
    from mmbench.data import DatasetTable
    from mmbench.plugin import Dataset

    class Wobbly(Dataset):
        name = "wobbly"
        task_kinds = ("binary",)
        modalities = ("image",)
        calls = [0]

        def raw_modalities(self):
            return ()

        def load(self):
            Wobbly.calls[0] += 1
            table = make_table("binary", ["image", "text"], raw=["text"], seed=Wobbly.calls[0])
            return DatasetTable(table.ids, table.labels, "binary", table.classes, table.modalities,
                                groups=np.array([f"g{i % 7}" for i in range(len(table))]))

    found = failures(Wobbly)
    assert "loaded modalities ['text'] it does not declare" in found["loads a well-formed table"]


def test_a_dataset_that_loads_differently_twice_is_named():
    from mmbench.plugin import Dataset

    class Reshuffles(Dataset):
        name = "reshuffles"
        task_kinds = ("binary",)
        calls = [0]

        def load(self):
            Reshuffles.calls[0] += 1
            return make_table("binary", seed=Reshuffles.calls[0])

    assert "different ids or labels" in failures(Reshuffles)["the same table twice"]


def test_encoder_breaches_are_named():
    from mmbench.plugin import Encoder

    class Drifts(Encoder):
        name = "drifts"
        modalities = ("text",)
        calls = [0]

        def encode(self, modality, items):
            Drifts.calls[0] += 1
            return np.array([[len(t or ""), Drifts.calls[0]] for t in items], dtype=float)

    class NanForMissing(Encoder):
        name = "nan_for_missing"
        modalities = ("tabular",)

        def encode(self, modality, items):
            return np.array([[np.nan if row["age"] is None else row["age"]] for row in items])

    class OneShort(Encoder):
        name = "one_short"
        modalities = ("image",)

        def encode(self, modality, items):
            return np.zeros((len(items) - 1, 3))

    assert "different vectors" in failures(Drifts)["text: one finite vector per item, the same twice"]
    assert "non-finite" in failures(NanForMissing)["tabular: one finite vector per item, the same twice"]
    assert "for 6 items" in failures(OneShort)["image: one finite vector per item, the same twice"]


def test_alignment_breaches_are_named():
    from mmbench.plugin import Alignment

    class LearnsFromWhatItTransforms(Alignment):
        name = "learns_late"

        def transform(self, data):  # centres each split on its own mean instead of train's
            return data.with_features({m: x - x.mean(axis=0) for m, x in data.features.items()})

    class InPlace(Alignment):
        name = "in_place"

        def transform(self, data):
            for x in data.features.values():
                x -= 1.0
            return data

    assert "must apply what fit learned" in failures(LearnsFromWhatItTransforms)[
        "binary: keeps shapes and inputs, fitted on train only"]
    assert "changed its input" in failures(InPlace)["binary: keeps shapes and inputs, fitted on train only"]


def test_reporter_breaches_are_named(tmp_path):
    from mmbench.plugin import Reporter

    class Elsewhere(Reporter):
        name = "elsewhere"

        def write(self, board, out_dir):
            path = tmp_path / "outside.txt"
            path.write_text("x")
            return [path]

    class Claims(Reporter):
        name = "claims"

        def write(self, board, out_dir):
            return [Path(out_dir) / "never_written.md"]

    assert "outside the folder" in failures(Elsewhere)["writes the files it returns"]
    assert "missing or empty" in failures(Claims)["writes the files it returns"]


def test_check_probabilities_is_the_assertion_fusion_tests_use():
    test = make_splits("multiclass")["test"]
    check_probabilities(np.full((len(test), 3), 1 / 3), test)
    with pytest.raises(AssertionError, match="sum to 1"):
        check_probabilities(np.full((len(test), 3), 0.5), test)


def test_plugins_check_command(run_cli, use_plugins):
    ok = run_cli("plugins", "--check", "early", "none", "csv")
    assert ok.code == 0, ok.out
    assert "ok fusion 'early'" in ok.out and "3 plugin(s) checked" in ok.out

    use_plugins("mmbench,fx_contract_breaches")
    bad = run_cli("plugins", "--check", "misspelled", "fine")
    assert bad.code == 1
    assert "fusion 'misspelled'" in bad.out and "build_model()" in bad.out
    assert "FAIL fusion 'fine'" in bad.out and "outside [0, 1]" not in bad.out


def test_run_in_suite_returns_the_record_or_says_why_there_is_none(tmp_path):
    import tomllib

    from mmbench.testing import _toml, run_in_suite

    table = {"name": "x", "n": 3, "rate": 0.5, "on": True, "dims": [8, 8], "train": {"epochs": 2, "lr": 1e-3},
             "path": 'C:\\data\\"quoted" é'}
    assert tomllib.loads(f"t = {_toml(table)}")["t"] == table  # the suite it writes reads back as given

    record = run_in_suite(tmp_path / "ok", {"image": "color_histogram", "text": "tfidf_svd", "tabular": "tabular"})
    assert record["status"] == "ok" and record["data"]["dims"]["image"] > 0
    with pytest.raises(AssertionError, match=r"expected one result, found 0 \(mmbench run exited 2\)"):
        run_in_suite(tmp_path / "bad", {"image": "no_such_encoder"})
