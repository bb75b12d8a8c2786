"""The built-in weight-free encoders: shapes, train-only fitting, determinism, item types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mmbench_encoders.image import ColorHistogram, Hog
from mmbench_encoders.tabular import Tabular
from mmbench_encoders.text import TfidfSvd
from PIL import Image
from support import make

TRAIN_TEXTS = ["a red round spot on the arm", "a dark rough patch on the leg", "round red spot",
               "rough dark patch", "pale smooth area on the face", "smooth pale area"]


def images(n: int = 6, size: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def check(vectors: np.ndarray, n: int) -> None:
    assert vectors.dtype == np.float32 and vectors.ndim == 2 and len(vectors) == n
    assert np.isfinite(vectors).all()


# -- tfidf_svd ----------------------------------------------------------------------------

def test_tfidf_svd_caps_components_and_normalises():
    encoder = make(TfidfSvd, n_components=128)
    encoder.fit("text", TRAIN_TEXTS)
    out = encoder.encode("text", TRAIN_TEXTS + ["an unseen sentence"])
    check(out, 7)
    assert out.shape[1] == len(TRAIN_TEXTS) - 1  # capped by train texts - 1 (and vocabulary - 1)
    assert np.allclose(np.linalg.norm(out[:6], axis=1), 1.0, atol=1e-5)
    assert np.allclose(out[6], 0.0)  # no train word: zero vector


def test_tfidf_svd_vocabulary_comes_from_train_only():
    encoder = make(TfidfSvd, n_components=3)
    encoder.fit("text", TRAIN_TEXTS)
    vocabulary = encoder.vocabulary
    first = encoder.encode("text", TRAIN_TEXTS)
    encoder.encode("text", ["zebra zebra red", "quokka"])  # words only in val/test
    assert "zebra" not in encoder.vocabulary and encoder.vocabulary == vocabulary
    assert np.array_equal(encoder.encode("text", TRAIN_TEXTS), first)
    # a val/test word adds nothing: "zebra red" encodes like "red"
    assert np.allclose(*encoder.encode("text", ["zebra red", "red"]))


def test_tfidf_svd_is_deterministic_and_fingerprint_follows_params():
    a, b = make(TfidfSvd, n_components=3), make(TfidfSvd, n_components=3)
    for encoder in (a, b):
        encoder.fit("text", TRAIN_TEXTS)
    assert np.array_equal(a.encode("text", TRAIN_TEXTS), b.encode("text", TRAIN_TEXTS))
    assert a.fingerprint() == b.fingerprint() != make(TfidfSvd, n_components=4).fingerprint()
    assert TfidfSvd.fitted


def test_tfidf_svd_handles_missing_texts_and_requires_fit():
    encoder = make(TfidfSvd)
    with pytest.raises(RuntimeError, match="fit"):
        encoder.encode("text", TRAIN_TEXTS)
    encoder.fit("text", TRAIN_TEXTS + [None])
    check(encoder.encode("text", [None, float("nan"), "red"]), 3)


# -- image encoders -----------------------------------------------------------------------

@pytest.mark.parametrize("cls,params,dim", [
    (ColorHistogram, {"bins": 8}, 24),
    (ColorHistogram, {"bins": 4, "color_space": "hsv", "sqrt": True}, 12),
    (Hog, {"size": 32, "cell": 8, "block": 2, "orientations": 9}, 3 * 3 * 4 * 9),
])
def test_image_encoders_accept_paths_and_arrays_alike(tmp_path, cls, params, dim):
    arrays = images(4)
    paths = []
    for i, array in enumerate(arrays):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(array).save(paths[-1])
    encoder = make(cls, **params)
    from_arrays = encoder.encode("image", arrays)  # a stacked (n, H, W, 3) array
    check(from_arrays, 4)
    assert from_arrays.shape[1] == dim
    assert np.allclose(encoder.encode("image", [str(p) for p in paths]), from_arrays)  # PNG is lossless
    assert np.allclose(encoder.encode("image", paths), from_arrays)
    assert np.allclose(encoder.encode("image", list(arrays)), from_arrays)
    assert np.array_equal(encoder.encode("image", arrays), from_arrays)  # deterministic
    gray = encoder.encode("image", [arrays[0][:, :, 0], None])  # grayscale, missing
    check(gray, 2)
    assert np.allclose(gray[1], 0.0)


def test_color_histogram_rows_are_normalised_and_see_colour():
    red = np.zeros((10, 10, 3), dtype=np.uint8)
    red[..., 0] = 255
    out = make(ColorHistogram, bins=4).encode("image", [red, 255 - red])
    assert np.allclose(out.reshape(2, 3, 4).sum(axis=2), 1.0)
    assert out[0, 3] == 1.0 and out[0, 4] == 1.0  # red channel top bin, green channel bottom bin
    assert not np.allclose(out[0], out[1])


def test_hog_sees_orientation():
    _, xx = np.mgrid[0:32, 0:32]
    vertical = np.repeat(((np.sin(xx / 2.0) + 1) * 127).astype(np.uint8)[..., None], 3, axis=2)
    horizontal = vertical.transpose(1, 0, 2)
    hog = make(Hog, size=32)
    a, b = hog.encode("image", [vertical, horizontal])
    per_bin = lambda v: v.reshape(-1, 9).sum(axis=0)
    assert per_bin(a).argmax() != per_bin(b).argmax()


def test_image_fingerprints_change_with_params():
    assert make(Hog).fingerprint() != make(Hog, size=32).fingerprint()
    assert make(ColorHistogram).fingerprint() != make(ColorHistogram, bins=8).fingerprint()
    assert make(ColorHistogram).fingerprint() == make(ColorHistogram).fingerprint()


# -- tabular ------------------------------------------------------------------------------

TRAIN_ROWS = pd.DataFrame({"age": [20.0, 40.0, np.nan, 60.0], "site": ["arm", "leg", "arm", None],
                           "smoker": [True, False, True, False]})


def test_tabular_learns_means_and_categories_from_train_only():
    encoder = make(Tabular)
    encoder.fit("tabular", TRAIN_ROWS)
    assert encoder.means["age"] == pytest.approx(40.0)  # NaN ignored
    assert encoder.numeric == ["age", "smoker"] and encoder.indicators == ["age"]
    assert encoder.categories["site"] == ["arm", "<missing>", "leg"]
    assert encoder.feature_names == ["age", "smoker", "age_missing", "site=arm", "site=<missing>", "site=leg"]
    train = encoder.encode("tabular", TRAIN_ROWS)
    check(train, 4)
    test = pd.DataFrame({"age": [1000.0, np.nan], "site": ["hand", None], "smoker": [True, None]})
    out = encoder.encode("tabular", test)
    check(out, 2)
    assert encoder.means["age"] == pytest.approx(40.0)  # encoding test changed nothing
    std = np.std([20.0, 40.0, 60.0])
    assert out[0, 0] == pytest.approx((1000.0 - 40.0) / std)
    assert out[1, 0] == 0.0 and out[1, 2] == 1.0  # imputed train mean, indicator on
    assert np.all(out[0, 3:] == 0.0)  # unseen category -> all-zero one-hot
    assert out[1, 3:].tolist() == [0.0, 1.0, 0.0]  # missing, seen as missing in train
    assert np.array_equal(encoder.encode("tabular", TRAIN_ROWS), train)  # deterministic


def test_tabular_takes_a_list_of_dicts_and_options():
    rows = TRAIN_ROWS.to_dict("records")
    encoder = make(Tabular, columns=["age", "site"], categorical=["age"], missing_indicator=False)
    encoder.fit("tabular", rows)
    assert encoder.numeric == [] and set(encoder.categories) == {"age", "site"}
    check(encoder.encode("tabular", rows[:2] + [{"site": "arm"}]), 3)  # a row without "age"
    assert make(Tabular).fingerprint() != make(Tabular, columns=["age"]).fingerprint()
    with pytest.raises(RuntimeError, match="fit"):
        make(Tabular).encode("tabular", rows)
