"""The sample standard deviation, bit for bit what ``statistics.stdev`` returns, without
its Fractions.

A leaderboard takes a mean and a standard deviation per configuration and metric: on a
30,000-run suite that is ~50,000 standard deviations, and ``statistics.stdev`` (exact
rational arithmetic, then a correctly rounded square root) spends ~25 µs on each. Its
result is a function of the exact value alone, so the same value computed with integers
gives the same float: every committed leaderboard stays byte-identical.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: as CPython's statistics module (3.11+): bits kept before rounding to a float
_SQRT_BIT_WIDTH = 2 * 53 + 3


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1) of two or more finite numbers, correctly rounded."""
    n = len(values)
    if n < 2:
        raise ValueError("stdev needs at least two values")
    ratios = [float(v).as_integer_ratio() for v in values]
    # every denominator is a power of two: scale to the largest, exactly
    shift = max(q.bit_length() for _, q in ratios) - 1
    scaled = [p << (shift - (q.bit_length() - 1)) for p, q in ratios]
    total = sum(scaled)
    # sum((x - mean)^2) / (n - 1) = sum((n*X - S)^2) / (n^2 (n - 1) D^2), X = x * D
    numerator = sum((n * x - total) ** 2 for x in scaled)
    denominator = (n * n * (n - 1)) << (2 * shift)
    return _float_sqrt_of_frac(numerator, denominator)


def _float_sqrt_of_frac(n: int, m: int) -> float:
    """Square root of n/m as a float, correctly rounded: CPython's statistics module
    (PSF license; principle and proof sketch at https://bugs.python.org/msg407078)."""
    q = (n.bit_length() - m.bit_length() - _SQRT_BIT_WIDTH) // 2
    if q >= 0:
        numerator = _integer_sqrt_of_frac_rto(n, m << 2 * q) << q
        denominator = 1
    else:
        numerator = _integer_sqrt_of_frac_rto(n << -2 * q, m)
        denominator = 1 << -q
    return numerator / denominator


def _integer_sqrt_of_frac_rto(n: int, m: int) -> int:
    """Square root of n/m, rounded to the nearest integer using round-to-odd."""
    a = math.isqrt(n // m)
    return a | (a * a * m != n)
