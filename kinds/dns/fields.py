"""The `dns` field table: one InfluxDB point per query (see README.md)."""

from __future__ import annotations

from probefleet.kinds.base import Row
from probefleet.kinds.common.rows import f
from probefleet.kinds.dns.payload import DnsData


def rows(data: DnsData) -> list[Row]:
    return [
        Row(
            {"resolver": q.resolver, "name": q.name, "rrtype": q.rrtype},
            {"rcode": q.rcode, "answers": q.answers, "time_ms": f(q.time_ms)},
        )
        for q in data.queries
    ]
