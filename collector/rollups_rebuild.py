"""Rollups recomputed from raw points: for history (rollups switched on later), after a
crash the feeder reported, or after raw points were written around the collector.

Per local day: every raw point of the rolled-up measurements is read back (InfluxQL
``SELECT *``), folded into hourly buckets written as part 0 of each hour (the hour's start;
the live feeder's parts are never at part 0), and the day compacted. Hours that already hold
parts must be emptied first (InfluxDB 1.x/3.x: ``DELETE FROM "<m>_1h" WHERE time …``; 2.x:
the delete API), or they count twice. Then every local month the days touch is summed again
from its stored days (``_1mo``). Usage (``probe-collector rollup rebuild``)::

    for day_start, day_end in days:
        lines = rebuild_day(client, day_start, day_end, targets, peak_hours_utc=...)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from probefleet.collector.inventory import TargetsFile
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.collector.rollups_bucket import Buckets
from probefleet.collector.rollups_daily import (
    InfluxQL,
    _range,
    _series,
    _tags,
    daily_points,
    district_points,
)
from probefleet.collector.rollups_spec import SPECS

if TYPE_CHECKING:
    from probefleet.collector.config import CollectorConfig


def raw_points(client: InfluxQL, measurement: str, start: dt.datetime, end: dt.datetime
               ) -> list[Point]:  # fmt: skip
    text = f'SELECT * FROM "{measurement}" WHERE {_range(start, end)} GROUP BY *'  # noqa: S608
    out: list[Point] = []
    for series in _series(client, text, paged=True):
        tags = _tags(series)
        columns = series["columns"]
        for values in series["values"]:
            row = dict(zip(columns, values, strict=True))
            at = int(row.pop("time"))
            fields: tuple[tuple[str, FieldValue], ...] = tuple(
                (k, v) for k, v in row.items() if isinstance(v, int | float | str | bool)
            )
            out.append(Point(measurement, tags, fields, at if at > 10**12 else at * 10**9))
    return out


def rebuild_day(
    client: InfluxQL,
    start: dt.datetime,
    end: dt.datetime,
    targets: TargetsFile | None,
    *,
    peak_hours_utc: frozenset[int],
) -> list[str]:
    """Hourly (part 0) and daily rollup lines of [start, end) from the raw points."""
    buckets = rebuild_buckets(client, start, end, targets)
    days = daily_points(buckets.values(), start, end, peak_hours_utc=peak_hours_utc)
    days += district_points(days)
    return [b.line() for b in buckets.values()] + [p.line() for p in days]


def rebuild_buckets(
    client: InfluxQL, start: dt.datetime, end: dt.datetime, targets: TargetsFile | None
) -> Buckets:
    """The hourly buckets of [start, end), folded from the raw points."""
    buckets = Buckets(targets)
    for measurement in SPECS:
        for point in raw_points(client, measurement, start, end):
            buckets.add(point)
    return buckets


def _write(url: str, database: str, token: str, lines: list[str]) -> None:
    """Line protocol through the v1-compatible ``/write`` (1.x, 2.x with DBRP, 3.x)."""
    import urllib.parse
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    query = urllib.parse.urlencode({"db": database, "precision": "ns"})
    for first in range(0, len(lines), 5000):
        request = urllib.request.Request(  # noqa: S310 - the configured http(s) URL
            f"{url.rstrip('/')}/write?{query}",
            data="\n".join(lines[first : first + 5000]).encode(),
            method="POST",
            headers={"Authorization": f"Token {token}"} if token else {},
        )
        with opener.open(request, timeout=300) as response:
            response.read()


def run(
    cfg: CollectorConfig,
    *,
    start_text: str,
    end_text: str,
    tz: str = "Asia/Ho_Chi_Minh",
    peak: tuple[int, int] = (19, 23),
    delete: bool = True,
    progress: Callable[[str], None] = print,
) -> int:
    """``probe-collector rollup rebuild --from DAY --to DAY``: each local day's rollups
    emptied (``DELETE``; 2.x: say so and stop) and recomputed from raw points. Exit 0, or 1
    when InfluxDB refused something (the message says what)."""
    from probefleet.collector.inventory import load_targets
    from probefleet.collector.report.errors import QueryFailed
    from probefleet.collector.report.fetch import HttpInfluxQL
    from probefleet.collector.report.run import parse_when
    from probefleet.collector.rollups_compact import local_day, peak_hours_utc
    from probefleet.collector.rollups_daily import DAILY, HOURS, _range, district_of
    from probefleet.collector.rollups_spec import rollup_of

    zone = ZoneInfo(tz)
    start, end = parse_when(start_text, tz, end=False), parse_when(end_text, tz, end=True)
    client = HttpInfluxQL(
        cfg.influxdb.url, database=cfg.influxdb.bucket, token=cfg.influxdb.token, timeout_s=600
    )
    targets = load_targets(Path(cfg.files.targets)) if cfg.files.targets else None
    day = local_day(start.timestamp(), zone)[0]
    while day < end:
        nxt = local_day(day.timestamp(), zone)[1]
        try:
            if delete:
                names = [rollup_of(m) for m in SPECS] + [m + DAILY for m in SPECS] + [HOURS]
                names += [district_of(m) for m in SPECS]
                client.run(
                    ";".join(f'DELETE FROM "{n}" WHERE {_range(day, nxt)}' for n in names)  # noqa: S608
                )
            lines = rebuild_day(
                client, day, nxt, targets, peak_hours_utc=peak_hours_utc(day, *peak)
            )
            _write(cfg.influxdb.url, cfg.influxdb.bucket, cfg.influxdb.token, lines)
        except (QueryFailed, OSError) as exc:
            progress(
                f"rollup rebuild: {day.date()}: {exc} (InfluxDB 2.x: delete the day's "
                "*_1h/*_1d points with `influx delete --predicate '_measurement=\"…\"'` first, "
                "then run with --keep)"
            )
            return 1
        progress(f"rollup rebuild: {day.date()}: {len(lines)} rollup points")
        day = nxt
    return _months(client, cfg, start, end, zone, delete=delete, progress=progress)


def _months(
    client: InfluxQL,
    cfg: CollectorConfig,
    start: dt.datetime,
    end: dt.datetime,
    zone: ZoneInfo,
    *,
    delete: bool,
    progress: Callable[[str], None],
) -> int:
    """Every local month the rebuilt days touch, summed again from its (stored) days."""
    from probefleet.collector.report.errors import QueryFailed
    from probefleet.collector.rollups_daily import _range
    from probefleet.collector.rollups_monthly import compact_month, local_month, monthly_of

    month = local_month(start, zone)
    while month[0] < end:
        a, z = month
        try:
            if delete:
                client.run(";".join(
                    f'DELETE FROM "{monthly_of(m)}" WHERE {_range(a, z)}'  # noqa: S608
                    for m in SPECS))  # fmt: skip
            lines = compact_month(client, a, z)
            _write(cfg.influxdb.url, cfg.influxdb.bucket, cfg.influxdb.token, lines)
        except (QueryFailed, OSError) as exc:
            progress(f"rollup rebuild: month {a.date():%Y-%m}: {exc}")
            return 1
        progress(f"rollup rebuild: month {a.date():%Y-%m}: {len(lines)} monthly points")
        month = local_month(z, zone)
    return 0
