"""The `health` field table: a summary point plus one point per interface (see README.md)."""

from __future__ import annotations

from probefleet.kinds.base import FieldValue, Row
from probefleet.kinds.common.rows import as01, f
from probefleet.kinds.health.payload import HealthData


def rows(data: HealthData) -> list[Row]:
    summary = Row(
        # The probe as a whole: no interface tag, even when the envelope names one (its
        # per-interface rows carry theirs, and would otherwise be the same point).
        {"interface": None},
        {
            "cpu_pct": float(data.cpu_pct),
            "load_1m": float(data.load_1m),
            "memory_used_pct": float(data.memory_used_pct),
            "memory_available_bytes": data.memory_available_bytes,
            "disk_used_pct": float(data.disk_used_pct),
            "disk_free_bytes": data.disk_free_bytes,
            "uptime_s": float(data.uptime_s),
            "agent_rss_bytes": data.agent_rss_bytes,
            "temperature_c": f(data.temperature_c),
            "spool_depth": data.spool_depth,
            "spool_bytes": data.spool_bytes,
            "spool_dropped": data.spool_dropped,
            "dropped_disk_full": data.dropped_disk_full,
            "dropped_spool_budget": data.dropped_spool_budget,
            "dropped_unspoolable": data.dropped_unspoolable,
            "spool_held": data.spool_held,
            "disk_full_01": None if data.disk_full is None else as01(data.disk_full),
        },
        located=True,
    )
    # One point per interface: its counters and its data budget merged (same series and
    # time, so InfluxDB would merge them anyway). A repeated interface is caught upstream.
    per_link: list[tuple[str, dict[str, FieldValue | None]]] = [
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
        for c in data.interfaces
    ]
    by_name = dict(per_link)
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
            per_link.append((b.interface, budget))
    return [summary, *(Row({}, fields, link=name) for name, fields in per_link)]
