"""The collector's own points: ``collector`` (self-metrics) and ``presence`` (fleet state).

Both are built here and written by the service through the ordinary durable path, once per
``metrics.interval_s``. Field tables: collector/README.md, *Self-metrics* and *Presence*.
Timestamps are the interval's start, rounded down: a restart within an interval overwrites
rather than adds a point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from probefleet.collector.fleet import FleetRow
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.collector.stats import Observed

# Counters written as per-interval deltas, under these field names.
COUNTER_FIELDS = {
    "received": "received",
    "acked": "stored",
    "rejected": "rejected",
    "duplicates": "duplicates",
    "points_written": "points_written",
    "points_spooled": "points_spooled",
    "points_rejected": "points_rejected",
    "write_retries": "write_retries",
    "resend_requests": "resend_requests",
    "seqs_settled": "seqs_settled",
    "seqs_lost": "seqs_lost",
    "status_messages": "status_messages",
    "cardinality_refused": "cardinality_refused",
}


@dataclass(frozen=True, slots=True)
class Gauges:
    """Levels at the time of writing."""

    queue_depth: int  # messages received, not yet acknowledged
    spool_points: int  # points waiting in the local spool
    quarantined: int  # results waiting for their boot's time
    gaps_open: int  # seqs not handled here that the probes may still hold, all probes
    alerts_firing: int | None = None
    lag_s: float | None = None  # how far behind the broker's queue for us is (collector.lag)
    held: int | None = None  # results in memory, not yet handled (bounded by the window)
    held_max: int | None = None  # the most ever held at once, since start
    dropped_redelivered: int | None = None  # held copies dropped at a reconnect, since start


def interval_start_ns(now_s: float, interval_s: float) -> int:
    return int(now_s // interval_s * interval_s) * 1_000_000_000


def collector_point(
    collector: str,
    deltas: Mapping[str, int],
    observed: Mapping[str, Observed],
    gauges: Gauges,
    *,
    now_s: float,
    interval_s: float,
) -> Point:
    fields: dict[str, FieldValue | None] = {
        field: int(deltas.get(name, 0)) for name, field in COUNTER_FIELDS.items()
    }
    lag, write = observed["lag_s"], observed["write_latency_s"]
    fields.update(
        interval_s=float(interval_s),
        lag_mean_s=lag.mean if lag.count else None,
        lag_max_s=lag.maximum if lag.count else None,
        writes=write.count,
        write_latency_mean_ms=write.mean * 1000 if write.count else None,
        write_latency_max_ms=write.maximum * 1000 if write.count else None,
        queue_depth=gauges.queue_depth,
        spool_points=gauges.spool_points,
        quarantined=gauges.quarantined,
        gaps_open=gauges.gaps_open,
        alerts_firing=gauges.alerts_firing,
        lag_s=None if gauges.lag_s is None else float(gauges.lag_s),
        held=gauges.held,
        held_max=gauges.held_max,
        dropped_redelivered=gauges.dropped_redelivered,
    )
    return Point.build(
        "collector", {"collector": collector}, fields, interval_start_ns(now_s, interval_s)
    )


def _01(value: bool | None) -> int | None:
    return None if value is None else int(value)


def presence_points(rows: list[FleetRow], *, now_s: float, interval_s: float) -> list[Point]:
    at_ns = interval_start_ns(now_s, interval_s)
    points = []
    for r in rows:
        tags: dict[str, str | None] = {
            "probe": r.probe,
            "commune": r.commune,
            "district": r.district,
            "province": r.province,
            "inventory": None if r.in_inventory else "unknown",
        }
        fields: dict[str, FieldValue | None] = {
            "state": r.state,
            "online_01": int(r.online),
            "last_seen_age_s": None if r.last_seen_s is None else max(0.0, now_s - r.last_seen_s),
            "line_up_01": _01(r.line_up),
            "last_test_ok_01": _01(r.last_test_ok),
            "spool_depth": r.spool_depth,
        }
        points.append(Point.build("presence", tags, fields, at_ns))
    return points
