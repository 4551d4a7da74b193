"""The collector's own counters (received, rejected, written, spooled ...), thread-safe.

Logged as one INFO line a minute by the service and written to InfluxDB as self-metrics
(measurement ``collector``, see :mod:`collector.selfmetrics`). Names are stable: dashboards
and tests read them. Besides counters, :meth:`Stats.observe` keeps count/sum/max of values
(lag, write latency) per reporting window.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Final

# Every counter, so that a summary always shows the same keys in the same order.
NAMES: Final = (
    "received",  # MQTT messages taken from the broker
    "acked",  # MQTT acknowledgements sent
    "rejected",  # messages dead-lettered at parse time
    "quarantined",  # unsynchronised results parked until their boot's time is known
    "released",  # quarantined results written
    "points_written",  # points InfluxDB took on the live path
    "points_spooled",  # points put in the local spool
    "points_replayed",  # points the replayer moved from the spool to InfluxDB
    "points_rejected",  # points InfluxDB refused (4xx), dead-lettered
    "write_retries",  # failed write attempts that were retried
    "stored_acks",  # StoredAck messages published
    "resend_requests",  # ResendRequest messages published
    "seqs_settled",  # seqs the probe no longer holds that this collector never handled
    "seqs_lost",  # of those, what no other collector can have stored (no share group)
    "seq_resets",  # probes that started counting again from a lower seq on a new boot
    "boots_learnt",  # (probe, boot) pairs whose start time was learnt
    "clock_steps",  # "synchronised" results off their boot's start: re-based
    "duplicates",  # results whose seq was already handled (redelivery, resend, 2nd copy)
    "status_messages",  # ProbeStatus messages taken (presence)
    "cardinality_refused",  # results dead-lettered by the cardinality guard
)
# Observed values: seconds from measured_at to durable; seconds per InfluxDB write call.
OBSERVED: Final = ("lag_s", "write_latency_s")


@dataclass(frozen=True, slots=True)
class Observed:
    """Values seen during one window."""

    count: int = 0
    total: float = 0.0
    maximum: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def plus(self, value: float) -> Observed:
        return Observed(self.count + 1, self.total + value, max(self.maximum, value))


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._observed: dict[str, Observed] = {}

    def observe(self, name: str, value: float) -> None:
        if name not in OBSERVED:
            raise KeyError(f"unknown observation {name!r}")
        with self._lock:
            self._observed[name] = self._observed.get(name, Observed()).plus(value)

    def observe_all(self, name: str, values: list[float]) -> None:
        """Many values at once (a batch's lags): one lock, not one per value."""
        if name not in OBSERVED:
            raise KeyError(f"unknown observation {name!r}")
        if not values:
            return
        with self._lock:
            seen = self._observed.get(name, Observed())
            self._observed[name] = Observed(
                seen.count + len(values), seen.total + sum(values), max(seen.maximum, *values)
            )

    def take_observed(self) -> dict[str, Observed]:
        """What was observed since the last call (every name present), and start afresh."""
        with self._lock:
            taken, self._observed = self._observed, {}
        return {name: taken.get(name, Observed()) for name in OBSERVED}

    def add(self, name: str, n: int = 1) -> None:
        if name not in NAMES:
            raise KeyError(f"unknown counter {name!r}")
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {name: self._counts[name] for name in NAMES}

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def summary(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.snapshot().items() if v)
