"""When a result happened: the probe's clock if trusted, else re-based on its boot (pure).

A Pi has no battery clock. The policy, deterministic so that a redelivered result gets the
same timestamp (and so overwrites itself in InfluxDB):

1. *Trusted*: ``clock.synced`` and ``measured_at`` after 2025-01-01, not after ``sent_at``
   (+60 s) and not more than ``max_future_s`` ahead of the collector. Time = ``measured_at``,
   ``time_source = "probe"``. A trusted result also teaches the boot's start:
   ``boot_time = measured_at - clock.uptime_s`` (first one seen wins, kept in SQLite).
   Once the boot's start is known, a "synchronised" result must agree with it: its own
   ``measured_at - uptime_s`` within ``step_tolerance_s`` (plus 100 ppm of its uptime, the
   most a disciplined clock drifts from the boot counter). One that does not — its clock
   stepped while it still said "synced", e.g. 2 h backwards — is not trusted (rule 2): it
   is never stored at the stepped time. The check uses only the first-learnt start, so a
   redelivered result gets the same verdict and the same timestamp.
2. *Untrusted*, boot start known: time = ``boot_time + clock.uptime_s`` (``"rebased"``).
3. *Untrusted*, boot start unknown: quarantined (durably), released by rule 2 as soon as
   the boot's start is learnt; after ``quarantine_max_s`` written at
   ``received_at - (sent_at - measured_at)`` (the probe's own delay, when it is between 0
   and 7 days; else ``received_at``), ``"estimated"``. ``received_at`` is the time of the
   first durable receipt, kept in the quarantine row, so this too is repeatable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Literal

from probefleet.core import wire

SANE_AFTER: Final = wire.SANE_AFTER
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US: Final = dt.timedelta(microseconds=1)
_SEND_SLACK_NS: Final = 60 * 10**9
_MAX_DELAY_NS: Final = 7 * 86_400 * 10**9

TimeSource = Literal["probe", "rebased", "estimated"]


@dataclass(frozen=True, slots=True)
class Timestamp:
    time_ns: int
    source: TimeSource


def ns(when: dt.datetime) -> int:
    """An aware datetime as integer nanoseconds since the epoch, exactly."""
    return ((when - _EPOCH) // _US) * 1000


def uptime_ns(result: wire.Result) -> int:
    return round(result.clock.uptime_s * 1e9)


def trusted(result: wire.Result, received_ns: int, max_future_s: float) -> bool:
    """Whether ``measured_at`` can be stored as it is."""
    if not result.clock.synced or result.measured_at < SANE_AFTER:
        return False
    measured = ns(result.measured_at)
    if measured > ns(result.sent_at) + _SEND_SLACK_NS:
        return False
    return measured <= received_ns + round(max_future_s * 1e9)


_DRIFT: Final = 1e-4  # 100 ppm: a disciplined clock against the boot counter, at most


def agrees(result: wire.Result, boot_ns: int, tolerance_s: float) -> bool:
    """Whether a trusted-looking result's clock agrees with its boot's known start."""
    allowed = tolerance_s * 1e9 + _DRIFT * uptime_ns(result)
    return abs(boot_time_ns(result) - boot_ns) <= allowed


def boot_time_ns(result: wire.Result) -> int:
    """The boot's start on the real clock, from a trusted result."""
    return ns(result.measured_at) - uptime_ns(result)


def rebased(result: wire.Result, boot_ns: int, received_ns: int, max_future_s: float) -> Timestamp:
    """The boot's start plus the result's uptime — unless that lands before any clock can
    be right or after what the collector may believe (a forged or corrupt uptime: 100
    years of it put results in 1926 or 2126): then estimated from its arrival."""
    when_ns = boot_ns + uptime_ns(result)
    if not ns(SANE_AFTER) <= when_ns <= received_ns + round(max_future_s * 1e9):
        return estimated(result, received_ns)
    return Timestamp(when_ns, "rebased")


def estimated(result: wire.Result, received_ns: int) -> Timestamp:
    delay = ns(result.sent_at) - ns(result.measured_at)
    if not 0 <= delay <= _MAX_DELAY_NS:
        delay = 0
    return Timestamp(received_ns - delay, "estimated")


def as_measured(result: wire.Result) -> Timestamp:
    return Timestamp(ns(result.measured_at), "probe")
