"""The `ipv6` field table: a summary point plus one point per check (see README.md)."""

from __future__ import annotations

from probefleet.kinds.base import Row
from probefleet.kinds.common.rows import as01, f
from probefleet.kinds.ipv6.payload import Ipv6Data


def rows(data: Ipv6Data) -> list[Row]:
    summary = Row(
        {},
        {
            "capable": data.capable,
            "works": data.works,
            "capable_01": as01(data.capable),
            "works_01": as01(data.works),
            "global_addresses": data.global_addresses,
        },
    )
    checks = [
        Row(
            {"check": c.check, "target": c.target},
            {
                "verdict": c.verdict,
                "passed_01": as01(c.verdict == "pass"),
                "rtt_v6_ms": f(c.rtt_v6_ms),
                "rtt_v4_ms": f(c.rtt_v4_ms),
                "detail": c.detail,
            },
        )
        for c in data.checks
    ]
    return [summary, *checks]
