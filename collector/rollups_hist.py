"""A fixed log-spaced histogram: 100 bins a decade, so a median read from it is within 1.16 %.

Bin 0 holds values below ``LOW`` (0.001, in the field's unit: Mbps, ms) and reads as 0; bin
``i >= 1`` holds [LOW·10^((i-1)/100), LOW·10^(i/100)) and reads as its geometric middle, at
most 10^(1/200) - 1 = 1.158 % from any value in it. Values at or above ``HIGH`` (10^7) go to
the last bin. Usage::

    bins: dict[int, int] = {}
    add(bins, 93.4)
    median(bins, n)           # InfluxDB's median() of the values, within BOUND
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Final

LOW: Final = 0.001
PER_DECADE: Final = 100
LAST: Final = 10 * PER_DECADE  # LOW .. LOW * 10^10 = 10^7
BOUND: Final = 10 ** (0.5 / PER_DECADE) - 1  # relative error of a bin's reading: 0.01158


def bin_of(value: float) -> int:
    if not value >= LOW:  # also NaN
        return 0
    return min(LAST, 1 + int(math.log10(value / LOW) * PER_DECADE))


def value_of(index: int) -> float:
    """The reading of bin ``index``: 0 for bin 0, else the bin's geometric middle."""
    if index <= 0:
        return 0.0
    return LOW * 10 ** ((index - 0.5) / PER_DECADE)


def add(bins: dict[int, int], value: float, count: int = 1) -> None:
    i = bin_of(value)
    bins[i] = bins.get(i, 0) + count


def encode(bins: Mapping[int, int]) -> str:
    """The bins as a string field, ``"<bin>:<count> …"`` in bin order: one field per
    histogram, so InfluxDB reads one column per series, not one per bin."""
    return " ".join(f"{i}:{c}" for i, c in sorted(bins.items()) if c)


def decode(text: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for pair in text.split():
        i, _, c = pair.partition(":")
        out[int(i)] = out.get(int(i), 0) + int(c)
    return out


def merge_into(bins: dict[int, int], text: str) -> None:
    """Add the bins of ``text`` (several histograms joined by spaces: the same pairs recur,
    so each distinct pair is parsed once)."""
    for pair, times in Counter(text.split()).items():
        i, _, c = pair.partition(":")
        key = int(i)
        bins[key] = bins.get(key, 0) + int(c) * times


def _at_rank(bins: Mapping[int, int], rank: int) -> int:
    """The bin holding the ``rank``-th smallest value (0-based)."""
    seen = 0
    for index in sorted(bins):
        seen += bins[index]
        if rank < seen:
            return index
    raise ValueError(f"rank {rank} beyond the histogram's {seen} values")


def _clamped(index: int, low: float | None, high: float | None) -> float:
    # The true value lies in the bin *and* within [min, max] of the group: a bin straddling
    # the group's min or max reads closer (all values equal: exact).
    value = value_of(index)
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


def median(
    bins: Mapping[int, int], low: float | None = None, high: float | None = None
) -> float | None:
    """InfluxDB's median() (the middle value, or the mean of the two middle ones), each
    middle value read from its bin; ``low``/``high``: the values' min and max if known."""
    n = sum(bins.values())
    if n <= 0:
        return None
    mid = n // 2
    if n % 2:
        return _clamped(_at_rank(bins, mid), low, high)
    a = _clamped(_at_rank(bins, mid - 1), low, high)
    b = _clamped(_at_rank(bins, mid), low, high)
    return (a + b) / 2


def percentile(
    bins: Mapping[int, int], pct: float, low: float | None = None, high: float | None = None
) -> float | None:
    """InfluxQL's nearest-rank percentile() (index floor(n·p/100 + 0.5) - 1), from the bins."""
    n = sum(bins.values())
    i = int(n * pct / 100 + 0.5) - 1
    if not 0 <= i < n:
        return None
    return _clamped(_at_rank(bins, i), low, high)


def count_below(bins: Mapping[int, int], limit: float) -> tuple[int, int]:
    """(values surely below ``limit``, values in the bin that holds ``limit``): a band's
    count from the bins is exact up to the values of the bins its edges fall in."""
    edge = bin_of(limit)
    below = sum(c for i, c in bins.items() if i < edge)
    return below, bins.get(edge, 0)
