"""RTT statistics of the latency measurement: loss, min/avg/median/p95/max and jitter.

Definitions (they are what ``LatencyTarget`` carries):

- statistics are over the replies received; lost probes only count in ``loss_pct``;
- percentiles interpolate linearly between the closest ranks: rank ``(n - 1) * p / 100`` of
  the sorted RTTs (numpy's default "linear", Excel's PERCENTILE.INC, ``statistics.quantiles``
  with ``method="inclusive"``), so p95 never exceeds the maximum and p50 is the median;
- ``jitter_ms`` is the mean absolute difference between consecutive RTTs of the received
  replies, in the order they were sent (a lost probe is skipped, not a zero): RFC 3550's
  |D| without its 1/16 smoothing; None with fewer than two replies.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

_DIGITS = 3  # microseconds: finer than any clock a Pi keeps for a socket round trip


@dataclass(frozen=True)
class RttSummary:
    sent: int
    received: int
    loss_pct: float
    min_ms: float | None = None
    avg_ms: float | None = None
    median_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None
    jitter_ms: float | None = None


def percentile(ordered: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``ordered`` (sorted, not empty), interpolated."""
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile {pct} is outside 0-100")
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def jitter(rtts: Sequence[float]) -> float | None:
    """Mean |difference| of consecutive values; None with fewer than two."""
    if len(rtts) < 2:
        return None
    return sum(abs(b - a) for a, b in itertools.pairwise(rtts)) / (len(rtts) - 1)


def summarise(samples: Sequence[float | None]) -> RttSummary:
    """One probe series (RTT in ms per probe sent, None when lost) -> its statistics."""
    sent = len(samples)
    rtts = [s for s in samples if s is not None]
    received = len(rtts)
    loss = 100.0 if sent == 0 else round(100.0 * (sent - received) / sent, _DIGITS)
    if not rtts:
        return RttSummary(sent=sent, received=0, loss_pct=loss)
    ordered = sorted(rtts)
    spread = jitter(rtts)
    return RttSummary(
        sent=sent,
        received=received,
        loss_pct=loss,
        min_ms=round(ordered[0], _DIGITS),
        avg_ms=round(sum(rtts) / received, _DIGITS),
        median_ms=round(percentile(ordered, 50.0), _DIGITS),
        p95_ms=round(percentile(ordered, 95.0), _DIGITS),
        max_ms=round(ordered[-1], _DIGITS),
        jitter_ms=None if spread is None else round(spread, _DIGITS),
    )
