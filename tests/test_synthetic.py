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
