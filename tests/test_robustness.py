"""Missing modalities and test noise: masks not zeros, seeded, a grid axis."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from mmbench.cli import main
from mmbench.data import SplitData, TokenSequence
from mmbench.errors import UserError
from mmbench.robustness import DEFAULTS, corrupt, fill


def splits(n=1000, seed=0):
    rng = np.random.default_rng(seed)

    def one(k):
        return SplitData(ids=np.arange(k), features={"image": rng.normal(1.0, 1.0, (k, 4)).astype(np.float32),
                                                     "text": rng.normal(2.0, 1.0, (k, 3)).astype(np.float32)},
                         labels=rng.integers(0, 2, k), task="binary", classes=("a", "b"))
    return {"train": one(n), "val": one(n // 5), "test": one(n // 5)}


def settings(**given):
    return {**DEFAULTS, **given}


def apply(data, settings, seed):
    """What a run does around the alignment: corrupt, then fill."""
    return fill(corrupt(data, settings, seed), settings["fill"])


def test_random_missing_drops_one_modality_per_affected_sample():
    out = apply(splits(), settings(missing_rate=0.6), seed=0)
    train = out["train"]
    missing_any = ~train.present("image") | ~train.present("text")
    assert 0.55 < missing_any.mean() < 0.65
    assert not (~train.present("image") & ~train.present("text")).any()  # never both
    assert 0.25 < (~train.present("image")).mean() < 0.35


def test_the_same_seed_drops_the_same_samples_and_another_seed_others():
    a, b, c = (apply(splits(), settings(missing_rate=0.5), seed=s) for s in (1, 1, 2))
    assert np.array_equal(a["test"].present("text"), b["test"].present("text"))
    assert not np.array_equal(a["test"].present("text"), c["test"].present("text"))


def test_missing_at_test_leaves_train_and_validation_whole():
    out = apply(splits(), settings(missing_rate=0.5, missing_at="test", missing_modality="text"), seed=0)
    assert out["train"].present("text").all() and out["val"].present("text").all()
    assert 0.35 < (~out["test"].present("text")).mean() < 0.65
    assert out["test"].present("image").all()


@pytest.mark.parametrize("fill", ["zero", "train_mean"])
def test_missing_rows_hold_the_documented_fill(fill):
    original = splits()
    out = apply(original, settings(missing_rate=0.5, missing_modality="image", fill=fill), seed=0)
    train = out["train"]
    present = train.present("image")
    expected = np.zeros(4) if fill == "zero" else original["train"].features["image"][present].mean(axis=0)
    assert np.allclose(train.features["image"][~present], expected, atol=1e-6)
    assert np.array_equal(train.features["image"][present], original["train"].features["image"][present])
    assert np.allclose(out["test"].features["image"][~out["test"].present("image")], expected, atol=1e-6)


def test_a_modality_that_does_not_exist_is_a_clear_error():
    with pytest.raises(UserError, match="missing_modality 'audio' is not a modality of this dataset"):
        apply(splits(), settings(missing_rate=0.5, missing_modality="audio"), seed=0)


def test_corrupted_rows_are_zeroed_before_the_alignment_sees_them():
    out = corrupt(splits(), settings(missing_rate=0.5, fill="train_mean"), seed=0)
    train = out["train"]
    assert np.all(train.features["image"][~train.present("image")] == 0)


def test_test_noise_touches_only_the_test_split():
    original = splits()
    out = apply(original, settings(test_noise=0.5), seed=0)
    assert out["train"].features["image"] is original["train"].features["image"]
    delta = out["test"].features["image"] - original["test"].features["image"]
    assert delta.std() == pytest.approx(0.5, rel=0.1)


def test_a_robustness_sweep_is_a_grid_axis_with_its_own_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.toml").write_text("""
[suite]
name = "r"
seeds = [0, 1]
[[datasets]]
name = "synthetic"
n_samples = 400
dims = [8, 8]
[[fusions]]
name = "early"
hidden = 16
train = { epochs = 3 }
[robustness]
missing_rate = [0.0, 0.6]
""")
    assert main(["run", "r.toml"]) == 0
    results = [json.loads(p.read_text()) for p in (tmp_path / "results" / "r").glob("*.json")]
    assert len(results) == 4
    missing = sorted(sum(r["data"]["missing"]["test"].values()) for r in results)
    assert missing[:2] == [0, 0] and all(m > 0.4 * 80 for m in missing[2:])
    board = json.loads((tmp_path / "leaderboard" / "r.json").read_text())
    robustness = sorted(row["robustness"] for row in board["datasets"][0]["rows"])
    assert robustness == ["-", "missing 0.6 random@both fill=zero"]
    assert re.search(r"\|\s*robustness\s*\|", (tmp_path / "leaderboard" / "r.md").read_text())


def test_a_dropped_modality_loses_its_tokens_and_test_noise_reaches_real_tokens_only():
    data = splits(n=500)
    rng = np.random.default_rng(1)
    for name, part in data.items():
        mask = np.ones((len(part), 6), dtype=bool)
        mask[:, 4:] = False  # two padded positions
        data[name] = replace(part, sequences={"text": TokenSequence(rng.normal(size=(len(part), 6, 3)), mask)})
    out = corrupt(data, settings(missing_rate=0.5, missing_modality="text", test_noise=0.3), seed=0)
    test = out["test"]
    dropped = ~test.present("text")
    assert dropped.any()
    assert not test.sequences["text"].mask[dropped].any()
    assert np.all(test.sequences["text"].values[dropped] == 0)
    kept = test.present("text")
    moved = test.sequences["text"].values[kept] - data["test"].sequences["text"].values[kept]
    assert np.all(moved[:, 4:] == 0) and np.all(moved[:, :4] != 0)
