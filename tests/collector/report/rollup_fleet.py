"""A fleet's results as the collector's points, with their probe and seq: the data of the
rollup tests and of bench/bench_report.py. Points are made by the collector's own point
builder (``points_from`` on one template result per probe and kind, values varied), so
tags and fields are what the collector writes. Deterministic for a seed.

Per probe and hour: one throughput test per uplink (every probe a fixed uplink, every other
one a mobile one too; ~3 % failed, ~2 % skipped by the busy-line gate, 1 % with an
estimated timestamp, 1 % measured unsynced), one latency run to two targets, one service run
with two checks, IPv6 every 6 hours, health (1 % of hours missing).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from probefleet.agent import results
from probefleet.collector._batch import Item
from probefleet.collector.inventory import (
    AccessTargets,
    Enrichment,
    InterfaceInfo,
    InventoryFile,
    ProbeInfo,
    TargetsFile,
)
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.collector.points import points_from
from probefleet.collector.rollups_compact import Compactor
from probefleet.collector.rollups_daily import InfluxQL
from probefleet.collector.rollups_feeder import Rollups
from probefleet.core import wire
from probefleet.kinds.base import Link
from probefleet.kinds.health.payload import HealthData
from probefleet.kinds.ipv6.payload import Ipv6Data
from probefleet.kinds.latency.payload import LatencyData, LatencyTarget
from probefleet.kinds.service.payload import ServiceCheck, ServiceData
from probefleet.kinds.throughput.payload import ThroughputData

VN: Final = dt.timezone(dt.timedelta(hours=7))
VN_START: Final = dt.datetime(2025, 3, 3, tzinfo=VN)
DATA_NETWORK: Final = "10.10.0.1"
PORTAL: Final = "dongnai.gov.vn"
FIXED_OPS: Final = ("VNPT", "Viettel", "FPT")
MOBILE_OPS: Final = ("Viettel", "MobiFone", "Vinaphone")
TARGETS: Final = TargetsFile(
    year=2025,
    fixed=AccessTargets(download_mbps=150.0),
    mobile=AccessTargets(download_mbps=60.0),
)


def inventory(probes: int) -> InventoryFile:
    out: dict[str, ProbeInfo] = {}
    for i in range(probes):
        interfaces = {"eth0": InterfaceInfo(operator=FIXED_OPS[i % 3], access="fixed")}
        if i % 2 == 0:
            interfaces["wwan0"] = InterfaceInfo(operator=MOBILE_OPS[i % 3], access="mobile")
        out[f"dn-{i:04d}"] = ProbeInfo(
            commune=f"Xã {i * 7 // 8:03d}",  # ~7 communes in 8 have one probe, some two
            district=f"Huyện {i % 11:02d}",
            province="Đồng Nai",
            interfaces=interfaces,
        )
    return InventoryFile(probes=out)


def enrichment(probes: int) -> Enrichment:
    return Enrichment(inventory(probes), TARGETS)


@dataclass(frozen=True, slots=True)
class Result:
    """One result as stored: its probe, seq and points."""

    probe: str
    seq: int
    points: list[Point]


def _template(
    enrich: Enrichment, kind: wire.Kind, probe: str, data: object, link: Link
) -> list[Point]:
    result = results.build(
        kind=kind,
        outcome=data,  # type: ignore[arg-type]
        probe_id=probe,
        boot_id="00000000-0000-4000-8000-000000000000",
        seq=1,
        measured_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        clock=wire.Clock(synced=True, uptime_s=100.0, since_sync_s=10.0),
        link=link,
    )
    return points_from(result, probe, enrich)


def with_fields(
    point: Point,
    fields: Mapping[str, FieldValue],
    time_ns: int,
    tags: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> Point:
    merged = {k: v for k, v in point.fields if k not in drop}
    merged.update(fields)
    all_tags = dict(point.tags)
    all_tags.update(tags or {})
    return Point(point.measurement, tuple(sorted(all_tags.items())), tuple(merged.items()), time_ns)


_TPUT = ThroughputData(
    method="librespeed",
    server_name="VNPT HCM",
    server_url="http://speedtest.example.vn/",
    download_mbps=100.0,
    upload_mbps=50.0,
    download_streams=6,
    upload_streams=3,
    download_duration_s=10.0,
    upload_duration_s=10.0,
)
_LAT = LatencyData(
    targets=[
        LatencyTarget(
            target=t,
            method="icmp",
            sent=10,
            received=10,
            loss_pct=0.0,
            rtt_min_ms=1.0,
            rtt_median_ms=5.0,
            jitter_ms=1.0,
        )
        for t in (PORTAL, DATA_NETWORK)
    ]
)
_SVC = ServiceData(
    checks=[
        ServiceCheck(
            name=n, target=f"https://{n}.dongnai.gov.vn/", protocol="https", up=True, total_ms=100.0
        )
        for n in ("dichvucong", "portal")
    ]
)
_V6 = Ipv6Data(capable=True, works=True, global_addresses=1)
_HEALTH = HealthData(
    cpu_pct=5.0, load_1m=0.1, memory_used_pct=30.0, memory_available_bytes=2**30,
    disk_used_pct=20.0, disk_free_bytes=2**34, uptime_s=100.0, agent_rss_bytes=2**26,
)  # fmt: skip
_RTT: Final = ("rtt_min_ms", "rtt_median_ms", "jitter_ms", "rtt_max_ms")
_FAIL_DROP: Final = (
    "download_mbps",
    "upload_mbps",
    "meets_download_target",
    "meets_upload_target",
    "download_streams",
    "upload_streams",
    "download_duration_s",
    "upload_duration_s",
    "download_bytes",
    "upload_bytes",
)


def fleet(enrich: Enrichment, start: dt.datetime, days: int, seed: int) -> Iterator[Result]:
    """Every result of every probe, probe by probe, in time order."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    targets = enrich.targets
    assert targets is not None
    fixed = Link(interface="eth0", access="fixed")
    for probe, info in enrich.inventory.probes.items():
        seq = 0
        links = [(Link(interface=i, access=x.access), x.access) for i, x in info.interfaces.items()]
        t_points = [(_template(enrich, "throughput", probe, _TPUT, ln)[0], a) for ln, a in links]
        l_points = _template(enrich, "latency", probe, _LAT, fixed)
        s_points = _template(enrich, "service", probe, _SVC, fixed)
        v_point = _template(enrich, "ipv6", probe, _V6, fixed)[0]
        h_point = _template(enrich, "health", probe, _HEALTH, Link())[0]
        base_ns = int(start.timestamp()) * 10**9 + rng.randrange(3600) * 10**9
        for hour in range(days * 24):
            t_ns = base_ns + hour * 3600 * 10**9
            for point, access in t_points:
                seq += 1
                yield Result(probe, seq, [_throughput(rng, point, access, targets, t_ns)])
            seq += 1
            lat = []
            for point in l_points:
                sent = 10
                received = rng.choice((10, 10, 10, 9, 8, 0))
                fields: dict[str, FieldValue] = {"sent": sent, "received": received}
                if received:
                    fields.update(
                        rtt_min_ms=round(rng.uniform(1, 3), 2),
                        rtt_median_ms=round(rng.uniform(2, 40), 2),
                        jitter_ms=round(rng.uniform(0.1, 9), 2),
                    )
                drop = (
                    () if received else ("rtt_min_ms", "rtt_median_ms", "jitter_ms", "rtt_max_ms")
                )
                lat.append(with_fields(point, fields, t_ns + 60, drop=drop))
            yield Result(probe, seq, lat)
            seq += 1
            svc = []
            for point in s_points:
                up = rng.random() > 0.01
                svc.append(
                    with_fields(
                        point,
                        {"up": up, "up_01": int(up), "total_ms": round(rng.uniform(40, 400), 1)},
                        t_ns + 120,
                    )
                )
            yield Result(probe, seq, svc)
            if hour % 6 == 0:
                seq += 1
                works = rng.random() > 0.1
                yield Result(
                    probe,
                    seq,
                    [with_fields(v_point, {"works": works, "works_01": int(works)}, t_ns + 180)],
                )
            if rng.random() > 0.01:
                seq += 1
                health = {
                    "uptime_s": float(hour * 3600 + 100),
                    "cpu_pct": round(rng.uniform(1, 90), 1),
                }
                yield Result(probe, seq, [with_fields(h_point, health, t_ns + 240)])


def _throughput(
    rng: random.Random, point: Point, access: str, targets: TargetsFile, t_ns: int
) -> Point:
    plan = targets.for_access(access)
    assert plan is not None
    roll = rng.random()
    if roll < 0.03:
        return with_fields(
            point, {"reason": "server unreachable"}, t_ns, {"status": "failed"}, _FAIL_DROP
        )
    if roll < 0.05:
        detail: dict[str, FieldValue] = {"reason": "line busy", "detail_max_cpu_pct": 80.0}
        if roll < 0.04:
            detail = {
                "reason": "cross traffic",
                "detail_cross_traffic_bytes_per_s": 900_000.0,
                "detail_max_cross_traffic_bytes_per_s": 250_000.0,
                "detail_max_cpu_pct": 80.0,
            }
        return with_fields(point, detail, t_ns, {"status": "skipped"}, _FAIL_DROP)
    low, high = (60.0, 260.0) if access == "fixed" else (20.0, 110.0)
    down = round(rng.uniform(low, high), 2)
    fields: dict[str, FieldValue] = {
        "download_mbps": down,
        "upload_mbps": round(down * 0.6, 2),
        "meets_download_target": int(down >= plan.download_mbps),
    }
    if roll < 0.06:
        fields["time_source"] = "estimated"
    elif roll < 0.07:
        fields["clock_synced"] = False
    return with_fields(point, fields, t_ns)


class Feeder:
    """The live feeder driven as the pipeline drives it: batches of stored results go to
    ``on_batch``, the parts it emits are written to InfluxDB and handed back as stored;
    the daily compaction runs through a real :class:`Compactor` over ``client``."""

    def __init__(
        self,
        write: Callable[[list[str]], None],
        state_dir: Path,
        client: InfluxQL,
        *,
        now: float,
        tz: str = "Asia/Ho_Chi_Minh",
    ) -> None:
        self.write = write
        self.pending: list[tuple[str, list[str]]] = []
        self.now = now
        self.compactor = Compactor(
            client, state_dir, emit=self._emit, tz=tz, clock=lambda: self.now
        )
        self.rollups = Rollups(
            state_dir,
            emit=self._emit,
            targets=TARGETS,
            collector_id="test",
            clock=lambda: self.now,
            compactor=self.compactor,
        )

    def _emit(self, topic: str, lines: list[str]) -> None:
        self.pending.append((topic, lines))

    def batch(self, results: Iterable[Result]) -> None:
        items = [Item("t", None, r.probe, r.seq, points=r.points) for r in results]
        self.rollups.on_batch(items)

    def store(self) -> int:
        """Write what was emitted (the pipeline's next batch) and say so to the feeder."""
        done, self.pending = self.pending, []
        n = 0
        for topic, lines in done:
            if lines:
                self.write(lines)
                n += len(lines)
            self.rollups.on_batch([Item(topic, None, None, None, lines=lines)])
        return n

    def flush(self) -> int:
        self.rollups.flush()
        return self.store()
