"""The `health` kind on the wire: its payload (``data``) and its result envelope."""

from __future__ import annotations

from typing import Annotated

import msgspec
from probefleet.core.wire import ByteCount, Count, Envelope, IfName, Pct, Seconds, Strict


class InterfaceCounters(Strict, frozen=True, kw_only=True):
    interface: IfName
    up: bool
    rx_bytes: ByteCount
    tx_bytes: ByteCount
    rx_errors: ByteCount = 0
    tx_errors: ByteCount = 0
    rx_drops: ByteCount = 0
    tx_drops: ByteCount = 0


class BudgetUsage(Strict, frozen=True, kw_only=True):
    interface: IfName
    month: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])\Z")]
    used_bytes: ByteCount
    limit_bytes: ByteCount


class HealthData(Strict, frozen=True, kw_only=True):
    cpu_pct: Pct
    load_1m: Annotated[float, msgspec.Meta(ge=0.0, le=10_000.0)]
    memory_used_pct: Pct
    memory_available_bytes: ByteCount
    disk_used_pct: Pct
    disk_free_bytes: ByteCount
    uptime_s: Seconds
    agent_rss_bytes: ByteCount
    temperature_c: Annotated[float, msgspec.Meta(ge=-60.0, le=150.0)] | None = None
    spool_depth: Count | None = None
    spool_bytes: ByteCount | None = None
    spool_dropped: Count | None = None  # results the disk budget forced out, ever
    interfaces: Annotated[list[InterfaceCounters], msgspec.Meta(max_length=32)] = []
    budgets: Annotated[list[BudgetUsage], msgspec.Meta(max_length=32)] = []


class HealthResult(Envelope, tag="health", frozen=True, kw_only=True):
    data: HealthData | None = None
