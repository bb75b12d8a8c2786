"""The ``glove`` encoder: a local GloVe text file, the PairDx paper's tokenisation, tokens + mean."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmbench_encoders import glove as glove_module
from mmbench_encoders.glove import Glove, load_glove, tokenize

from mmbench.cli import main
from mmbench.data import Encoded
from mmbench.errors import UserError


VECTORS = {
    "the": [1.0, 0.0, 0.0, 0.0],
    "cat": [0.0, 2.0, 0.0, 0.0],
    "sat": [0.0, 0.0, 3.0, 0.0],
    "dont": [0.0, 0.0, 0.0, 4.0],
    "xray": [1.0, 1.0, 1.0, 1.0],
    # the raw-text fixture dataset's words
    "a": [0.1, 0.2, 0.3, 0.4],
    "long": [1.0, -1.0, 0.5, 0.0],
    "positive": [2.0, 0.0, -1.0, 1.0],
    "sentence": [0.0, 1.0, 1.0, -1.0],
    "with": [0.3, 0.3, 0.3, 0.3],
    "many": [-1.0, 0.5, 0.0, 2.0],
    "words": [0.5, 0.5, -0.5, -0.5],
    "short": [-2.0, 1.0, 0.0, -1.0],
}


def write_glove(path: Path, vectors: dict = VECTORS, header: bool = False) -> Path:
    lines = [f"{len(vectors)} 4"] if header else []
    lines += [f"{w} " + " ".join(f"{x:.6f}" for x in v) for w, v in vectors.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make(path: Path, **params) -> Glove:
    defaults = {p.name: p.default for p in Glove.parameters if not p.required}
    return Glove(**{**defaults, "path": str(path), **params})


def vec(word: str) -> np.ndarray:
    return np.asarray(VECTORS[word], dtype=np.float32)


@pytest.fixture
def glove_file(tmp_path: Path) -> Path:
    return write_glove(tmp_path / "glove.test.4d.txt")


def test_tokenisation_is_pairdx():
    assert tokenize("The CAT, sat!  Don't x-ray...") == ["the", "cat", "sat", "dont", "xray"]
    assert tokenize("") == [] and tokenize(" ?! ") == []


def test_tokens_mask_truncation_and_mean(glove_file):
    out = make(glove_file, max_tokens=3).encode("text", ["The CAT, sat! Don't", "cat.", "", None])
    assert isinstance(out, Encoded)
    values, mask = out.tokens.values, out.tokens.mask
    assert values.shape == (4, 3, 4) and mask.shape == (4, 3) and out.vectors.shape == (4, 4)
    # truncated to the first 3 words ("dont" is dropped); padding is masked and zero
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(values[0], [vec("the"), vec("cat"), vec("sat")])
    np.testing.assert_allclose(values[1, 0], vec("cat"))
    assert not values[1, 1:].any() and not values[2:].any()
    np.testing.assert_allclose(out.vectors[0], (vec("the") + vec("cat") + vec("sat")) / 3, rtol=1e-6)
    np.testing.assert_allclose(out.vectors[1], vec("cat"))
    assert not out.vectors[2:].any()  # no known token: zeros


def test_default_max_tokens_is_32(glove_file):
    out = make(glove_file).encode("text", ["cat " * 40])
    assert out.tokens.values.shape == (1, 32, 4) and out.tokens.mask.all()


def test_unknown_words_skip_or_zero(glove_file):
    texts = ["the zebra cat", "zebra quagga"]
    skip = make(glove_file).encode("text", texts)
    np.testing.assert_array_equal(skip.tokens.mask[:, :3], [[1, 0, 1], [0, 0, 0]])
    np.testing.assert_allclose(skip.vectors[0], (vec("the") + vec("cat")) / 2, rtol=1e-6)
    assert not skip.vectors[1].any()

    zero = make(glove_file, unknown="zero").encode("text", texts)
    np.testing.assert_array_equal(zero.tokens.mask[:, :3], [[1, 1, 1], [1, 1, 0]])
    assert not zero.tokens.values[0, 1].any()  # the unknown word is a real zero vector
    np.testing.assert_allclose(zero.vectors[0], (vec("the") + vec("cat")) / 3, rtol=1e-6)
    assert not zero.vectors[1].any()
    np.testing.assert_allclose(zero.tokens.values, skip.tokens.values)


def test_word2vec_header_line_is_skipped(tmp_path, glove_file):
    with_header = write_glove(tmp_path / "w2v.txt", header=True)
    index, matrix = load_glove(with_header)
    assert "13" not in index and len(index) == len(VECTORS) and matrix.shape == (len(VECTORS), 4)
    assert matrix.dtype == np.float32
    texts = ["the cat sat", "short words"]
    a = make(with_header).encode("text", texts)
    b = make(glove_file).encode("text", texts)
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_header_with_other_dimension_is_refused(tmp_path):
    path = tmp_path / "bad_header.txt"
    path.write_text("2 5\nthe 1 2 3 4\ncat 1 2 3 4\n")
    with pytest.raises(UserError, match="inconsistent dimensions"):
        load_glove(path)


def test_fingerprint_follows_the_file_content_not_its_place(tmp_path, glove_file):
    base = make(glove_file).fingerprint()
    assert make(glove_file).fingerprint() == base
    copy_dir = tmp_path / "elsewhere"
    copy_dir.mkdir()
    copy = shutil.copy(glove_file, copy_dir / "renamed.txt")
    assert make(copy).fingerprint() == base  # same bytes in another place: same vectors
    assert make(glove_file, max_tokens=16).fingerprint() != base
    assert make(glove_file, unknown="zero").fingerprint() != base
    changed = dict(VECTORS, cat=[0.0, 2.5, 0.0, 0.0])
    write_glove(Path(copy), changed)
    os.utime(copy, ns=(1, 1))  # a new mtime even on coarse file systems
    assert make(copy).fingerprint() != base
    np.testing.assert_allclose(make(copy).encode("text", ["cat"]).vectors[0], [0, 2.5, 0, 0])


@pytest.mark.parametrize("content, line, problem", [
    ("the 1 2 3 4\ncat 1 2 x 4\n", 2, "malformed line: 'x' is not a number"),
    ("the 1 2 3 4\n\ncat\n", 3, "malformed line: the word 'cat' has no values"),
    ("the 1 2 3 4\ncat 1 2 3\n", 2, "inconsistent dimensions: 3 values"),
    ("the 1 2 3 4\ncat 1 2 3 4 5\n", 2, "inconsistent dimensions: 5 values"),
])
def test_malformed_files_name_the_file_and_line(tmp_path, content, line, problem):
    path = tmp_path / "broken.txt"
    path.write_text(content)
    with pytest.raises(UserError) as info:
        make(path).encode("text", ["the cat"])
    message = str(info.value)
    assert str(path) in message and f"line {line}" in message and problem in message


def test_other_bad_inputs(tmp_path, glove_file):
    with pytest.raises(UserError, match="not a file"):
        make(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(UserError, match="no word vectors"):
        load_glove(empty)
    nan = tmp_path / "nan.txt"
    nan.write_text("the 1 2 3 4\ncat 1 nan 3 4\n")
    with pytest.raises(UserError, match="'cat' holds a non-finite value"):
        load_glove(nan)
    with pytest.raises(UserError, match="item 1 is a int"):
        make(glove_file).encode("text", ["the", 3])


def test_words_with_spaces_are_skipped_and_duplicates_keep_the_first(tmp_path):
    path = tmp_path / "840b_like.txt"
    path.write_text("the 1 2 3 4\n. . . 5 6 7 8\nthe 9 9 9 9\ncat 0 0 0 1\n")
    index, matrix = load_glove(path)
    assert list(index) == ["the", "cat"]
    np.testing.assert_array_equal(matrix, [[1, 2, 3, 4], [0, 0, 0, 1]])


def test_the_file_is_parsed_once_per_process(glove_file, monkeypatch):
    load_glove(glove_file)
    calls = []
    monkeypatch.setattr(glove_module, "_parse", lambda path: calls.append(path))
    make(glove_file).encode("text", ["cat"])
    assert calls == []
    assert len(glove_module._TABLES) <= glove_module._MAX_TABLES


def test_no_items(glove_file):
    out = make(glove_file).encode("text", [])
    assert out.vectors.shape == (0, 4) and out.tokens.values.shape == (0, 32, 4)


@pytest.fixture
def workdir(tmp_path, monkeypatch, use_plugins):
    monkeypatch.chdir(tmp_path)
    use_plugins("mmbench,raw_text_dataset")
    write_glove(tmp_path / "glove.tiny.txt")
    return tmp_path


def test_validate_reports_a_missing_file(workdir):
    (workdir / "s.toml").write_text("""
[suite]
name = "noglove"
[[datasets]]
name = "words_and_vectors"
[[encoders]]
text = { name = "glove", path = "nowhere/glove.txt" }
[[fusions]]
name = "early"
""")
    assert main(["validate", str(workdir / "s.toml")]) == 2


def test_glove_feeds_early_and_attention_fusions(workdir):
    (workdir / "s.toml").write_text("""
[suite]
name = "glove"
threads = 1
[[datasets]]
name = "words_and_vectors"
[[encoders]]
text = { name = "glove", path = "glove.tiny.txt", max_tokens = 8 }
[[fusions]]
name = "early"
hidden = 16
train = { epochs = 5 }
[[fusions]]
name = "attention"
image_modality = "tabular"
attention_dim = 8
hidden = 16
train = { epochs = 3, batch_size = 64 }
""")
    assert main(["run", str(workdir / "s.toml")]) == 0
    results = [json.loads(p.read_text()) for p in (workdir / "results" / "glove").glob("*.json")]
    assert sorted(r["labels"]["fusion"].split("(")[0] for r in results) == ["attention", "early"]
    for result in results:
        assert result["status"] == "ok", result["error"]
        assert result["labels"]["encoder"].startswith("glove")
        assert result["data"]["dims"]["text"] == 4
    early = next(r for r in results if r["labels"]["fusion"].startswith("early"))
    assert early["metrics"]["auroc"] > 0.9  # the mean vectors separate the two texts
