"""Metrics follow METHODS.md's conventions and scikit-learn's numbers."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from mmbench.metrics import quality


def test_binary_metrics_use_the_positive_class():
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    proba = np.array([0.1, 0.4, 0.6, 0.8, 0.3, 0.9, 0.2, 0.7])
    m = quality(labels, proba, "binary")
    assert m["accuracy"] == 0.75
    assert m["f1"] == f1_score(labels, proba >= 0.5)
    assert m["auroc"] == roc_auc_score(labels, proba)


def test_multiclass_metrics_are_macro_and_one_vs_rest():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2] * 10)
    proba = rng.dirichlet(np.ones(3), size=30)
    m = quality(labels, proba, "multiclass")
    assert m["f1"] == f1_score(labels, proba.argmax(1), average="macro")
    assert m["auroc"] == roc_auc_score(labels, proba, multi_class="ovr", average="macro")


def test_multiclass_auroc_averages_over_the_classes_the_split_holds():
    rng = np.random.default_rng(1)
    labels = np.array([0, 2, 3] * 10)  # classes 1 and 4 of 5 never occur in this split
    proba = rng.dirichlet(np.ones(5), size=30)
    present = [0, 2, 3]
    expected = np.mean([roc_auc_score(labels == k, proba[:, k]) for k in present])
    assert quality(labels, proba, "multiclass")["auroc"] == pytest.approx(expected)


def test_multilabel_auroc_skips_labels_with_one_class_in_the_split():
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    proba = np.array([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.7, 0.6, 0.2], [0.2, 0.3, 0.4]])
    m = quality(labels, proba, "multilabel")
    assert m["auroc"] == roc_auc_score(labels[:, :2], proba[:, :2], average="macro")
    assert m["accuracy"] == 1.0  # subset accuracy: every label right on every sample


def test_undefined_auroc_is_nan_not_a_made_up_number():
    m = quality(np.array([1, 1, 1]), np.array([0.2, 0.7, 0.9]), "binary")
    assert math.isnan(m["auroc"])
