"""The `service` field table: one InfluxDB point per checked service (see README.md)."""

from __future__ import annotations

from probefleet.kinds.base import Row
from probefleet.kinds.common.rows import as01, f
from probefleet.kinds.service.payload import ServiceData


def rows(data: ServiceData) -> list[Row]:
    return [
        Row(
            {"service": c.name, "protocol": c.protocol},
            {
                "target": c.target,
                "up": c.up,
                "up_01": as01(c.up),
                "status_code": c.status_code,
                "connect_ms": f(c.connect_ms),
                "ttfb_ms": f(c.ttfb_ms),
                "total_ms": f(c.total_ms),
                "tls_days_left": f(c.tls_days_left),
                "error": c.error,
            },
        )
        for c in data.checks
    ]
