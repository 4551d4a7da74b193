"""The annual report from the rollups, against the same report from raw points.

Two fleets, one InfluxDB 1.6 each:

- ``--probes`` probes (default 12) over ``--days`` days (default 365), every result made by
  the collector's own point builder (tests/collector/report/rollup_fleet.py: per probe and
  hour a throughput test per uplink, latency to two targets, two service checks, health;
  IPv6 every 6 hours). Raw points are written as the collector writes them, and the same
  results folded into rollups (``Buckets`` hour by hour, then ``daily_points``: what the
  live feeder and the daily compaction write). Ours: ``gather(source="rollups")``;
  reference: ``gather(source="raw")`` — the same report over every raw point.
- ``--fleet`` probes (default 200; say 3300 for a country) over ``--days``: a year of raw
  points for thousands of probes takes hours to generate and to write, so only their
  *daily rollup points* are written, made from 28 days of 6 template probes (the small
  fleet's generator, folded) with each probe's own tags. Ours: the rollup report; its
  reference: the small fleet's raw report scaled by probes (InfluxDB's cost is linear in
  points), printed as such — not run.

Every figure of the small fleet's two reports is compared within the stated bounds
(tests/collector/test_rollups.py does the same on a few days).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import machine
from probefleet.collector import queries, rollups_hist
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.collector.report import fetch, gather
from probefleet.collector.report.html import render_html
from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.model import Report
from probefleet.collector.report.run import latency_targets_known
from probefleet.collector.report.settings import ReportSettings
from probefleet.collector.report.tables import render_csv, render_json
from probefleet.collector.rollups_bucket import Bucket, Buckets
from probefleet.collector.rollups_compact import peak_hours_utc
from probefleet.collector.rollups_daily import HOURS, daily_points
from probefleet.collector.rollups_spec import HOUR_NS

from tests.collector.report import rollup_fleet as rf
from tests.harness import InfluxDB

START = dt.datetime(2025, 1, 1, tzinfo=rf.VN)
SETTINGS = ReportSettings(data_network_targets=[rf.DATA_NETWORK])
TEMPLATE_DAYS = 28
_CHUNK = 20_000


class Writer:
    def __init__(self, server: InfluxDB, db: str) -> None:
        self.server, self.db = server, db
        self.chunk: list[str] = []
        self.n = 0

    def add(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.chunk.append(line)
            if len(self.chunk) >= _CHUNK:
                self.flush()

    def flush(self) -> None:
        if self.chunk:
            self.server.write_lines(self.db, self.chunk)
            self.n += len(self.chunk)
            self.chunk = []


def _days(start: dt.datetime, days: int) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(start + dt.timedelta(days=d), start + dt.timedelta(days=d + 1)) for d in range(days)]


def _by_probe(results: Iterator[rf.Result]) -> Iterator[list[rf.Result]]:
    group: list[rf.Result] = []
    for r in results:
        if group and r.probe != group[0].probe:
            yield group
            group = []
        group.append(r)
    if group:
        yield group


class Folder:
    """Raw results -> daily rollup points, probe by probe (hours of the province summed
    over probes)."""

    def __init__(self, start: dt.datetime, days: int) -> None:
        self.ranges = _days(start, days)
        self.first_ns = int(start.timestamp()) * 10**9
        self.hours: dict[tuple[int, tuple[tuple[str, str], ...]], Bucket] = {}

    def probe(self, results: list[rf.Result]) -> Iterator[Point]:
        buckets = Buckets(rf.TARGETS)
        for r in results:
            for p in r.points:
                buckets.add(p)
        per_day: dict[int, list[Bucket]] = {}
        for b in buckets.values():
            per_day.setdefault((b.hour_ns - self.first_ns) // (24 * HOUR_NS), []).append(b)
        for d, found in sorted(per_day.items()):
            if not 0 <= d < len(self.ranges):
                continue
            a, z = self.ranges[d]
            for point in daily_points(found, a, z, peak_hours_utc=peak_hours_utc(a, 19, 23)):
                if point.measurement == HOURS:
                    self._hours(point)
                else:
                    yield point

    def _hours(self, point: Point) -> None:
        key = (point.time_ns, point.tags)
        part = Bucket.from_fields(HOURS, point.tags, point.time_ns, dict(point.fields))
        mine = self.hours.get(key)
        if mine is None:
            self.hours[key] = part
        else:
            mine.merge(part)

    def hour_line(self, bucket: Bucket, when: int, scale: float = 1.0) -> str:
        fields: dict[str, FieldValue] = {
            k: v * scale if k.endswith("_sum") else round(v * scale)
            for k, v in bucket.counts.items()
        }
        for k, found in bucket.bins.items():
            fields[f"{k}_hist"] = rollups_hist.encode(
                {i: round(c * scale) for i, c in found.items()}
            )
        return Point(HOURS, bucket.tags, tuple(fields.items()), when).line()

    def hour_lines(self) -> Iterator[str]:
        for (when, _tags), bucket in self.hours.items():
            yield self.hour_line(bucket, when)


def report(client: fetch.HttpInfluxQL, probes: int, days: int, source: gather.Source) -> Report:
    inv = rf.inventory(probes)
    return gather.gather(
        fetch.Fetcher(client),
        start=START.astimezone(dt.UTC),
        end=(START + dt.timedelta(days=days)).astimezone(dt.UTC),
        settings=SETTINGS,
        inventory=inv,
        targets=rf.TARGETS,
        latency_targets_known=latency_targets_known(client),
        source=source,
    )


def timed(client: fetch.HttpInfluxQL, probes: int, days: int, source: gather.Source,
          ) -> tuple[float, Report]:  # fmt: skip
    t0 = time.perf_counter()
    rep = report(client, probes, days, source)
    for render in (render_html, render_csv, render_json):
        render(rep, Strings("vi"))
    return time.perf_counter() - t0, rep


def compare(raw: object, rolled: object, path: str = "") -> tuple[int, int, float]:
    """(figures compared, beyond their bound, worst relative error of medians)."""
    n = bad = 0
    worst = 0.0
    if isinstance(raw, dict) and isinstance(rolled, dict):
        for key in set(raw) | set(rolled):
            if key not in ("generated_at", "query_seconds", "statements"):
                a, b, w = compare(raw.get(key), rolled.get(key), f"{path}.{key}")
                n, bad, worst = n + a, bad + b, max(worst, w)
    elif isinstance(raw, list) and isinstance(rolled, list) and len(raw) == len(rolled):
        for x, y in zip(raw, rolled, strict=True):
            a, b, w = compare(x, y, path)
            n, bad, worst = n + a, bad + b, max(worst, w)
    elif isinstance(raw, float) and isinstance(rolled, float):
        rel = abs(raw - rolled) / abs(raw) if raw else abs(rolled)
        approx = any(m in path for m in ("median", "p10", "_ms"))
        return 1, int(rel > (rollups_hist.BOUND if approx else 1e-9)), rel if approx else 0.0
    else:
        return 1, int(raw != rolled), 0.0
    return n, bad, worst


def small(args: argparse.Namespace, tmp: Path) -> float | None:
    server = InfluxDB(tmp / "small").start()
    try:
        db = "bench_report"
        _create(server, db, args.shard_duration)
        raw, rolled = Writer(server, db), Writer(server, db)
        folder = Folder(START, args.days)
        t0 = time.perf_counter()
        enrich = rf.enrichment(args.probes)
        for group in _by_probe(rf.fleet(enrich, START, args.days, seed=1)):
            raw.add(p.line() for r in group for p in r.points)
            rolled.add(p.line() for p in folder.probe(group))
        rolled.add(folder.hour_lines())
        raw.flush()
        rolled.flush()
        print(f"small fleet: {args.probes} probes x {args.days} days: {raw.n:,} raw points, "
              f"{rolled.n:,} daily rollup points ({raw.n / rolled.n:.0f}x fewer), made and "
              f"written in {time.perf_counter() - t0:.0f} s")  # fmt: skip
        client = fetch.HttpInfluxQL(server.v1_url, database=db, timeout_s=3600)
        ours, rep_r = timed(client, args.probes, args.days, "rollups")
        ref: float | None = None
        if not args.no_raw:
            ref, rep_w = timed(client, args.probes, args.days, "raw")
            n, bad, worst = compare(dataclasses.asdict(rep_w), dataclasses.asdict(rep_r))
            bound = rollups_hist.BOUND * 100
            print(f"  figures compared: {n:,}, beyond their bound: {bad}, worst median/percentile"
                  f" error {worst * 100:.2f} % (bound {bound:.2f} %)")  # fmt: skip
        _line(f"report {args.probes} probes x {args.days} d (s)", ours, ref,
              "the same report from raw points (gather source=raw)", rep_r.statements)  # fmt: skip
        return ref
    finally:
        server.stop()


def templates(days: int) -> tuple[dict[tuple[int, int], list[str]], Folder]:
    """Daily rollup lines of 6 template probes (classes of i % 6) x TEMPLATE_DAYS days."""
    folder = Folder(START, TEMPLATE_DAYS)
    out: dict[tuple[int, int], list[str]] = {}
    day0 = int(START.timestamp()) * 10**9
    for group in _by_probe(rf.fleet(rf.enrichment(6), START, TEMPLATE_DAYS, seed=2)):
        c = int(group[0].probe.split("-")[1])
        for p in folder.probe(group):
            k = (p.time_ns - day0) // (24 * HOUR_NS)
            out.setdefault((c, k), []).append(p.line().rsplit(" ", 1)[0])
    return out, folder


def big(args: argparse.Namespace, tmp: Path, small_raw_s: float | None) -> None:
    server = InfluxDB(tmp / "big").start()
    try:
        db = "bench_fleet"
        _create(server, db, args.shard_duration)
        t0 = time.perf_counter()
        pool, folder = templates(args.days)
        out = Writer(server, db)
        inv = rf.inventory(args.fleet)
        day0 = int(START.timestamp())
        for j, (probe, info) in enumerate(inv.probes.items()):
            c = j % 6
            subs = (
                (f"probe=dn-{c:04d}", f"probe={probe}"),
                (f"commune=Xã\\ {c * 7 // 8:03d}", "commune=" + info.commune.replace(" ", "\\ ")),
                (f"district=Huyện\\ {c % 11:02d}",
                 "district=" + (info.district or "").replace(" ", "\\ ")),
            )  # fmt: skip
            heads = []
            for k in range(TEMPLATE_DAYS):
                mine = []
                for text in pool[(c, k)]:
                    for old, new in subs:
                        text = text.replace(old, new)  # noqa: PLW2901
                    mine.append(text)
                heads.append(mine)
            for d in range(args.days):
                ts = f" {(day0 + d * 86_400) * 10**9}"
                out.chunk.extend(h + ts for h in heads[(d + j) % TEMPLATE_DAYS])
                if len(out.chunk) >= _CHUNK:
                    out.flush()
        # The province's hours: the templates' sums, scaled to the fleet, for every day.
        for d in range(args.days):
            k = d % TEMPLATE_DAYS
            when = (day0 + d * 86_400) * 10**9
            for (t, _tags), bucket in folder.hours.items():
                if (t // 10**9 - day0) // 86_400 == k:
                    out.chunk.append(folder.hour_line(bucket, when, args.fleet / 6))
        out.flush()
        print(f"fleet: {args.fleet} probes x {args.days} days: {out.n:,} daily rollup points "
              f"written directly (from {TEMPLATE_DAYS} days of 6 template probes), "
              f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
        client = fetch.HttpInfluxQL(server.v1_url, database=db, timeout_s=3600)
        panels(client, args)
        if args.no_report:
            return
        ours, rep = timed(client, args.fleet, args.days, "rollups")
        ref = small_raw_s * args.fleet / args.probes if small_raw_s else None
        _line(f"report {args.fleet} probes x {args.days} d (s)", ours, ref,
              f"raw report scaled from {args.probes} probes, not run", rep.statements)  # fmt: skip
        print(f"  of which InfluxDB (the statements) {rep.query_seconds:.1f} s")
    finally:
        server.stop()


def panels(client: fetch.HttpInfluxQL, args: argparse.Namespace) -> None:
    """Every Year-board panel's InfluxQL over the whole period, as Grafana sends it (every
    variable on All): seconds per panel."""
    import re

    from grafana.year_queries import YEAR_QUERIES

    span = queries.time_filter(START, START + dt.timedelta(days=args.days))
    worst = ("", 0.0)
    for q in YEAR_QUERIES:
        text = re.sub(
            r"\$(?!timeFilter)[A-Za-z_]\w*",
            ".*",
            q.grafana(
                ("access",) if q.measurement == "throughput_1d" and not q.fixed_group_by else ()
            ),
        )
        text = text.replace("$timeFilter", span)
        t0 = time.perf_counter()
        client.run(text)
        seconds = time.perf_counter() - t0
        worst = max(worst, (q.name, seconds), key=lambda kv: kv[1])
        print(f"  panel {q.name:<20} {seconds:6.2f} s  ({args.fleet} probes, {args.days} days)")
    print(f"  slowest panel: {worst[0]} {worst[1]:.2f} s")


def _create(server: InfluxDB, db: str, shard_duration: str) -> None:
    if shard_duration:
        server.query_raw(f'CREATE DATABASE "{db}" WITH SHARD DURATION {shard_duration}', post=True)
    else:
        server.create_database(db)


def _line(name: str, ours: float, ref: float | None, note: str, statements: int) -> None:
    ref_text = f"{ref:>10.1f}" if ref is not None else f"{'-':>10}"
    ratio = f"{ours / ref:>7.3f}" if ref else f"{'-':>7}"
    print(f"{name:<40} {ours:>9.1f} {ref_text} {ratio}   (ref: {note}; {statements} statements)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=12, help="small fleet: raw and rollups")
    parser.add_argument("--fleet", type=int, default=200, help="big fleet: rollups only (0: none)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--no-raw", action="store_true", help="skip the raw reference report")
    parser.add_argument("--no-report", action="store_true", help="big fleet: panels only")
    parser.add_argument(
        "--shard-duration",
        default="",
        help="the database's shard group duration (e.g. 52w; default InfluxDB's: 7d)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}; shard duration {args.shard_duration or '7d (default)'}")
    print(f"{'benchmark':<40} {'ours':>9} {'reference':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        ref = small(args, Path(tmp)) if args.probes else None
        if args.fleet:
            big(args, Path(tmp), ref)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
