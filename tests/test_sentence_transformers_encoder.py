"""The ``sentence_transformers`` encoder: the library's own pipeline, offline, on the bundled
all-MiniLM-L6-v2 (the one real model this machine has)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mmbench.errors import UserError
from mmbench_encoders.minilm import MiniLM
from mmbench_encoders.sentence_transformers_encoder import SentenceTransformers

SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
             "A cheetah is running behind its prey.", "Two men pushed carts through the woods."]


@pytest.fixture(scope="module")
def encoder() -> SentenceTransformers:
    return SentenceTransformers()


def test_vectors_equal_minilms_own_implementation_of_the_same_model(encoder):
    library = encoder.encode("text", SENTENCES)
    ours = MiniLM().encode("text", SENTENCES)
    assert library.shape == (5, 384) and library.dtype == np.float32
    np.testing.assert_allclose(library, ours, atol=1e-5)  # two implementations, one model
    np.testing.assert_allclose(np.linalg.norm(library, axis=1), 1.0, atol=1e-5)  # its Normalize module


def test_missing_texts_are_zero_rows_and_progress_counts_every_item(encoder):
    reported: list[int] = []
    encoder.on_items = reported.append
    try:
        out = encoder.encode("text", [SENTENCES[0], None, float("nan"), SENTENCES[1]])
    finally:
        encoder.on_items = None
    assert not out[1].any() and not out[2].any() and out[0].any() and out[3].any()
    assert sum(reported) == 4


def test_max_length_truncates_without_changing_other_encoders_of_the_same_model(encoder):
    long_text = " ".join(["lesion"] * 40) + " with a malignant border"
    short = SentenceTransformers(max_length=8)
    truncated, full = short.encode("text", [long_text]), encoder.encode("text", [long_text])
    assert not np.allclose(truncated, full, atol=1e-4)
    np.testing.assert_allclose(short.encode("text", [" ".join(["lesion"] * 40)]), truncated, atol=1e-5)
    np.testing.assert_allclose(encoder.encode("text", [long_text]), full)  # the shared model is reset


def test_fingerprint_follows_what_changes_vectors_and_not_batch_size_or_location(encoder, tmp_path):
    base = encoder.fingerprint()
    assert SentenceTransformers(batch_size=3).fingerprint() == base
    assert SentenceTransformers(max_length=8).fingerprint() != base
    assert SentenceTransformers(normalize=True).fingerprint() != base
    copy = shutil.copytree(encoder.folder, tmp_path / "copy")
    assert SentenceTransformers(model=str(copy)).fingerprint() == base
    pooling = copy / "1_Pooling" / "config.json"
    pooling.write_text(pooling.read_text().replace('"pooling_mode_mean_tokens": true',
                                                   '"pooling_mode_mean_tokens": false'))
    assert SentenceTransformers(model=str(copy)).fingerprint() != base  # a module config decides vectors


def test_missing_models_are_user_errors_that_say_what_to_download(tmp_path):
    with pytest.raises(UserError, match="hf download sentence-transformers/all-mpnet-base-v2"):
        SentenceTransformers(model="sentence-transformers/all-mpnet-base-v2")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="modules.json"):
        SentenceTransformers(model=str(tmp_path))
