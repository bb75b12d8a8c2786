"""Train/val/test splits: seeded, stratified, group-aware, official split respected."""

import numpy as np
import pytest

from mmbench.data import DatasetTable
from mmbench.splits import split_indices


def table(n=1000, task="binary", groups=None, split=None, seed=0):
    rng = np.random.default_rng(seed)
    if task == "multilabel":
        labels, classes = (rng.random((n, 3)) < 0.3).astype(int), ("a", "b", "c")
    elif task == "multiclass":
        labels, classes = rng.choice(4, n, p=[0.7, 0.2, 0.07, 0.03]), ("a", "b", "c", "d")
    else:
        labels, classes = (rng.random(n) < 0.1).astype(int), ("neg", "pos")
    return DatasetTable(ids=np.arange(n), labels=labels, task=task, classes=classes,
                        modalities={"x": rng.standard_normal((n, 2))}, groups=groups, split=split)


def test_splits_partition_the_samples_in_the_requested_proportions():
    rows = split_indices(table(), val=0.1, test=0.2, seed=0)
    together = np.concatenate(list(rows.values()))
    assert sorted(together) == list(range(1000))
    assert (len(rows["train"]), len(rows["val"]), len(rows["test"])) == (700, 100, 200)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_rare_classes_keep_their_share_in_every_split(task):
    data = table(task=task)
    overall = np.bincount(data.labels) / len(data)
    rows = split_indices(data, val=0.1, test=0.2, seed=3)
    for index in rows.values():
        share = np.bincount(data.labels[index], minlength=len(overall)) / len(index)
        assert np.allclose(share, overall, atol=0.02)


def test_multilabel_split_keeps_label_prevalence():
    data = table(task="multilabel")
    rows = split_indices(data, val=0.1, test=0.2, seed=1)
    for index in rows.values():
        assert np.allclose(data.labels[index].mean(axis=0), data.labels.mean(axis=0), atol=0.05)


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    data = table()
    a, b, c = (split_indices(data, 0.1, 0.2, seed=s) for s in (5, 5, 6))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(np.sort(a["test"]), np.sort(c["test"]))


def test_no_group_crosses_splits():
    groups = np.repeat(np.arange(250), 4)  # four images per patient
    data = table(groups=groups)
    rows = split_indices(data, val=0.1, test=0.2, seed=0)
    seen = [set(groups[index]) for index in rows.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert 0.15 < len(rows["test"]) / 1000 < 0.25


def test_official_split_is_used_as_given():
    split = np.array(["train"] * 600 + ["val"] * 100 + ["test"] * 300)
    rows = split_indices(table(split=split), val=0.1, test=0.2, seed=0)
    assert list(rows["test"]) == list(range(700, 1000))
    assert list(rows["val"]) == list(range(600, 700))


def test_official_train_test_split_gets_a_validation_split_from_train():
    split = np.array(["train"] * 800 + ["test"] * 200)
    rows = split_indices(table(split=split), val=0.1, test=0.2, seed=0)
    assert list(rows["test"]) == list(range(800, 1000))
    assert set(rows["val"]) | set(rows["train"]) == set(range(800))
    assert len(rows["val"]) == 100
