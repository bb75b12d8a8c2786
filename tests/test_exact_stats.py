"""exact_stats.stdev is statistics.stdev, bit for bit: leaderboards must not change."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from mmbench.exact_stats import stdev


def test_equal_to_statistics_stdev_on_every_kind_of_value():
    rng = np.random.default_rng(0)
    cases = [[0.5, 0.5], [1, 2, 3], [0.1, 0.2, 0.3], [1e-300, 2e-300, 5e-301], [1e300, -1e300, 3.0],
             [0.7213, 0.7213000000000001], [5e-324, 0.0], [-0.0, 0.0, 1.0], [2**53, 2**53 + 2, 3]]
    cases += [list(rng.random(n)) for n in (2, 3, 5, 10) for _ in range(500)]
    cases += [list(rng.normal(0, 10.0 ** rng.integers(-12, 12), 5)) for _ in range(500)]
    cases += [list(rng.integers(0, 100, 5).astype(float) / 7) for _ in range(200)]
    for values in cases:
        assert stdev(values).hex() == statistics.stdev(values).hex(), values


def test_fewer_than_two_values_is_an_error_as_in_statistics():
    with pytest.raises(ValueError):
        stdev([1.0])
