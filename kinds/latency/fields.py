"""The `latency` field table: one InfluxDB point per target (see README.md)."""

from __future__ import annotations

from probefleet.kinds.base import Row
from probefleet.kinds.common.rows import f, ip
from probefleet.kinds.latency.payload import LatencyData


def rows(data: LatencyData) -> list[Row]:
    return [
        Row(
            {
                "target": t.target,
                "method": t.method,
                "ip_version": ip(t.ip_version),
                "port": None if t.port is None else str(t.port),
            },
            {
                "address": t.address,
                "sent": t.sent,
                "received": t.received,
                "loss_pct": float(t.loss_pct),
                "rtt_min_ms": f(t.rtt_min_ms),
                "rtt_avg_ms": f(t.rtt_avg_ms),
                "rtt_median_ms": f(t.rtt_median_ms),
                "rtt_p95_ms": f(t.rtt_p95_ms),
                "rtt_max_ms": f(t.rtt_max_ms),
                "jitter_ms": f(t.jitter_ms),
            },
        )
        for t in data.targets
    ]
