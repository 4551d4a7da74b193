"""Median and percentile exactly as InfluxDB computes them, for values the report fetched raw
(the peak windows): one definition of "median" across the whole report."""

from __future__ import annotations

from collections.abc import Sequence


def median(values: Sequence[float]) -> float | None:
    """InfluxDB's median(): the middle value, or the mean of the two middle ones."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], pct: float) -> float | None:
    """InfluxDB 1.x/2.x InfluxQL percentile(): nearest rank, index floor(n * p/100 + 0.5) - 1;
    None when that index is below 0 (too few values: 10th percentile needs 5)."""
    ordered = sorted(values)
    i = int(len(ordered) * pct / 100 + 0.5) - 1
    return ordered[i] if 0 <= i < len(ordered) else None
