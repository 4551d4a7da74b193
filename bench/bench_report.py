"""The annual report on a year of a large fleet, against the raw time of its own queries.

Data: ``--probes`` probes (default 200; every probe an FTTH uplink, every other one a 4G
uplink too) over ``--days`` days (default 365), points made by the collector's own point
builder (``collector.points.points_from`` for each probe's template result, then
``lineproto.Point`` per hour) and written straight to InfluxDB 1.6 over v1 ``/write``:
throughput every hour per uplink, latency (portal + data network) and services (two) every
hour, IPv6 every 6 hours, health every hour (a real probe reports health every minute: the
uptime query then reads 60 times more points).

Ours: ``build_report`` (every catalogue statement through ``HttpInfluxQL``, figures,
verdicts) + the HTML, CSV and JSON renderers, wall-clock seconds.
Reference: the very same InfluxQL statements POSTed by a bare urllib loop that reads the
answer and throws it away — InfluxDB's own time for the report's questions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probefleet.agent import results
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
from probefleet.collector.report import fetch, gather
from probefleet.collector.report.html import render_html
from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.run import latency_targets_known
from probefleet.collector.report.settings import ReportSettings
from probefleet.collector.report.tables import render_csv, render_json
from probefleet.core import wire
from probefleet.kinds.base import Link
from probefleet.kinds.health.payload import HealthData
from probefleet.kinds.ipv6.payload import Ipv6Data
from probefleet.kinds.latency.payload import LatencyData, LatencyTarget
from probefleet.kinds.service.payload import ServiceCheck, ServiceData
from probefleet.kinds.throughput.payload import ThroughputData

from tests.harness import InfluxDB

VN = dt.timezone(dt.timedelta(hours=7))
DATA_NETWORK = "10.10.0.1"
FIXED_OPS = ("VNPT", "Viettel", "FPT")
MOBILE_OPS = ("Viettel", "MobiFone", "Vinaphone")
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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


def _template(
    enrichment: Enrichment, kind: wire.Kind, probe: str, data: object, link: Link
) -> list[Point]:
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    result = results.build(
        kind=kind,
        outcome=data,  # type: ignore[arg-type]
        probe_id=probe,
        boot_id="00000000-0000-4000-8000-000000000000",
        seq=1,
        measured_at=when,
        clock=wire.Clock(synced=True, uptime_s=100.0, since_sync_s=10.0),
        link=link,
    )
    return points_from(result, probe, enrichment)


def _with(point: Point, fields: dict[str, FieldValue], time_ns: int) -> str:
    merged = dict(point.fields)
    merged.update(fields)
    return Point(point.measurement, point.tags, tuple(merged.items()), time_ns).line()


def lines(enrichment: Enrichment, start: dt.datetime, days: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    inv = enrichment.inventory
    targets = enrichment.targets
    assert targets is not None
    tput = ThroughputData(
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
    lat = LatencyData(
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
            for t in ("dongnai.gov.vn", DATA_NETWORK)
        ]
    )
    svc = ServiceData(
        checks=[
            ServiceCheck(
                name=n,
                target=f"https://{n}.dongnai.gov.vn/",
                protocol="https",
                up=True,
                total_ms=100.0,
            )
            for n in ("dichvucong", "portal")
        ]
    )
    v6 = Ipv6Data(capable=True, works=True, global_addresses=1)
    health = HealthData(
        cpu_pct=5.0, load_1m=0.1, memory_used_pct=30.0, memory_available_bytes=2**30,
        disk_used_pct=20.0, disk_free_bytes=2**34, uptime_s=100.0, agent_rss_bytes=2**26,
    )  # fmt: skip
    fixed = Link(interface="eth0", access="fixed")
    for probe, info in inv.probes.items():
        links = [(Link(interface=i, access=x.access), x.access) for i, x in info.interfaces.items()]
        t_points = [
            (_template(enrichment, "throughput", probe, tput, link)[0], a) for link, a in links
        ]
        l_points = _template(enrichment, "latency", probe, lat, fixed)
        s_points = _template(enrichment, "service", probe, svc, fixed)
        v_point = _template(enrichment, "ipv6", probe, v6, fixed)[0]
        h_point = _template(enrichment, "health", probe, health, Link())[0]
        base_ns = int(start.timestamp()) * 10**9 + rng.randrange(3600) * 10**9
        for hour in range(days * 24):
            t_ns = base_ns + hour * 3600 * 10**9
            for point, access in t_points:
                plan = targets.for_access(access)
                assert plan is not None
                low, high = (60.0, 260.0) if access == "fixed" else (20.0, 110.0)
                down = round(rng.uniform(low, high), 2)
                yield _with(
                    point,
                    {
                        "download_mbps": down,
                        "upload_mbps": round(down * 0.6, 2),
                        "meets_download_target": int(down >= plan.download_mbps),
                    },
                    t_ns,
                )
            for point in l_points:
                yield _with(point, {"rtt_median_ms": round(rng.uniform(2, 40), 2)}, t_ns + 60)
            for point in s_points:
                up = rng.random() > 0.002
                yield _with(point, {"up": up, "up_01": int(up)}, t_ns + 120)
            if hour % 6 == 0:
                yield _with(v_point, {}, t_ns + 180)
            if rng.random() > 0.01:  # 1 % of hours without a health report
                yield _with(h_point, {"uptime_s": float(hour * 3600 + 100)}, t_ns + 240)


def write(server: InfluxDB, db: str, source: Iterator[str], batch: int = 20_000) -> int:
    n, chunk = 0, []
    for text in source:
        chunk.append(text)
        if len(chunk) >= batch:
            server.write_lines(db, chunk)
            n += len(chunk)
            chunk = []
    if chunk:
        server.write_lines(db, chunk)
        n += len(chunk)
    return n


class _Recorder:
    """An InfluxQL client that remembers every statement the report sent."""

    def __init__(self, inner: fetch.HttpInfluxQL) -> None:
        self.inner = inner
        self.texts: list[str] = []

    def run(self, text: str) -> list[dict[str, Any]]:
        self.texts.append(text)
        return self.inner.run(text)


def raw_seconds(url: str, db: str, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        body = urllib.parse.urlencode({"db": db, "q": text, "epoch": "s"}).encode()
        with _direct.open(f"{url}/query", data=body, timeout=3600) as response:
            response.read()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=1, help="report runs (median taken)")
    args = parser.parse_args()
    inv = inventory(args.probes)
    enrichment = Enrichment(
        inv,
        TargetsFile(
            year=2025,
            fixed=AccessTargets(download_mbps=150.0),
            mobile=AccessTargets(download_mbps=60.0),
        ),
    )
    start = dt.datetime(2025, 1, 1, tzinfo=VN)
    end = start + dt.timedelta(days=args.days)
    settings = ReportSettings(data_network_targets=[DATA_NETWORK])
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        server = InfluxDB(Path(tmp) / "influx").start()
        try:
            db = "bench_report"
            server.create_database(db)
            t0 = time.perf_counter()
            n = write(server, db, lines(enrichment, start, args.days, seed=1))
            t_write = time.perf_counter() - t0
            print(f"data: {args.probes} probes, {args.days} days, {n:,} points written in "
                  f"{t_write:.0f} s ({n / t_write:,.0f} points/s)")  # fmt: skip
            client = _Recorder(fetch.HttpInfluxQL(server.v1_url, database=db, timeout_s=3600))
            ours: list[float] = []
            report = None
            for _ in range(args.repeat):
                client.texts.clear()
                t0 = time.perf_counter()
                fetcher = fetch.Fetcher(client)
                report = gather.gather(
                    fetcher,
                    start=start.astimezone(dt.UTC),
                    end=end.astimezone(dt.UTC),
                    settings=settings,
                    inventory=inv,
                    targets=enrichment.targets,
                    latency_targets_known=latency_targets_known(client),
                )
                t_gather = time.perf_counter() - t0
                sizes = {}
                for name, render in (("html", render_html), ("csv", render_csv),
                                     ("json", render_json)):  # fmt: skip
                    sizes[name] = len(render(report, Strings("vi")).encode())
                ours.append(time.perf_counter() - t0)
                slow = sorted(fetcher.seconds.items(), key=lambda kv: -kv[1])[:5]
            ref = raw_seconds(server.v1_url, db, client.texts)
            assert report is not None
            mid = sorted(ours)[len(ours) // 2]
            label = f"report, {args.days} days (s, lower=better)"
            print(f"{'benchmark':<34} {'ours':>9} {'reference':>10} {'ratio':>6}")
            print(f"{label:<34} {mid:>9.1f} {ref:>10.1f} "
                  f"{mid / ref:>6.2f}   (ref: the same {len(client.texts)} InfluxQL statements,"
                  " answers read and dropped)")  # fmt: skip
            print(f"  of which fetch+figures {t_gather:.1f} s, rendering {mid - t_gather:.1f} s; "
                  f"html {sizes['html']:,} B, csv {sizes['csv']:,} B, json {sizes['json']:,} B; "
                  f"{len(report.communes)} communes")  # fmt: skip
            for key, seconds in slow:
                print(f"  slowest: {key:<44} {seconds:6.1f} s")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
