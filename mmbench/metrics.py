"""Quality metrics from predicted probabilities, all computed by scikit-learn.

Conventions (METHODS.md): F1 is the positive class's for binary tasks and the macro
average otherwise; AUROC is one-vs-rest macro for multiclass and the macro average over
labels for multilabel (in both, over the classes / labels the split holds). Accuracy on multilabel tasks is scikit-learn's subset accuracy
(every label of a sample right). A metric that is undefined on a split (e.g. AUROC when
the test split holds one class only) is NaN, stored as null, never a made-up number.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

QUALITY_METRICS = ("accuracy", "f1", "auroc")


def predictions(proba: np.ndarray, task: str, threshold: float = 0.5) -> np.ndarray:
    """Hard labels from probabilities: threshold for binary / multilabel, argmax otherwise."""
    if task == "multiclass":
        return np.asarray(proba).argmax(axis=1)
    return (np.asarray(proba) >= threshold).astype(int)


def quality(labels: np.ndarray, proba: np.ndarray, task: str) -> dict[str, float]:
    """Accuracy, F1 and AUROC for one split."""
    proba = np.asarray(proba, dtype=np.float64)
    pred = predictions(proba, task)
    average = "binary" if task == "binary" else "macro"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined-metric warnings become NaN below
        return {
            "accuracy": float(accuracy_score(labels, pred)),
            "f1": float(f1_score(labels, pred, average=average, zero_division=0)),
            "auroc": auroc(labels, proba, task),
        }


def split_warnings(labels: np.ndarray, task: str, classes: tuple[str, ...] | list[str], split: str = "test"
                   ) -> list[str]:
    """What makes a split's quality numbers meaningless though they look fine: a split of
    one class scores accuracy 1.000 for predicting it always, and has no AUROC."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return []
    if task == "multilabel":
        if labels.ndim == 2 and all(len(np.unique(labels[:, j])) < 2 for j in range(labels.shape[1])):
            return [f"every label is constant in the {split} split ({len(labels)} samples): AUROC is undefined "
                    "and accuracy says nothing; give it more samples or a larger test fraction"]
        return []
    present = np.unique(labels)
    if len(present) >= 2:
        return []
    name = classes[int(present[0])] if 0 <= int(present[0]) < len(classes) else str(present[0])
    return [f"the {split} split holds one class only ({name!r}, {len(labels)} samples, of {len(classes)} "
            "classes): accuracy is trivial and AUROC undefined; give it more samples of the other classes or "
            "a larger test fraction"]


def auroc(labels: np.ndarray, proba: np.ndarray, task: str) -> float:
    try:
        if task == "binary":
            return float(roc_auc_score(labels, proba))
        if task == "multiclass":
            proba = proba / proba.sum(axis=1, keepdims=True)
            present = np.unique(labels)
            if len(present) == proba.shape[1]:
                return float(roc_auc_score(labels, proba, multi_class="ovr", average="macro",
                                           labels=np.arange(proba.shape[1])))
            # A class absent from this split (common with hundreds of answer classes, as in
            # COCO-QA) has no AUROC: the one-vs-rest macro average over the present ones.
            if len(present) < 2:
                return float("nan")
            onehot = (labels[:, None] == present[None, :]).astype(int)
            return float(roc_auc_score(onehot, proba[:, present], average="macro"))
        # multilabel: scikit-learn refuses the macro average when one label column holds
        # a single class; average over the labels where AUROC is defined instead.
        defined = [j for j in range(labels.shape[1]) if len(np.unique(labels[:, j])) == 2]
        if not defined:
            return float("nan")
        return float(roc_auc_score(labels[:, defined], proba[:, defined], average="macro"))
    except ValueError:
        return float("nan")
