"""The annual report from the rollups, against the same report from raw points, and the
Year board's panels.

- ``--probes`` probes (default 12) over ``--days`` days (default 365), every result made by
  the collector's own point builder (tests/collector/report/rollup_fleet.py: per probe and
  hour a throughput test per uplink, latency to two targets, two service checks, health;
  IPv6 every 6 hours). Raw points are written as the collector writes them, and the same
  results folded into rollups (``Buckets`` hour by hour, ``daily_points``, ``month_points``:
  what the live feeder and the compactor write). Ours: ``gather(source="rollups")``;
  reference: ``gather(source="raw")`` over every raw point, run. Every figure of the two is
  compared within the stated bounds (tests/collector/test_rollups*.py do the same).
- ``--fleet`` sizes (default 200; 200,1000,3300 for the issue's targets) over ``--days``: a
  year of raw points for thousands of probes takes hours to generate, so only their
  *rollup points* (daily, district, monthly) are written, directly, as the collector would
  have written them, made from 28 days of 6 template probes with each probe's own tags.
  Ours: the rollup report, with where its time went (InfluxDB, JSON, Python; the slowest
  statements with their rows); references: the small fleet's raw report scaled by probes
  (InfluxDB's cost is linear in points; printed as such, not run) and, at
  ``--daily-ref-at`` sizes, the same report from the daily rollups only (run). At
  ``--panels-at`` sizes every Year-board panel is timed against its 1 s target.
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
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import machine
from probefleet.collector import queries, rollups_hist, rollups_queries
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
from probefleet.collector.rollups_daily import HOURS, daily_points, district_points
from probefleet.collector.rollups_monthly import local_month, month_points, whole_months
from probefleet.collector.rollups_spec import HOUR_NS

from tests.collector.report import rollup_fleet as rf
from tests.harness import InfluxDB

START = dt.datetime(2025, 1, 1, tzinfo=rf.VN)
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")  # the report's timezone (UTC+7, as rf.VN)
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


class Timed:
    """The report's InfluxQL client, timing each request: InfluxDB (until the body is read)
    and JSON decoding apart, with the bytes, series and rows each statement returned."""

    def __init__(self, client: fetch.HttpInfluxQL, hide_months: bool = False) -> None:
        self.client = client
        self.hide_months = hide_months  # answer "no monthly rollups": every day from _1d
        self.calls: list[tuple[str, float, float, int, int, int]] = []

    def run(self, text: str) -> list[dict[str, Any]]:
        import json
        import urllib.parse
        import urllib.request

        if self.hide_months and text.startswith(rollups_queries.MONTH_PRESENT.select[:20]):
            return [{"statement_id": i} for i in range(text.count(";") + 1)]
        c = self.client
        form = {"db": c.database, "q": text, "epoch": "s"}
        request = urllib.request.Request(  # noqa: S310 - the harness's loopback InfluxDB
            c.url, data=urllib.parse.urlencode(form).encode(), method="POST"
        )
        t0 = time.perf_counter()
        with c._opener.open(request, timeout=c.timeout_s) as response:
            body = response.read()
        t1 = time.perf_counter()
        results: list[dict[str, Any]] = json.loads(body)["results"]
        t2 = time.perf_counter()
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise RuntimeError(f"InfluxDB refused {text[:200]}: {errors[0]}")
        series = sum(len(r.get("series", [])) for r in results)
        rows = sum(len(x["values"]) for r in results for x in r.get("series", []))
        what = " ".join(text.split())[:70]
        self.calls.append((what, t1 - t0, t2 - t1, len(body), series, rows))
        return results

    def summary(self, total_s: float, top: int = 6) -> None:
        db = sum(c[1] for c in self.calls)
        js = sum(c[2] for c in self.calls)
        say(f"  where the {total_s:.1f} s went: InfluxDB {db:.1f} s, JSON decoding {js:.1f} s, "
            f"Python (sums, figures, rendering) {total_s - db - js:.1f} s; "
            f"{len(self.calls)} requests, {sum(c[5] for c in self.calls):,} rows, "
            f"{sum(c[3] for c in self.calls) / 1e6:.1f} MB")  # fmt: skip
        for what, s_db, s_js, size, series, rows in sorted(self.calls, key=lambda c: -c[1])[:top]:
            say(f"    {s_db:6.2f} s InfluxDB {s_js:5.2f} s JSON {size / 1e6:6.1f} MB "
                f"{series:7,} series {rows:8,} rows  {what}")  # fmt: skip


def report(client: Any, probes: int, days: int, source: gather.Source) -> Report:
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


def timed(client: Any, probes: int, days: int, source: gather.Source,
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


def _months(points: Iterable[Point]) -> Iterator[Point]:
    """The monthly points of one probe's daily points (as the compactor sums them)."""
    by_month: dict[dt.datetime, list[tuple[str, tuple[tuple[str, str], ...], dict[str, Any]]]]
    by_month = {}
    for p in points:
        month = local_month(dt.datetime.fromtimestamp(p.time_ns / 1e9, ZONE), ZONE)[0]
        by_month.setdefault(month, []).append((p.measurement, p.tags, dict(p.fields)))
    for month, days in sorted(by_month.items()):
        if month >= START:
            yield from month_points(days, month)


def small(args: argparse.Namespace, tmp: Path) -> float | None:
    server = InfluxDB(tmp / "small", start_timeout_s=600).start()
    try:
        db = "bench_report"
        _create(server, db, args.shard_duration)
        raw, rolled = Writer(server, db), Writer(server, db)
        folder = Folder(START, args.days)
        t0 = time.perf_counter()
        enrich = rf.enrichment(args.probes)
        for group in _by_probe(rf.fleet(enrich, START, args.days, seed=1)):
            raw.add(p.line() for r in group for p in r.points)
            days = list(folder.probe(group))
            rolled.add(p.line() for p in days)
            rolled.add(p.line() for p in _months(days))
        rolled.add(folder.hour_lines())
        raw.flush()
        rolled.flush()
        say(f"small fleet: {args.probes} probes x {args.days} days: {raw.n:,} raw points, "
            f"{rolled.n:,} daily and monthly rollup points ({raw.n / rolled.n:.0f}x fewer), "
            f"made and written in {time.perf_counter() - t0:.0f} s")  # fmt: skip
        client = fetch.HttpInfluxQL(server.v1_url, database=db, timeout_s=3600)
        ours, rep_r = timed(client, args.probes, args.days, "rollups")
        ref: float | None = None
        if not args.no_raw:
            ref, rep_w = timed(client, args.probes, args.days, "raw")
            n, bad, worst = compare(dataclasses.asdict(rep_w), dataclasses.asdict(rep_r))
            bound = rollups_hist.BOUND * 100
            say(f"  figures compared (rollups vs raw): {n:,}, beyond their bound: {bad}, worst "
                f"median/percentile error {worst * 100:.2f} % (bound {bound:.2f} %)")  # fmt: skip
        _line(f"report {args.probes} probes x {args.days} d (s)", ours, ref,
              "the same report from raw points, run", rep_r.statements)  # fmt: skip
        return ref
    finally:
        server.stop()


Pool = dict[tuple[int, int], list[Point]]


def templates() -> tuple[Pool, Folder]:
    """Daily rollup points of 6 template probes (classes of i % 6) x TEMPLATE_DAYS days."""
    folder = Folder(START, TEMPLATE_DAYS)
    out: Pool = {}
    day0 = int(START.timestamp()) * 10**9
    for group in _by_probe(rf.fleet(rf.enrichment(6), START, TEMPLATE_DAYS, seed=2)):
        c = int(group[0].probe.split("-")[1])
        for p in folder.probe(group):
            k = (p.time_ns - day0) // (24 * HOUR_NS)
            out.setdefault((c, k), []).append(p)
    return out, folder


def _head(p: Point) -> str:
    return p.line().rsplit(" ", 1)[0]


class FleetData:
    """A fleet's daily and monthly rollup points, made from the templates: probe ``j``
    (class ``c = j % 6``) has on day ``d`` the points of template day ``(d + j) % 28`` with
    its own probe, commune and district tags; its month is the sum of those days."""

    def __init__(self, days: int) -> None:
        self.days = days
        self.pool, self.folder = templates()
        self.heads = {key: [_head(p) for p in points] for key, points in self.pool.items()}
        self.month_heads: dict[tuple[int, int, int], list[str]] = {}
        self.months = whole_months(START, START + dt.timedelta(days=days), ZONE)
        self.day0 = int(START.timestamp())

    def month_of(self, c: int, offset: int, m: int) -> list[str]:
        key = (c, offset, m)
        found = self.month_heads.get(key)
        if found is None:
            a, z = self.months[m]
            first = round((a.timestamp() - self.day0) / 86_400)
            last = round((z.timestamp() - self.day0) / 86_400)
            days = [(p.measurement, p.tags, dict(p.fields))
                    for d in range(first, last)
                    for p in self.pool[(c, (d + offset) % TEMPLATE_DAYS)]]  # fmt: skip
            found = self.month_heads[key] = [_head(p) for p in month_points(days, a)]
        return found

    def district_heads(self, fleet: int) -> list[list[str]]:
        """The district rollups of day phase ``r = d % 28`` (the fleet's days repeat every
        28): the fleet's probes' daily points of that day summed by ``district_points``,
        as the compactor sums them."""
        districts = [info.district or "" for info in rf.inventory(fleet).probes.values()]
        out = []
        for r in range(TEMPLATE_DAYS):
            points = []
            for j, district in enumerate(districts):
                for p in self.pool[(j % 6, (r + j) % TEMPLATE_DAYS)]:
                    tags = tuple(sorted({**dict(p.tags), "district": district}.items()))
                    points.append(Point(p.measurement, tags, p.fields, 0))
            out.append([_head(p) for p in district_points(points)])
        return out

    def write(self, out: Writer, fleet: int) -> None:
        inv = rf.inventory(fleet)
        for d, heads in enumerate(self.district_heads(fleet) * -(-self.days // TEMPLATE_DAYS)):
            if d < self.days:
                ts = f" {(self.day0 + d * 86_400) * 10**9}"
                out.add(h + ts for h in heads)
        for j, (probe, info) in enumerate(inv.probes.items()):
            c = j % 6
            subs = (
                (f"probe=dn-{c:04d}", f"probe={probe}"),
                (f"commune=Xã\\ {c * 7 // 8:03d}", "commune=" + info.commune.replace(" ", "\\ ")),
                (f"district=Huyện\\ {c % 11:02d}",
                 "district=" + (info.district or "").replace(" ", "\\ ")),
            )  # fmt: skip

            def mine(heads: list[str], subs: tuple[tuple[str, str], ...] = subs) -> list[str]:
                out = []
                for text in heads:
                    for old, new in subs:
                        text = text.replace(old, new)  # noqa: PLW2901
                    out.append(text)
                return out

            days = [mine(self.heads[(c, k)]) for k in range(TEMPLATE_DAYS)]
            for d in range(self.days):
                ts = f" {(self.day0 + d * 86_400) * 10**9}"
                out.add(h + ts for h in days[(d + j) % TEMPLATE_DAYS])
            for m, (a, _z) in enumerate(self.months):
                ts = f" {round(a.timestamp()) * 10**9}"
                out.add(h + ts for h in mine(self.month_of(c, j % TEMPLATE_DAYS, m)))
        # The province's hours: the templates' sums, scaled to the fleet, for every day.
        for d in range(self.days):
            k = d % TEMPLATE_DAYS
            when = (self.day0 + d * 86_400) * 10**9
            for (t, _tags), bucket in self.folder.hours.items():
                if (t // 10**9 - self.day0) // 86_400 == k:
                    out.add([self.folder.hour_line(bucket, when, fleet / 6)])
        out.flush()


def big(args: argparse.Namespace, tmp: Path, data: FleetData, fleet: int,
        small_raw_s: float | None) -> None:  # fmt: skip
    server = InfluxDB(tmp / f"fleet-{fleet}", start_timeout_s=600).start()
    try:
        db = "bench_fleet"
        _create(server, db, args.shard_duration)
        t0 = time.perf_counter()
        out = Writer(server, db)
        data.write(out, fleet)
        made_s = time.perf_counter() - t0
        say(f"fleet: {fleet} probes x {args.days} days: {out.n:,} daily, district and monthly "
            f"rollup points written directly, as the collector would have written them (from "
            f"{TEMPLATE_DAYS} days of 6 template probes), {made_s:.0f} s")  # fmt: skip
        client = fetch.HttpInfluxQL(server.v1_url, database=db, timeout_s=3600)
        if fleet in args.panels_at:
            panels(client, args, fleet)
        if args.no_report:
            return
        ref = small_raw_s * fleet / args.probes if small_raw_s else None
        mine = Timed(client)
        ours, rep = timed(mine, fleet, args.days, "rollups")
        _line(f"report {fleet} probes x {args.days} d (s)", ours, ref,
              f"raw report scaled from {args.probes} probes, not run", rep.statements)  # fmt: skip
        mine.summary(ours)
        target = 30.0 if fleet <= 200 else 300.0 if fleet <= 3300 else None
        if target is not None:
            say(f"  target: under {target:.0f} s for {200 if target == 30 else 3300} probes")
        if fleet in args.daily_ref_at:
            days_only = Timed(client, hide_months=True)
            theirs, _rep = timed(days_only, fleet, args.days, "rollups")
            _line(f"report {fleet} probes x {args.days} d (s)", ours, theirs,
                  "daily rollups only, same data, run", _rep.statements)  # fmt: skip
            days_only.summary(theirs)
    finally:
        server.stop()


def panels(client: fetch.HttpInfluxQL, args: argparse.Namespace, fleet: int) -> None:
    """Every Year-board panel's InfluxQL over the whole period, as Grafana sends it (every
    variable on All): seconds per panel, against the 1 s target."""
    import re

    from grafana.year_queries import YEAR_QUERIES

    span = queries.time_filter(START, START + dt.timedelta(days=args.days))
    worst = ("", 0.0)
    for q in YEAR_QUERIES:
        text = re.sub(
            r"\$(?!timeFilter)[A-Za-z_]\w*",
            ".*",
            q.grafana(
                ("access",) if q.measurement.startswith("throughput") and not q.fixed_group_by
                else ()
            ),
        )  # fmt: skip
        text = text.replace("$timeFilter", span)
        t0 = time.perf_counter()
        results = client.run(text)
        seconds = time.perf_counter() - t0
        rows = sum(len(x["values"]) for r in results for x in r.get("series", []))
        worst = max(worst, (q.name, seconds), key=lambda kv: kv[1])
        say(f"  panel {q.name:<20} {seconds:6.2f} s  (target 1 s; {fleet} probes, {args.days} "
            f"days, {q.measurement}, {rows:,} rows)")  # fmt: skip
    say(f"  slowest panel: {worst[0]} {worst[1]:.2f} s (target 1 s)")


def _create(server: InfluxDB, db: str, shard_duration: str) -> None:
    if shard_duration:
        server.query_raw(f'CREATE DATABASE "{db}" WITH SHARD DURATION {shard_duration}', post=True)
    else:
        server.create_database(db)


FIGURES: list[Path] = []


def say(text: str) -> None:
    """Print a figure, and append it to ``--figures`` as it comes."""
    print(text, flush=True)
    for path in FIGURES:
        with path.open("a", encoding="utf-8") as f:
            f.write(text + "\n")


def _line(name: str, ours: float, ref: float | None, note: str, statements: int) -> None:
    ref_text = f"{ref:>10.1f}" if ref is not None else f"{'-':>10}"
    ratio = f"{ours / ref:>7.3f}" if ref else f"{'-':>7}"
    say(f"{name:<40} {ours:>9.1f} {ref_text} {ratio}   (ref: {note}; {statements} statements)")


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=12, help="small fleet: raw and rollups")
    parser.add_argument("--fleet", type=_sizes, default=[200],
                        help="big fleets, comma-separated (200,1000,3300): rollups")  # fmt: skip
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--no-raw", action="store_true", help="skip the raw reference report")
    parser.add_argument("--no-report", action="store_true", help="big fleets: panels only")
    parser.add_argument("--panels-at", type=_sizes, default=[1000],
                        help="fleet sizes whose Year panels are timed")  # fmt: skip
    parser.add_argument("--daily-ref-at", type=_sizes, default=[200],
                        help="fleet sizes also reported from the daily rollups only")  # fmt: skip
    parser.add_argument("--figures", type=Path, help="append every figure to this file too")
    parser.add_argument(
        "--shard-duration",
        default="",
        help="the database's shard group duration (e.g. 52w; default InfluxDB's: 7d)",
    )
    args = parser.parse_args()
    if args.figures:
        FIGURES.append(args.figures)
    load = Path("/proc/loadavg").read_text().split()[:3]
    now = dt.datetime.now(dt.UTC)
    say(f"machine: {machine()}; load average {' '.join(load)}; shard duration "
        f"{args.shard_duration or '7d (default)'}; {now:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    say(f"{'benchmark':<40} {'ours':>9} {'reference':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        ref = small(args, Path(tmp)) if args.probes else None
        data = FleetData(args.days) if args.fleet else None
        for fleet in args.fleet:
            assert data is not None
            big(args, Path(tmp), data, fleet, ref)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
