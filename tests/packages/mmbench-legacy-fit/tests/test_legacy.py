"""The package's own tests, as written before FitContext: they must pass unchanged."""

import json
from pathlib import Path

import pytest

from mmbench.cli import main
from mmbench.params import resolve_params
from mmbench.registry import load_registry

SUITE = Path(__file__).parent.parent / "suite.toml"


def instance(name, **given):
    cls = load_registry().get("fusion", name).cls
    params, problems = resolve_params(cls.parameters, given)
    assert not problems, problems
    return cls(**params)


def test_registered():
    registry = load_registry()
    assert registry.get("fusion", "legacy_concat").cls.__name__ == "LegacyConcat"
    assert registry.get("fusion", "legacy_encoder_count").cls.uses_encoders


def test_the_old_fit_still_trains_and_reports(tmp_path):
    import numpy as np

    from mmbench.data import SplitData
    from mmbench.train_config import TrainConfig

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 120)
    split = SplitData(ids=np.array([f"s{i}" for i in range(120)]),
                      features={"a": (labels[:, None] + rng.normal(0, 0.3, (120, 4))).astype(np.float32)},
                      labels=labels, task="binary", classes=("no", "yes"))
    fusion = instance("legacy_concat", hidden=8)
    seen = []
    report = fusion.fit(split, split, TrainConfig.from_params({"epochs": 3}, seed=0),
                        on_epoch=lambda done, total: seen.append(done))
    assert seen == [1, 2, 3] and report.info["epochs_seen"] == 3
    assert fusion.predict_proba(split).shape == (120,)


def test_the_suite_runs_with_a_deprecation_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.warns(DeprecationWarning, match=r"fit\(self, train, val, config, ctx\)"):
        assert main(["run", str(SUITE), "--rerun"]) == 0
    results = [json.loads(p.read_text()) for p in (tmp_path / "build/legacy_fit/results/legacy_fit").glob("*.json")]
    by_fusion = {r["spec"]["fusion"]["name"]: r for r in results}
    assert all(r["status"] == "ok" for r in results), [r.get("error") for r in results]
    assert by_fusion["legacy_concat"]["fit_info"]["epochs_seen"] == by_fusion["legacy_concat"]["metrics"]["epochs_run"]
    assert by_fusion["legacy_encoder_count"]["fit_info"]["encoders_given"] == []  # a dataset of vectors
