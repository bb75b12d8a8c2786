"""TF-IDF + truncated SVD (latent semantic analysis): a text encoder without weights.

The vocabulary, IDF weights and SVD basis are learned from the TRAIN split's texts only;
val and test texts are encoded with them, so a word seen only outside train adds nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.params import Param
from mmbench.plugin import Encoder


class TfidfSvd(Encoder):
    """TF-IDF of words (and optionally word n-grams) reduced by truncated SVD (LSA).

    A classic, fast baseline for short texts such as captions and metadata templates: no
    download, a few seconds on a CPU. ``n_components`` is capped by what the train split
    supports (vocabulary size - 1 and train texts - 1); when fewer than two terms or texts
    are available the TF-IDF vectors themselves are returned. Missing texts (None / NaN)
    are encoded as empty texts (a zero vector).
    """

    name = "tfidf_svd"
    modalities = ("text",)
    fitted = True
    parameters = (
        Param("n_components", int, 128, "SVD dimensions (capped by vocabulary and train size)", min=1),
        Param("max_features", int, 20000, "largest vocabulary, most frequent terms first", min=1),
        Param("ngram_max", int, 1, "longest word n-gram in the vocabulary (1: words only)", min=1, max=3),
        Param("min_df", int, 1, "ignore terms in fewer train texts than this", min=1),
        Param("sublinear_tf", bool, True, "use 1 + log(tf) instead of raw term counts"),
        Param("lowercase", bool, True, "lower-case texts before tokenising"),
        Param("normalize", bool, True, "L2-normalise each output vector"),
        Param("svd_seed", int, 0, "random state of the randomized SVD"),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._vectorizer = None
        self._svd = None
        self._fitted = False

    def fit(self, modality: str, items: Any) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = self.params
        texts = _texts(items)
        self._fitted = True
        self._vectorizer = TfidfVectorizer(
            max_features=p["max_features"], ngram_range=(1, p["ngram_max"]), min_df=p["min_df"],
            sublinear_tf=p["sublinear_tf"], lowercase=p["lowercase"], dtype=np.float64,
        )
        try:
            tfidf = self._vectorizer.fit_transform(texts)
        except ValueError:  # empty vocabulary (no train text has a word)
            self._vectorizer = None
            self._svd = None
            return
        components = min(p["n_components"], tfidf.shape[1] - 1, tfidf.shape[0] - 1)
        self._svd = None
        if components >= 1:
            from sklearn.decomposition import TruncatedSVD

            self._svd = TruncatedSVD(n_components=components, algorithm="randomized",
                                     random_state=p["svd_seed"]).fit(tfidf)

    @property
    def vocabulary(self) -> dict[str, int]:
        """The train vocabulary (term -> column); empty before ``fit``."""
        return {} if self._vectorizer is None else dict(self._vectorizer.vocabulary_)

    def encode(self, modality: str, items: Any) -> np.ndarray:
        if not self._fitted:
            raise RuntimeError("tfidf_svd: call fit() on the train texts before encode()")
        texts = _texts(items)
        if self._vectorizer is None:  # no words in the train texts, or no words in train: one zero column
            return np.zeros((len(texts), 1), dtype=np.float32)
        tfidf = self._vectorizer.transform(texts)
        out = self._svd.transform(tfidf) if self._svd is not None else tfidf.toarray()
        out = np.asarray(out, dtype=np.float64)
        if self.params["normalize"]:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.where(norms > 0, norms, 1.0)
        return out.astype(np.float32)


def _texts(items: Any) -> list[str]:
    out = []
    for item in items:
        if item is None or (isinstance(item, float) and np.isnan(item)):
            out.append("")
        else:
            out.append(str(item))
    return out
