"""A week of a small fleet, built with the agent's own envelope builder (agent/results.py).

Deterministic: the tests know every value they publish, so they can check the report both
against direct InfluxQL and against what was sent. Province time is UTC+7 (no DST).
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from dataclasses import dataclass, field
from typing import Final

from probefleet.agent import results
from probefleet.core import wire
from probefleet.kinds.base import Link
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.health.payload import HealthData
from probefleet.kinds.ipv6.payload import Ipv6Data
from probefleet.kinds.latency.payload import LatencyData, LatencyTarget
from probefleet.kinds.service.payload import ServiceCheck, ServiceData
from probefleet.kinds.throughput.payload import ThroughputData

VN: Final = dt.timezone(dt.timedelta(hours=7))
START_LOCAL: Final = dt.datetime(2025, 3, 3, tzinfo=VN)  # report --from 2025-03-03
DAYS: Final = 7  # report --to 2025-03-09 (included)
END_LOCAL: Final = START_LOCAL + dt.timedelta(days=DAYS)
THROUGHPUT_HOURS: Final = (0, 3, 6, 9, 12, 15, 19, 20, 21, 22)
PEAK: Final = (19, 23)
DATA_NETWORK: Final = "10.10.0.1"
PORTAL: Final = "dongnai.gov.vn"

INVENTORY: Final = """
[probes.dn-tanphu-01]
commune = "Tân Phú"
district = "Tân Phú"
province = "Đồng Nai"
[probes.dn-tanphu-01.interfaces.eth0]
operator = "VNPT"
access = "fixed"
[probes.dn-tanphu-01.interfaces.wwan0]
operator = "Viettel"
access = "mobile"

[probes.dn-bienhoa-01]
commune = "Phường Trấn Biên"
district = "Biên Hòa"
province = "Đồng Nai"
[probes.dn-bienhoa-01.interfaces.eth0]
operator = "FPT"
access = "fixed"

[probes.dn-longthanh-01]
commune = "Long Thành"
district = "Long Thành"
province = "Đồng Nai"
[probes.dn-longthanh-01.interfaces.eth0]
operator = "Viettel"
access = "fixed"
"""

LINKS: Final = {
    ("dn-tanphu-01", "eth0"): ("fixed", 110.0, 210.0, 0.7),
    ("dn-tanphu-01", "wwan0"): ("mobile", 45.0, 110.0, 0.8),
    ("dn-bienhoa-01", "eth0"): ("fixed", 150.0, 190.0, 0.95),
    ("dn-unknown-01", "eth0"): ("fixed", 50.0, 60.0, 1.0),  # not in the inventory
}


@dataclass
class Fleet:
    """Results to publish (in order), and what the tests expect from them."""

    messages: list[wire.Result] = field(default_factory=list)
    # (probe, interface) -> [(UTC time, download, upload)] of completed tests
    speeds: dict[tuple[str, str], list[tuple[dt.datetime, float, float]]] = field(
        default_factory=dict
    )
    failed: int = 0
    skipped: int = 0
    skipped_busy: int = 0
    skipped_cross_traffic: int = 0
    rebased: int = 0
    health_hours: dict[str, int] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)


def _boot(probe: str) -> str:
    return f"00000000-0000-4000-8000-{zlib.crc32(probe.encode()):012d}"


BOOT_START: Final = START_LOCAL - dt.timedelta(hours=1)


def _add(  # noqa: PLR0917 - the envelope's parts, as agent.results.build names them
    fleet: Fleet,
    kind: wire.Kind,
    probe: str,
    when: dt.datetime,
    outcome: results.Outcome,
    link: Link,
    *,
    skipped: bool = False,
    synced: bool = True,
) -> None:
    seq = fleet.seqs.get(probe, 0) + 1
    fleet.seqs[probe] = seq
    uptime = (when - BOOT_START).total_seconds()
    measured = (
        when if synced else dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=uptime)
    )
    clock = wire.Clock(synced=synced, uptime_s=uptime, since_sync_s=60.0 if synced else None)
    fleet.messages.append(
        results.build(
            kind=kind,
            outcome=outcome,
            probe_id=probe,
            boot_id=_boot(probe),
            seq=seq,
            measured_at=measured,
            clock=clock,
            link=link,
            skipped=skipped,
        )
    )


def _throughput(fleet: Fleet, rng: random.Random) -> None:
    n = 0
    for day in range(DAYS):
        for hour in THROUGHPUT_HOURS:
            for (probe, iface), (access, low, high, peak_factor) in LINKS.items():
                n += 1
                when = START_LOCAL + dt.timedelta(days=day, hours=hour, minutes=10 + n % 7)
                link = Link(interface=iface, access=access)  # type: ignore[arg-type]
                if n % 17 == 0:
                    fleet.failed += 1
                    outcome: results.Outcome = MeasurementError("server refused: HTTP 503")
                    _add(fleet, "throughput", probe, when, outcome, link)
                    continue
                if n in (5, 40, 77, 120, 155):
                    fleet.skipped += 1
                    if n == 155:  # the data budget, not the line
                        detail = {"used_bytes": 9e9, "limit_bytes": 1e10}
                    else:
                        busy = n != 120  # 120: CPU busy, the line quiet
                        fleet.skipped_busy += 1
                        fleet.skipped_cross_traffic += int(busy)
                        detail = {
                            "cross_traffic_bytes_per_s": 81234.0 if busy else 300.0,
                            "cpu_pct": 12.0 if busy else 95.0,
                            "waited_s": 30.0,
                            "checks": 7.0,
                            "max_cross_traffic_bytes_per_s": 25000.0,
                            "max_cpu_pct": 30.0,
                        }
                    _add(
                        fleet,
                        "throughput",
                        probe,
                        when,
                        MeasurementError("line busy", detail),
                        link,
                        skipped=True,
                    )
                    continue
                factor = peak_factor if PEAK[0] <= hour < PEAK[1] else 1.0
                down = round(rng.uniform(low, high) * factor, 3)
                up = round(down * rng.uniform(0.3, 0.9), 3)
                # Day 2 of Tân Phú's FTTH: the probe's clock lost sync (re-based on its boot).
                synced = not (probe == "dn-tanphu-01" and iface == "eth0" and day == 2)
                fleet.rebased += int(not synced)
                data = ThroughputData(
                    method="librespeed",
                    server_name="VNPT Hồ Chí Minh" if n % 3 else "Viettel IDC",
                    server_url="http://speedtest.example.vn/backend",
                    download_mbps=down,
                    upload_mbps=up,
                    download_bytes=int(down * 1e6 / 8 * 10),
                    upload_bytes=int(up * 1e6 / 8 * 10),
                    download_duration_s=10.0,
                    upload_duration_s=10.0,
                    download_streams=6,
                    upload_streams=3,
                    latency_idle_ms=round(rng.uniform(5, 30), 2),
                    jitter_ms=round(rng.uniform(0.5, 4), 2),
                    ip_version=4,
                )
                _add(fleet, "throughput", probe, when, data, link, synced=synced)
                fleet.speeds.setdefault((probe, iface), []).append(
                    (when.astimezone(dt.UTC), down, up)
                )


def _others(fleet: Fleet, rng: random.Random) -> None:
    fixed = Link(interface="eth0", access="fixed")
    for day in range(DAYS):
        for hour in range(0, 24, 3):
            when = START_LOCAL + dt.timedelta(days=day, hours=hour, minutes=30)
            for probe in ("dn-tanphu-01", "dn-bienhoa-01"):
                bien = probe == "dn-bienhoa-01"
                answered = not (bien and hour in (0, 12))  # Biên Hòa: 75 % reachable
                targets = [
                    LatencyTarget(
                        target=PORTAL,
                        method="icmp",
                        sent=10,
                        received=9 if hour == 6 else 10,
                        loss_pct=10.0 if hour == 6 else 0.0,
                        rtt_min_ms=5.0,
                        rtt_median_ms=round(rng.uniform(8, 30), 2),
                        jitter_ms=round(rng.uniform(0.5, 3), 2),
                    ),
                    LatencyTarget(
                        target=DATA_NETWORK,
                        method="icmp",
                        sent=10,
                        received=10 if answered else 0,
                        loss_pct=0.0 if answered else 100.0,
                        rtt_min_ms=2.0 if answered else None,
                        rtt_median_ms=round(rng.uniform(3, 6), 2) if answered else None,
                    ),
                ]
                _add(fleet, "latency", probe, when, LatencyData(targets=targets), fixed)
                up = not (bien and day == 4 and hour == 9)
                checks = [
                    ServiceCheck(
                        name="dichvucong",
                        target="https://dichvucong.dongnai.gov.vn/",
                        protocol="https",
                        up=up,
                        status_code=200 if up else 503,
                        total_ms=round(rng.uniform(80, 300), 1),
                    ),
                    ServiceCheck(
                        name="portal",
                        target="https://dongnai.gov.vn/",
                        protocol="https",
                        up=True,
                        status_code=200,
                        total_ms=round(rng.uniform(80, 300), 1),
                    ),
                ]
                _add(fleet, "service", probe, when, ServiceData(checks=checks), fixed)
                if hour % 6 == 0:
                    works = not bien or hour == 0  # Biên Hòa's IPv6 works in 1 run of 4
                    v6 = Ipv6Data(capable=True, works=works, global_addresses=1)
                    _add(fleet, "ipv6", probe, when, v6, fixed)


def _health(fleet: Fleet) -> None:
    for probe in ("dn-tanphu-01", "dn-bienhoa-01"):
        fleet.health_hours[probe] = 0
        for h in range(DAYS * 24):
            if probe == "dn-bienhoa-01" and 48 <= h < 72:
                continue  # Biên Hòa's probe was off on day 3
            when = START_LOCAL + dt.timedelta(hours=h, minutes=5)
            data = HealthData(
                cpu_pct=5.0,
                load_1m=0.1,
                memory_used_pct=30.0,
                memory_available_bytes=2**30,
                disk_used_pct=20.0,
                disk_free_bytes=2**34,
                uptime_s=(when - BOOT_START).total_seconds(),
                agent_rss_bytes=50 * 2**20,
            )
            _add(fleet, "health", probe, when, data, Link())
            fleet.health_hours[probe] += 1


def build_fleet(seed: int = 8) -> Fleet:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    fleet = Fleet()
    _health(fleet)
    _throughput(fleet, rng)
    _others(fleet, rng)
    # Per probe in time order (seq order), so that a boot's synced results come first.
    fleet.messages.sort(key=lambda m: (m.probe_id, m.seq))
    return fleet


def influx_median(values: list[float]) -> float | None:
    """InfluxDB's median(): the mean of the two middle values for an even count."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return None
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def influx_percentile(values: list[float], pct: float) -> float | None:
    """InfluxDB 1.x percentile(): nearest rank, floor(n * p / 100 + 0.5) - 1; None below 0."""
    ordered = sorted(values)
    i = int(len(ordered) * pct / 100 + 0.5) - 1
    return ordered[i] if 0 <= i < len(ordered) else None
