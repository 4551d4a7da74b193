"""The collector's own counters (received, rejected, written, spooled ...), thread-safe.

Logged as one INFO line a minute by the service; a later pass writes them to InfluxDB as
self-metrics. Names are stable: dashboards and tests read them.
"""

from __future__ import annotations

import threading
from collections import Counter
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
    "seqs_lost",  # seqs given up after resend_max_attempts
    "seq_resets",  # probes that started counting again from a lower seq on a new boot
    "boots_learnt",  # (probe, boot) pairs whose start time was learnt
)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

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
