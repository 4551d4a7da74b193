"""Samples of a running transfer: the counted window after the grace period, and when to stop.

Every 200 ms (as LibreSpeed) the engine records (time, bytes counted so far). The window
that counts opens with the sample taken at the end of the grace period (TCP slow start) and
ends with the last one; goodput is its bytes over its seconds.

The warm-up ends when the streams are in steady state, as SamKnows' does, not after a fixed
grace: it lasts at least ``grace_s``, then until both hold, at most ``warmup_max_s``:

- :func:`settled`: the last three 200 ms rates each within 15 % of their mean. Streams that
  overshoot in slow start lose packets; a stream waiting for a retransmission holds
  everything received after the hole, then hands it over at once. Opening the window just
  before such a release credits it with bytes that crossed the line earlier (seen: +4 %
  over 5 s on a 20 Mbit/s link);
- :func:`steady`: the rates over the last three 0.5 s windows differ by at most
  ``tolerance`` (5 %) of their mean: a rate still climbing (Reno growing one segment per
  round trip after slow start on a long path) is not steady, however smooth (seen:
  0.89-0.93 of the line with a fixed 1.5 s grace at +40 ms, Reno, 150 Mbit/s).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

SAMPLE_S = 0.2
# Settled: the last three 200 ms rates each within 15 % of their mean.
SETTLE_INTERVALS = 3
SETTLE_TOLERANCE = 0.15
# Steady: the rates over the last STEADY_WINDOWS windows of STEADY_WINDOW_S each agree.
STEADY_WINDOW_S = 0.5
STEADY_WINDOWS = 3
Sample = tuple[float, int]  # (time.monotonic(), bytes counted since the start)
Direction = Literal["download", "upload"]
StopReason = Literal["duration", "adaptive", "cap"]


@dataclass(frozen=True)
class Adaptive:
    """Stop once the running goodput (what would be reported if the test stopped now) has
    stayed within ``tolerance_pct`` over the last ``window_s``, after at least ``min_s``."""

    min_s: float
    window_s: float
    tolerance_pct: float


@dataclass(frozen=True)
class DirectionResult:
    direction: Direction
    streams: int
    bytes: int  # counted after the grace period
    duration_s: float  # measured after the grace period
    total_bytes: int  # counted from the start, grace included
    window_start: float  # time.monotonic() at which the counted window began
    grace_s: float  # the warm-up actually discarded (grace_s, extended until steady)
    stopped_by: StopReason
    connections: int
    errors: int
    samples: list[Sample] = field(repr=False)

    @property
    def mbps(self) -> float:
        """Goodput in Mbit/s (10^6 bits), no overhead factor."""
        return self.bytes * 8 / self.duration_s / 1e6 if self.duration_s > 0 else 0.0


def stable(window: list[Sample], adaptive: Adaptive) -> bool:
    """``window`` starts at the grace sample: has the running goodput settled?"""
    t0, b0 = window[0]
    now = window[-1][0]
    if now - t0 < max(adaptive.min_s, adaptive.window_s):
        return False
    rates = [(b - b0) / (t - t0) for t, b in window[1:] if t >= now - adaptive.window_s]
    if len(rates) < 2 or min(rates) <= 0:
        return False
    mean = sum(rates) / len(rates)
    return (max(rates) - min(rates)) <= mean * adaptive.tolerance_pct / 100.0


def settled(samples: list[Sample]) -> bool:
    """Has the rate stopped swinging (no stall, no burst of held-back bytes) lately?"""
    recent = samples[-SETTLE_INTERVALS - 1 :]
    rates = [(b1 - b0) / (t1 - t0) for (t0, b0), (t1, b1) in itertools.pairwise(recent)]
    if len(rates) < SETTLE_INTERVALS or min(rates) <= 0:
        return False
    mean = sum(rates) / len(rates)
    return all(abs(rate - mean) <= SETTLE_TOLERANCE * mean for rate in rates)


def _bytes_at(samples: list[Sample], t: float) -> float:
    """Bytes counted at time ``t``, interpolated between the samples around it."""
    for (t0, b0), (t1, b1) in itertools.pairwise(reversed(samples)):
        # reversed: (t0, b0) is the later sample
        if t1 <= t <= t0:
            return b1 + (b0 - b1) * ((t - t1) / (t0 - t1) if t0 > t1 else 1.0)
    return float(samples[0][1])


def steady(
    samples: list[Sample],
    tolerance: float,
    window_s: float = STEADY_WINDOW_S,
    windows: int = STEADY_WINDOWS,
) -> bool:
    """Do the rates over the last ``windows`` windows of ``window_s`` differ by at most
    ``tolerance`` (a fraction) of their mean? False until that much time has been sampled."""
    now = samples[-1][0]
    if now - samples[0][0] < window_s * windows:
        return False
    edges = [_bytes_at(samples, now - k * window_s) for k in range(windows, -1, -1)]
    rates = [(b1 - b0) / window_s for b0, b1 in itertools.pairwise(edges)]
    if min(rates) <= 0:
        return False
    mean = sum(rates) / len(rates)
    return max(rates) - min(rates) <= tolerance * mean


def window(samples: list[Sample], base: int | None) -> tuple[int, float, float]:
    """(bytes, seconds, start time) counted from sample ``base`` (the grace sample) to the
    last. A test that stopped (by its byte cap) within the grace period counts from its
    start rather than report nothing: such a cap is too small for the line."""
    if base is None or samples[-1][0] - samples[base][0] < SAMPLE_S:
        base = 0
    start_t, start_b = samples[base]
    end_t, end_b = samples[-1]
    return end_b - start_b, end_t - start_t, start_t
