"""Daily rollups, compacted from the hourly ones by InfluxQL (any InfluxDB that answers it).

A local day's ``<measurement>_1d`` point sums its hours' parts (counts, sums, bins; min of
mins, max of maxes) per series; throughput's also carries ``peak_*`` (the hours of the peak
window), health's ``hours_seen`` and ``first_hour_s``. ``throughput_hours_1d`` (tags
province, access, hour_utc) holds the day's completed downloads per hour. Compacting a day
again after late results rewrites the same points with the same timestamp: every field only
grows, so InfluxDB's overwrite leaves the right values. ``<measurement>_district_1d``
(:func:`district_points`) sums a day's series per district for the Year board. Usage::

    lines = compact_day(client, day_start, day_end, peak_hours_utc=frozenset({12, 13, 14, 15}))
"""

# ruff: noqa: S608 - texts from constants and integers only
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any, Final, Protocol

from probefleet.collector.lineproto import Point
from probefleet.collector.rollups_bucket import Bucket
from probefleet.collector.rollups_spec import HOUR_NS, SPECS, SUFFIX, rollup_of

DAILY: Final = "_1d"
HOURS: Final = "throughput_hours_1d"
DISTRICT: Final = "_district_1d"
# The district rollups' tags: the area's, and each kind's own that a Year panel groups or
# filters by (the probe, its interface, server and the like are summed over).
DISTRICT_TAGS: Final[dict[str, tuple[str, ...]]] = {
    "throughput": ("province", "district", "access", "operator", "status", "time_source"),
    "latency": ("province", "district", "access", "operator", "status", "time_source", "target"),
    "service": ("province", "district", "access", "operator", "status", "service"),
    "ipv6": ("province", "district", "access", "operator", "status", "check"),
    "health": ("province", "district"),
}
_SERIES_PER_STATEMENT: Final = 5000


class InfluxQL(Protocol):
    def run(self, text: str) -> list[dict[str, Any]]: ...


def daily_of(measurement: str) -> str:
    return measurement + DAILY


def _ns(when: dt.datetime) -> int:
    return round(when.timestamp()) * 10**9


def _range(start: dt.datetime, end: dt.datetime) -> str:
    return f"time >= {_ns(start)} AND time < {_ns(end)}"


def _series(
    client: InfluxQL, text: str, paged: bool, per_page: int = _SERIES_PER_STATEMENT
) -> Iterator[dict[str, Any]]:
    """Every series of ``text``, ``SLIMIT``-paged when ``paged`` (a day of 10,000 probes)."""
    offset = 0
    while True:
        page = f"{text} SLIMIT {per_page} SOFFSET {offset}" if paged else text
        found = 0
        for result in client.run(page):
            for series in result.get("series", []):
                found += 1
                yield series
        if not paged or found < per_page:
            return
        offset += found


def _tags(series: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in (series.get("tags") or {}).items() if v))


def stored_buckets(client: InfluxQL, measurement: str, start: dt.datetime, end: dt.datetime
                   ) -> Iterator[Bucket]:  # fmt: skip
    """Every stored point of ``measurement`` (a rollup) in [start, end) as a bucket (time
    columns in seconds or nanoseconds, whichever the client asks for)."""
    text = f'SELECT * FROM "{measurement}" WHERE {_range(start, end)} GROUP BY *'
    for series in _series(client, text, paged=True):
        tags = _tags(series)
        columns = series["columns"]
        for values in series["values"]:
            row = dict(zip(columns, values, strict=True))
            at = int(row.pop("time"))
            at_ns = at if at > 10**12 else at * 10**9
            yield Bucket.from_fields(measurement, tags, at_ns - at_ns % HOUR_NS, row)


def compact_day(
    client: InfluxQL, start: dt.datetime, end: dt.datetime, *, peak_hours_utc: frozenset[int]
) -> list[str]:
    """The daily points' lines of [start, end) (one local day), from the hourly parts."""
    return [p.line() for p in compact_points(client, start, end, peak_hours_utc=peak_hours_utc)]


def district_of(kind: str) -> str:
    """``throughput`` -> ``throughput_district_1d``."""
    return kind + DISTRICT


def district_points(days: Iterable[Point]) -> list[Point]:
    """The day's district rollups from its daily points (one day's): per kind, every series
    of a district summed (counts and sums; no bins, no extremes: the Year board reads means
    and shares), so a year's panel reads ~365 points per district instead of per probe.
    Health's also carry ``probes`` (probes that reported that day) for the uptime share;
    only the probe's own health rows (no interface) count."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, float]] = {}
    at: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for point in days:
        kind = point.measurement.removesuffix(DAILY)
        wanted = DISTRICT_TAGS.get(kind)
        if wanted is None or kind + DAILY != point.measurement:
            continue
        tags = dict(point.tags)
        if kind == "health" and tags.get("interface"):
            continue
        key = (district_of(kind), tuple(sorted((t, tags[t]) for t in wanted if tags.get(t))))
        acc = out.get(key)
        if acc is None:
            acc = out[key] = {}
            at[key] = point.time_ns
        for name, value in point.fields:
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if name.endswith(("_min", "_max")) or name in ("first_hour_s", "download_target_mbps"):
                continue
            acc[name] = acc.get(name, 0) + value
        if kind == "health" and "hours_seen" in dict(point.fields):
            acc["probes"] = acc.get("probes", 0) + 1
    return [
        Point(
            measurement,
            tags,
            tuple((k, v if k.endswith("_sum") else round(v)) for k, v in sorted(acc.items())),
            at[(measurement, tags)],
        )
        for (measurement, tags), acc in out.items()
    ]


def compact_points(
    client: InfluxQL, start: dt.datetime, end: dt.datetime, *, peak_hours_utc: frozenset[int]
) -> list[Point]:
    hourly: dict[tuple[str, tuple[tuple[str, str], ...], int], Bucket] = {}
    for measurement in SPECS:
        for part in stored_buckets(client, rollup_of(measurement), start, end):
            key = (part.measurement, part.tags, part.hour_ns)
            found = hourly.get(key)
            if found is None:
                hourly[key] = part
            else:
                found.merge(part)
    days = daily_points(hourly.values(), start, end, peak_hours_utc=peak_hours_utc)
    return days + district_points(days)


def daily_points(
    hourly: Iterable[Bucket],
    start: dt.datetime,
    end: dt.datetime,
    *,
    peak_hours_utc: frozenset[int],
) -> list[Point]:
    """What :func:`compact_day` writes for [start, end), from hourly buckets in memory (one
    per series and hour, parts merged): for ``rollup rebuild`` from raw points and benches."""
    a, b, when = _ns(start), _ns(end), _ns(start)
    days: dict[tuple[str, tuple[tuple[str, str], ...]], Bucket] = {}
    peaks: dict[tuple[str, tuple[tuple[str, str], ...]], Bucket] = {}
    seen: dict[tuple[tuple[str, str], ...], list[int]] = {}
    hours: dict[tuple[tuple[str, str], ...], Bucket] = {}
    for bucket in hourly:
        if not a <= bucket.hour_ns < b:
            continue
        key = (bucket.measurement, bucket.tags)
        day = days.get(key)
        if day is None:
            day = days[key] = Bucket(bucket.measurement, bucket.tags, when)
        day.merge(bucket)
        hour = bucket.hour_ns // HOUR_NS % 24
        if bucket.measurement == rollup_of("throughput"):
            if hour in peak_hours_utc:
                peak = peaks.get(key)
                if peak is None:
                    peak = peaks[key] = Bucket(bucket.measurement, bucket.tags, when)
                peak.merge(bucket)
            tagmap = dict(bucket.tags)
            if tagmap.get("status") == "ok" and tagmap.get("time_source") != "estimated":
                hk = tuple(
                    sorted(
                        (k, v)
                        for k, v in (
                            ("province", tagmap.get("province", "")),
                            ("access", tagmap.get("access", "")),
                            ("hour_utc", str(hour)),
                        )
                        if v
                    )
                )
                by_hour = hours.get(hk)
                if by_hour is None:
                    by_hour = hours[hk] = Bucket(HOURS, hk, when)
                by_hour.merge(bucket)
        if bucket.measurement == rollup_of("health") and bucket.counts.get("uptime_s_n"):
            seen.setdefault(bucket.tags, []).append(bucket.hour_ns // 10**9)
    out: list[Point] = []
    for (measurement, tags), day in days.items():
        fields = day.fields()
        del fields["hour_utc"]
        peak = peaks.get((measurement, tags))
        if peak is not None:
            f = peak.fields()
            for name, value in f.items():
                if name in _PEAK_FIELDS or name.startswith(_PEAK_BINS):
                    fields[f"peak_{name}"] = value
        if measurement == rollup_of("health") and tags in seen:
            fields["hours_seen"] = len(seen[tags])
            fields["first_hour_s"] = min(seen[tags])
        out.append(Point(daily_of(measurement[: -len(SUFFIX)]), tags, tuple(fields.items()), when))
    for tags, bucket in hours.items():
        f = bucket.fields()
        fields = {
            k: v
            for k, v in f.items()
            if k in ("download_mbps_n", "meets_download_target_sum", "download_mbps_hist")
        }
        if fields:
            out.append(Point(HOURS, tags, tuple(fields.items()), when))
    return out


_PEAK_FIELDS: Final = frozenset(
    ("download_mbps_n", "upload_mbps_n", "meets_download_target_n", "meets_download_target_sum")
)
_PEAK_BINS: Final = ("download_mbps_hist", "upload_mbps_hist")
