"""The `health` kind on the wire: its payload (``data``) and its result envelope."""

from __future__ import annotations

from typing import Annotated

import msgspec
from probefleet.core.wire import ByteCount, Count, Envelope, IfName, Pct, Seconds, Strict

# A counter for the probe's life: never so large that a health result would break the
# contract (a lost health result for a big counter would hide the very losses it counts).
LifeCount = Annotated[int, msgspec.Meta(ge=0, le=10**15)]


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
    # Results lost on the probe, ever (for life: the counters survive restarts): all
    # reasons, then each reason. disk_full: the disk refused them and the memory hold
    # ([spool] memory_max_mb) overflowed; spool_budget: forced out by [spool] max_mb;
    # unspoolable: could never be spooled (larger than the whole budget, invalid).
    spool_dropped: LifeCount | None = None
    dropped_disk_full: LifeCount | None = None
    dropped_spool_budget: LifeCount | None = None
    dropped_unspoolable: LifeCount | None = None
    # Results held in memory now because the disk refuses them, and whether it is full.
    spool_held: Count | None = None
    disk_full: bool | None = None
    interfaces: Annotated[list[InterfaceCounters], msgspec.Meta(max_length=32)] = []
    budgets: Annotated[list[BudgetUsage], msgspec.Meta(max_length=32)] = []


class HealthResult(Envelope, tag="health", frozen=True, kw_only=True):
    data: HealthData | None = None
