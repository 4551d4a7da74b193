"""Per-kind point builders: one function per measurement kind, registered in BUILDERS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from probefleet.collector.inventory import Enrichment
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.core import wire


@dataclass(frozen=True, slots=True)
class Context:
    """What every point of one result shares: tags, fields, time, and the enrichment."""

    kind: wire.Kind
    probe: str
    tags: dict[str, str | None]
    fields: dict[str, FieldValue | None]
    time_ns: int
    enrichment: Enrichment

    def point(
        self,
        measurement: str,
        tags: dict[str, str | None],
        fields: dict[str, FieldValue | None],
    ) -> Point:
        return Point.build(
            measurement, {**self.tags, **tags}, {**self.fields, **fields}, self.time_ns
        )

    def link_tags(self, interface: str) -> dict[str, str | None]:
        """Tags of one of the probe's interfaces (health rows), from the inventory."""
        link = self.enrichment.interface(self.probe, interface)
        return {
            "interface": interface,
            "access": link.access if link else None,
            "operator": link.operator if link else None,
        }


def _f(value: float | None) -> float | None:
    """Floats are always written as floats: a 3 today and a 3.5 tomorrow must not conflict."""
    return None if value is None else float(value)


def _ip(version: int | None) -> str | None:
    return None if version is None else str(version)


def _01(flag: bool) -> int:
    """A predicate as 0/1, so that mean() in InfluxQL is the share of runs where it held."""
    return 1 if flag else 0


def _throughput(data: wire.ThroughputData, ctx: Context) -> list[Point]:
    fields: dict[str, FieldValue | None] = {
        "download_mbps": _f(data.download_mbps),
        "upload_mbps": _f(data.upload_mbps),
        "download_bytes": data.download_bytes,
        "upload_bytes": data.upload_bytes,
        "download_duration_s": _f(data.download_duration_s),
        "upload_duration_s": _f(data.upload_duration_s),
        "download_streams": data.download_streams,
        "upload_streams": data.upload_streams,
        "latency_idle_ms": _f(data.latency_idle_ms),
        "latency_download_ms": _f(data.latency_download_ms),
        "latency_upload_ms": _f(data.latency_upload_ms),
        "jitter_ms": _f(data.jitter_ms),
        "server_url": data.server_url,
        "server_id": data.server_id,
        "failed_servers": len(data.failed_servers),
    }
    targets = ctx.enrichment.targets
    plan = targets.for_access(ctx.tags.get("access")) if targets else None
    if plan is not None:
        fields["target_download_mbps"] = float(plan.download_mbps)
        if data.download_mbps is not None:
            fields["meets_download_target"] = _01(data.download_mbps >= plan.download_mbps)
        if plan.upload_mbps is not None:
            fields["target_upload_mbps"] = float(plan.upload_mbps)
            if data.upload_mbps is not None:
                fields["meets_upload_target"] = _01(data.upload_mbps >= plan.upload_mbps)
    tags = {"method": data.method, "ip_version": _ip(data.ip_version), "server": data.server_name}
    # throughput and ookla share a payload type; the measurement is the envelope's kind.
    return [ctx.point(ctx.kind, tags, fields)]


def _latency(data: wire.LatencyData, ctx: Context) -> list[Point]:
    return [
        ctx.point(
            "latency",
            {
                "target": t.target,
                "method": t.method,
                "ip_version": _ip(t.ip_version),
                "port": None if t.port is None else str(t.port),
            },
            {
                "address": t.address,
                "sent": t.sent,
                "received": t.received,
                "loss_pct": float(t.loss_pct),
                "rtt_min_ms": _f(t.rtt_min_ms),
                "rtt_avg_ms": _f(t.rtt_avg_ms),
                "rtt_median_ms": _f(t.rtt_median_ms),
                "rtt_p95_ms": _f(t.rtt_p95_ms),
                "rtt_max_ms": _f(t.rtt_max_ms),
                "jitter_ms": _f(t.jitter_ms),
            },
        )
        for t in data.targets
    ]


def _dns(data: wire.DnsData, ctx: Context) -> list[Point]:
    return [
        ctx.point(
            "dns",
            {"resolver": q.resolver, "name": q.name, "rrtype": q.rrtype},
            {"rcode": q.rcode, "answers": q.answers, "time_ms": _f(q.time_ms)},
        )
        for q in data.queries
    ]


def _ipv6(data: wire.Ipv6Data, ctx: Context) -> list[Point]:
    summary = ctx.point(
        "ipv6",
        {},
        {
            "capable": data.capable,
            "works": data.works,
            "capable_01": _01(data.capable),
            "works_01": _01(data.works),
            "global_addresses": data.global_addresses,
        },
    )
    checks = [
        ctx.point(
            "ipv6",
            {"check": c.check, "target": c.target},
            {
                "verdict": c.verdict,
                "passed_01": _01(c.verdict == "pass"),
                "rtt_v6_ms": _f(c.rtt_v6_ms),
                "rtt_v4_ms": _f(c.rtt_v4_ms),
                "detail": c.detail,
            },
        )
        for c in data.checks
    ]
    return [summary, *checks]


def _service(data: wire.ServiceData, ctx: Context) -> list[Point]:
    return [
        ctx.point(
            "service",
            {"service": c.name, "protocol": c.protocol},
            {
                "target": c.target,
                "up": c.up,
                "up_01": _01(c.up),
                "status_code": c.status_code,
                "connect_ms": _f(c.connect_ms),
                "ttfb_ms": _f(c.ttfb_ms),
                "total_ms": _f(c.total_ms),
                "tls_days_left": _f(c.tls_days_left),
                "error": c.error,
            },
        )
        for c in data.checks
    ]


def _health(data: wire.HealthData, ctx: Context) -> list[Point]:
    info = ctx.enrichment.probe(ctx.probe)
    summary = ctx.point(
        "health",
        {},
        {
            "cpu_pct": float(data.cpu_pct),
            "load_1m": float(data.load_1m),
            "memory_used_pct": float(data.memory_used_pct),
            "memory_available_bytes": data.memory_available_bytes,
            "disk_used_pct": float(data.disk_used_pct),
            "disk_free_bytes": data.disk_free_bytes,
            "uptime_s": float(data.uptime_s),
            "agent_rss_bytes": data.agent_rss_bytes,
            "temperature_c": _f(data.temperature_c),
            "spool_depth": data.spool_depth,
            "spool_bytes": data.spool_bytes,
            "spool_dropped": data.spool_dropped,
            "lat_deg": _f(info.lat) if info else None,
            "lon_deg": _f(info.lon) if info else None,
        },
    )
    # One point per interface: its counters and its data budget merged (same series and
    # time, so InfluxDB would merge them anyway). A repeated interface is caught upstream.
    rows: list[tuple[str, dict[str, FieldValue | None]]] = []
    for c in data.interfaces:
        rows.append(
            (
                c.interface,
                {
                    "up": c.up,
                    "rx_bytes": c.rx_bytes,
                    "tx_bytes": c.tx_bytes,
                    "rx_errors": c.rx_errors,
                    "tx_errors": c.tx_errors,
                    "rx_drops": c.rx_drops,
                    "tx_drops": c.tx_drops,
                },
            )
        )
    by_name = {name: fields for name, fields in rows}
    for b in data.budgets:
        budget: dict[str, FieldValue | None] = {
            "budget_month": b.month,
            "budget_used_bytes": b.used_bytes,
            "budget_limit_bytes": b.limit_bytes,
            "budget_used_pct": 100.0 * b.used_bytes / b.limit_bytes if b.limit_bytes else None,
        }
        counters = by_name.get(b.interface)
        if counters is not None and "budget_month" not in counters:
            counters.update(budget)
        else:
            rows.append((b.interface, budget))
    points = [summary]
    for name, fields in rows:
        points.append(ctx.point("health", {**ctx.link_tags(name)}, fields))
    return points


BUILDERS: Final[dict[wire.Kind, Callable[[Any, Context], list[Point]]]] = {
    "throughput": _throughput,
    "ookla": _throughput,
    "latency": _latency,
    "dns": _dns,
    "ipv6": _ipv6,
    "service": _service,
    "health": _health,
}
