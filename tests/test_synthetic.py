"""The synthetic dataset's knobs do what their names say."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mmbench.errors import UserError
from mmbench.params import resolve_params
from mmbench_datasets.synthetic import Synthetic


def make(**given):
    params, problems = resolve_params(Synthetic.parameters, given)
    assert not problems
    return Synthetic(**params)


def probe_auroc(x, y):
    half = len(y) // 2
    model = LogisticRegression(max_iter=1000).fit(x[:half], y[:half])
    return roc_auc_score(y[half:], model.predict_proba(x[half:])[:, 1])


def test_the_same_seed_gives_the_same_data():
    a, b = make(seed=3).load(), make(seed=3).load()
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.modalities["image"], b.modalities["image"])
    assert not np.array_equal(a.labels, make(seed=4).load().labels)


def test_vectors_are_unit_norm_float32():
    data = make(cone=0.4, gap=0.3).load()
    for x in data.modalities.values():
        assert x.dtype == np.float32
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_signal_sets_how_informative_each_modality_is():
    data = make(n_samples=4000, signal=[0.3, 0.0]).load()
    assert probe_auroc(data.modalities["image"], data.labels) > 0.85
    assert probe_auroc(data.modalities["text"], data.labels) == pytest.approx(0.5, abs=0.05)


def test_cone_raises_the_mean_resultant_length():
    # no class signal, so the only shared direction is the cone's
    def resultant(cone):
        x = make(cone=cone, signal=[0.0, 0.0]).load().modalities["image"]
        return np.linalg.norm(x.mean(axis=0))
    assert resultant(0.0) < 0.2 < resultant(0.5) < resultant(0.8)


def test_gap_separates_the_modalities_means():
    def gap(g):
        data = make(cone=0.6, gap=g, signal=[0.0, 0.0]).load()
        return np.linalg.norm(data.modalities["image"].mean(0) - data.modalities["text"].mean(0))
    assert gap(0.0) < 0.05 < gap(0.5) < gap(1.0)


def test_imbalance_is_the_ratio_of_largest_to_smallest_class():
    data = make(n_samples=20000, task="multiclass", n_classes=4, imbalance=8.0).load()
    counts = np.bincount(data.labels)
    assert counts[0] / counts[-1] == pytest.approx(8.0, rel=0.15)


def test_multilabel_labels_are_a_binary_matrix():
    data = make(task="multilabel", n_classes=5, label_rate=0.4).load()
    assert data.labels.shape == (2000, 5)
    assert set(np.unique(data.labels)) == {0, 1}
    assert data.labels[:, 0].mean() == pytest.approx(0.4, abs=0.04)


def test_inconsistent_parameters_are_rejected_with_the_field_named():
    with pytest.raises(UserError, match="dims needs one value per modality"):
        make(dims=[8])
    with pytest.raises(UserError, match="binary task has n_classes = 2"):
        make(n_classes=3)


def test_no_sequence_by_default_and_a_sequence_leaves_the_other_arrays_unchanged():
    plain = make(seed=5, task="multilabel", n_classes=3, cone=0.3).load()
    assert plain.sequences == {}
    with_tokens = make(seed=5, task="multilabel", n_classes=3, cone=0.3, sequence_length=12).load()
    assert np.array_equal(plain.labels, with_tokens.labels)
    for m in plain.modalities:
        assert np.array_equal(plain.modalities[m], with_tokens.modalities[m])
    assert list(with_tokens.sequences) == ["text"]


def test_token_sequences_are_deterministic_and_masked():
    a = make(seed=2, sequence_length=10, dims=[8, 6]).load().sequences["text"]
    b = make(seed=2, sequence_length=10, dims=[8, 6]).load().sequences["text"]
    assert np.array_equal(a.values, b.values) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.values, make(seed=3, sequence_length=10, dims=[8, 6]).load()
                              .sequences["text"].values)
    assert a.values.shape == (2000, 10, 6) and a.values.dtype == np.float32
    lengths = a.mask.sum(axis=1)
    assert lengths.min() == 5 and lengths.max() == 10  # ceil(T/2) .. T real tokens
    assert np.array_equal(a.mask, np.arange(10)[None, :] < lengths[:, None])  # left-aligned
    assert np.all(a.values[~a.mask] == 0)  # zero padding
    assert np.allclose(np.linalg.norm(a.values[a.mask], axis=1), 1.0, atol=1e-5)
    image = make(seed=2, sequence_length=6, sequence_modality="image").load()
    assert list(image.sequences) == ["image"] and image.sequences["image"].values.shape[2] == 64


def test_the_class_signal_sits_in_a_few_tokens():
    data = make(n_samples=4000, signal=[0.0, 0.0], sequence_length=20, signal_tokens=2,
                token_signal=1.0).load()
    tokens, mask, y = data.sequences["text"].values, data.sequences["text"].mask, data.labels
    # the pooled vectors carry nothing; the mean of the real tokens carries the class
    assert probe_auroc(data.modalities["text"], y) == pytest.approx(0.5, abs=0.05)
    real = mask[..., None]
    assert probe_auroc((tokens * real).sum(1) / real.sum(1), y) > 0.9
    # per token: in each sample, exactly signal_tokens tokens point along their class's mean
    for label in (0, 1):
        own = tokens[y == label]
        direction = own[mask[y == label]].mean(0)
        cosine = np.where(mask[y == label], own @ (direction / np.linalg.norm(direction)), -np.inf)
        top = np.median(np.sort(cosine, axis=1)[:, ::-1], axis=0)
        assert top[1] > 0.6 and top[2] < 0.3  # measured: 0.74, 0.68, then 0.20
    # token_signal = 0: uninformative tokens
    flat = make(n_samples=4000, signal=[0.0, 0.0], sequence_length=20, token_signal=0.0).load()
    s = flat.sequences["text"]
    assert probe_auroc((s.values * s.mask[..., None]).sum(1), flat.labels) == pytest.approx(0.5, abs=0.05)


def test_sequence_parameters_are_checked():
    with pytest.raises(UserError, match="sequence_modality 'audio' is not one of"):
        make(sequence_length=8, sequence_modality="audio")
    with pytest.raises(UserError, match="signal_tokens must be at most ceil"):
        make(sequence_length=5, signal_tokens=4)
    make(sequence_length=0, sequence_modality="audio")  # ignored without a sequence
