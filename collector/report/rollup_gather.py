"""The report's figures from the rollups: what a year of raw points would give, at the cost
of one point per series and month (``<kind>_1mo`` for whole local months, ``<kind>_1d`` for
the other days: collector/rollups_queries.py).

Per measurement, one request brings every rollup point of the period (``SELECT *``: InfluxDB
1.x's ``sum()`` costs an iterator per series, field and shard, reading costs far less); the
sums per series and then per area (commune, district, province, operator, each by access
type) are made here, as InfluxDB would make them (:func:`aggregate`), then handed to the
same figures as the raw report's. Counts, sums and shares are exact; medians and percentiles
are read from the histograms (within :data:`rollups_hist.BOUND`, 1.16 %); the README says
which is which. Usage: ``gather(..., source="rollups")`` in :mod:`.gather`.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probefleet.collector import queries, rollups_queries
from probefleet.collector import rollups_hist as hist
from probefleet.collector.report.fetch import InfluxQL, Row, Value
from probefleet.collector.report.model import Band, Hour, Level, ServiceFigures, Speed
from probefleet.collector.rollups_monthly import TARGET_MAX, whole_months
from probefleet.collector.rollups_spec import BANDS

if TYPE_CHECKING:
    from probefleet.collector.report.gather import _Builder

_NO_LIMIT_MBPS = 1_000_000.0
Handler = Callable[[list[Row]], None]
_AREA_TAGS: dict[Level, tuple[str, ...]] = {
    "commune": ("province", "district", "commune"),
    "district": ("province", "district"),
    "province": ("province",),
    "operator": ("operator",),
}
LEVELS: tuple[Level, ...] = ("commune", "district", "province", "operator")


_SUM, _MIN, _MAX, _MINMAX, _HIST, _SKIP = range(6)
_KINDS: dict[str, tuple[int, str]] = {}


def _kind(name: str) -> tuple[int, str]:
    """How a rollup field (or a column InfluxDB already summed, ``sum_…``, ``min_…``,
    ``max_…``) adds up, and its column name (cached: ~40 names, millions of rows)."""
    found = _KINDS.get(name)
    if found is None:
        if name.startswith(("sum_", "min_", "max_")):
            found = ({"sum": _SUM, "min": _MIN, "max": _MAX}[name[:3]], name)
        elif name == "time":
            found = (_SKIP, "")
        elif name.endswith("_hist"):
            found = (_HIST, name[:-5])
        elif name == "download_target_mbps":
            found = (_MINMAX, name)
        elif name == TARGET_MAX:  # a month stored with several targets: their highest
            found = (_MAX, "max_download_target_mbps")
        elif name.endswith("_min") or name == "first_hour_s":
            found = (_MIN, f"min_{name}")
        elif name.endswith("_max"):
            found = (_MAX, f"max_{name}")
        else:
            found = (_SUM, f"sum_{name}")
        _KINDS[name] = found
    return found


@dataclass(frozen=True, slots=True)
class Series(Row):
    """A :class:`Row` of sums (``values``: InfluxDB's column names) with its histograms
    (``hists``: field -> bin -> count), kept apart: most groupings need no bins."""

    hists: dict[str, dict[int, int]]


def per_series(rows: Iterable[Row]) -> list[Series]:
    """Rollup rows (points, or sums per series from InfluxDB) summed per series (all
    their tags), with InfluxDB's column names: ``sum_<f>`` for counts and sums,
    ``min_<f>``/``max_<f>`` for extremes (and the target); the bins of ``<f>_hist`` in
    ``hists[<f>]``. The report's areas are then sums of these (:func:`aggregate`)."""
    groups: dict[tuple[tuple[str, str], ...], tuple[dict[str, Any], dict[str, list[str]]]]
    groups = {}
    kind = _kind
    for row in rows:
        key = tuple(sorted(row.tags.items()))
        found = groups.get(key)
        if found is None:
            found = groups[key] = ({}, {})
        acc, texts = found
        for name, value in row.values.items():
            if value is None:
                continue  # SELECT *: a column of another series
            how, col = kind(name)
            if how == _SUM:
                if value.__class__ is not bool:
                    acc[col] = acc.get(col, 0.0) + value
            elif how == _HIST:
                if value.__class__ is str:
                    texts.setdefault(col, []).append(value)
            elif how == _MIN:
                acc[col] = min(acc.get(col, value), value)
            elif how == _MAX:
                acc[col] = max(acc.get(col, value), value)
            elif how == _MINMAX:
                acc[f"min_{col}"] = min(acc.get(f"min_{col}", value), value)
                acc[f"max_{col}"] = max(acc.get(f"max_{col}", value), value)
    out: list[Series] = []
    for key, (acc, texts) in groups.items():
        hists: dict[str, dict[int, int]] = {}
        for name, parts in texts.items():
            counts = hists[name] = {}
            hist.merge_into(counts, " ".join(parts))
        out.append(Series(dict(key), acc, hists))
    return out


_OPS: dict[str, int] = {}


def _op(column: str) -> int:
    found = _OPS.get(column)
    if found is None:
        found = _OPS[column] = (
            _MIN if column.startswith("min_") else _MAX if column.startswith("max_") else _SUM
        )
    return found


def aggregate(rows: Iterable[Series], by: Sequence[str], *, hists: bool = True) -> list[Series]:
    """:func:`per_series` rows summed per value of the ``by`` tags (same columns); their
    histograms added too unless ``hists`` is False (groupings that need counts only)."""
    groups: dict[tuple[str, ...], tuple[dict[str, Any], dict[str, dict[int, int]]]] = {}
    op = _op
    for row in rows:
        key = tuple(row.tags.get(t, "") for t in by)
        found = groups.get(key)
        if found is None:
            found = groups[key] = ({}, {})
        acc, sums = found
        for col, value in row.values.items():
            if value.__class__ not in (int, float):
                continue
            how = op(col)
            if how == _SUM:
                acc[col] = acc.get(col, 0) + value
            elif how == _MIN:
                acc[col] = min(acc.get(col, value), value)
            else:
                acc[col] = max(acc.get(col, value), value)
        if hists:
            for name, counts in row.hists.items():
                mine = sums.get(name)
                if mine is None:
                    sums[name] = dict(counts)
                    continue
                for i, c in counts.items():
                    mine[i] = mine.get(i, 0) + c
    return [
        Series(dict(zip(by, key, strict=True)), acc, sums) for key, (acc, sums) in groups.items()
    ]


def bins(row: Series, field: str) -> dict[int, int]:
    """The histogram of ``field`` in an :func:`aggregate` row."""
    return row.hists.get(field, {})


def whole_days(start: dt.datetime, end: dt.datetime, tz: str) -> bool:
    """Whether [start, end) is whole local days: the daily rollups answer it exactly."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    return all(t.astimezone(zone).time() == dt.time() for t in (start, end))


def rolled_up(client: InfluxQL, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether the daily rollups hold the period's first and last day (health_1d: every
    probe reports health, so a rolled-up day has points there)."""
    for a in (start, end - dt.timedelta(days=1)):
        text = (
            'SELECT count("n") FROM "health_1d" WHERE '  # noqa: S608 - times only
            + queries.time_filter(a, a + dt.timedelta(days=1))
        )
        results = client.run(text)
        if not any(r.get("series") for r in results):
            return False
    return True


def _trusted_ok(rows: list[Series]) -> list[Series]:
    return [
        r for r in rows if r.tags.get("status") == "ok" and r.tags.get("time_source") != "estimated"
    ]


class RollupPlan:
    """Adds the rollup statements to a :class:`gather._Builder` (``b``): per kind, one
    statement per run of whole local months (``_1mo``) and one per stretch of other days
    (``_1d``), sent in one request (the fetcher joins them with ``;``)."""

    def __init__(self, b: _Builder) -> None:
        self.b = b
        self.latency_targets: list[str] | None = None
        self.ranges: list[tuple[dt.datetime, dt.datetime, bool]] = []

    def spans(self, months: list[tuple[dt.datetime, dt.datetime]]
              ) -> list[tuple[dt.datetime, dt.datetime, bool]]:  # fmt: skip
        """[start, end) as (a, b, monthly): ``months`` (compacted whole months) and the
        stretches of days between them."""
        out: list[tuple[dt.datetime, dt.datetime, bool]] = []
        at = self.b.start
        for a, z in sorted(months):
            if at < a:
                out.append((at, a, False))
            if out and out[-1][2] and out[-1][1] == a:  # one statement for months in a row
                out[-1] = (out[-1][0], z, True)
            else:
                out.append((a, z, True))
            at = z
        if at < self.b.end:
            out.append((at, self.b.end, False))
        return out

    def _add(self, kind: str, what: str, handle: Handler, **kw: Any) -> None:
        b = self.b
        first = rollups_queries.points_query(kind, monthly=self.ranges[0][2]).name
        b.add(first, what, handle, catalogue=rollups_queries.POINTS, **kw)
        b.jobs[-1].texts = [
            rollups_queries.points_query(kind, monthly=monthly).render(
                start=a, end=z, tz=b.settings.timezone, **kw
            )
            for a, z, monthly in self.ranges
        ]

    def _hours(self, name: str, what: str, handle: Handler, **kw: Any) -> None:
        self.b.add(name, what, handle, catalogue=queries.ROLLUPS, **kw)

    def plan(
        self,
        latency_targets: list[str] | None,
        months: list[tuple[dt.datetime, dt.datetime]] | None = None,
    ) -> None:
        """``months``: the whole local months whose monthly rollups are there (default:
        none, every day from the daily rollups)."""
        s = self.b.settings
        self.latency_targets = latency_targets
        self.ranges = self.spans(months or [])
        self._add("throughput", "all areas", self._throughput)
        if latency_targets is None or latency_targets or s.data_network_targets:
            self._add("latency", "all areas", self._latency)
        self._add("service", "all areas", self._services, filters={"service": s.services or None})
        self._add("ipv6", "by probe", self._ipv6)
        self._add("health", "by probe", self._hours_seen)
        for access in self.b.target_mbps:
            self._hours("by_hour_rollup", access, self._by_hour(access), filters={"access": access})

    # -- throughput ----------------------------------------------------------------------

    def _throughput(self, points: list[Row]) -> None:
        b = self.b
        rows = per_series(points)
        ok = _trusted_ok(rows)
        for level in LEVELS:
            group = (*_AREA_TAGS[level], "access")
            self._speed(level, aggregate(ok, group))
            for row in aggregate(rows, (*group, "status"), hists=False):
                figures = b._access(level, row)
                status = row.tags.get("status", "")
                if figures is not None and status in ("ok", "failed", "skipped"):
                    setattr(figures, f"runs_{status}", row.count("sum_n"))
        self._exclusions(aggregate(rows, ("status", "time_source"), hists=False))
        servers = []
        for row in aggregate(ok, ("method", "server", "ip_version"), hists=False):

            def mean(field: str, row: Row = row) -> float | None:
                n = row.num(f"sum_{field}_n")
                total = row.num(f"sum_{field}_sum")
                return total / n if n and total is not None else None

            values: dict[str, Value] = {"tests": row.count("sum_download_mbps_n")}
            for field in ("download_streams", "upload_streams"):
                values[field] = mean(field)
            for field in ("download_duration_s", "upload_duration_s"):
                values[field] = mean(field)
            servers.append(Row(row.tags, values))
        b._servers(servers)
        for access, target in b.target_mbps.items():
            mine = [r for r in ok if r.tags.get("access") == access and r.tags.get("province")]
            self._bands(access, target, aggregate(mine, ("access",)))

    def _speed(self, level: Level, rows: list[Series]) -> None:
        for row in rows:
            figures = self.b._access(level, row)
            if figures is None:
                continue
            for direction in ("download", "upload"):
                speed: Speed = getattr(figures, direction)
                field = f"{direction}_mbps"
                lo, hi = row.num(f"min_{field}_min"), row.num(f"max_{field}_max")
                found = bins(row, field)
                speed.median_mbps = hist.median(found, lo, hi)
                speed.p10_mbps = hist.percentile(found, 10, lo, hi)
                speed.tests = row.count(f"sum_{field}_n")
                speed.tests_with_target = row.count(f"sum_meets_{direction}_target_n")
                speed.tests_at_target = row.count(f"sum_meets_{direction}_target_sum")
                peak = bins(row, f"peak_{field}")
                speed.peak_median_mbps = hist.median(peak, lo, hi)
                speed.peak_p10_mbps = hist.percentile(peak, 10, lo, hi)
                speed.peak_tests = row.count(f"sum_peak_{field}_n")
                if direction == "download":
                    speed.peak_tests_at_target = row.count("sum_peak_meets_download_target_sum")

    def _exclusions(self, rows: list[Series]) -> None:
        ex = self.b.exclusions
        for row in rows:
            status, source = row.tags.get("status", ""), row.tags.get("time_source", "")
            runs = row.count("sum_n")
            ex.runs_total += runs
            if status == "skipped":
                ex.skipped += runs
                ex.skipped_busy += row.count("sum_detail_max_cpu_pct_n")
                ex.skipped_cross_traffic += row.count("sum_skip_cross_n")
            elif status == "failed":
                ex.failed += runs
            ex.unsynced += row.count("sum_unsynced_n")
            if source in ("rebased", "estimated"):
                setattr(ex, source, getattr(ex, source) + runs)

    def _bands(self, access: str, target: float, rows: list[Series]) -> None:
        b = self.b
        b.bands[access] = bands = [Band(low, high, 0) for low, high in BANDS]
        for row in rows:
            if row.num("min_download_target_mbps") == target == row.num("max_download_target_mbps"):
                b.bands_exact.add(access)
                for k, band in enumerate(bands):
                    band.tests = row.count(f"sum_download_band{k}_n")
            else:  # stored with another target: the bins decide (within a bin at each edge)
                found = bins(row, "download_mbps")
                for band in bands:
                    low = band.low_ratio * target
                    high = band.high_ratio * target if band.high_ratio else _NO_LIMIT_MBPS
                    band.tests = sum(c for i, c in found.items() if low <= hist.value_of(i) < high)

    # -- latency, services, IPv6, uptime -------------------------------------------------

    def _latency(self, points: list[Row]) -> None:
        b, wanted = self.b, self.latency_targets
        rows = per_series(points)
        trusted = [
            r
            for r in rows
            if r.tags.get("time_source") != "estimated"
            and (wanted is None or r.tags.get("target") in wanted)
        ]
        if wanted is None or wanted:
            for level in LEVELS:
                for row in aggregate(trusted, (*_AREA_TAGS[level], "access")):
                    figures = b._access(level, row)
                    if figures is None:
                        continue
                    lat = figures.latency
                    lat.rtt_median_ms = hist.median(
                        bins(row, "rtt_median_ms"),
                        row.num("min_rtt_median_ms_min"),
                        row.num("max_rtt_median_ms_max"),
                    )
                    lat.jitter_ms = hist.median(
                        bins(row, "jitter_ms"),
                        row.num("min_jitter_ms_min"),
                        row.num("max_jitter_ms_max"),
                    )
                    sent, received = row.num("sum_sent_sum"), row.num("sum_received_sum")
                    lost = 1 - received / sent if sent and received is not None else None
                    lat.loss_pct = 100 * lost if lost is not None else None
                    lat.runs = row.count("sum_sent_n")
        network = set(b.settings.data_network_targets)
        if not network:
            return
        mine = [r for r in rows if r.tags.get("target") in network]
        for level in LEVELS[:3]:
            for row in aggregate(mine, _AREA_TAGS[level]):
                area = b.area(level, b._key(level, row))
                area.data_network_runs = row.count("sum_sent_n")
                area.data_network_answered = row.count("sum_rtt_min_ms_n")
                area.data_network_rtt_median_ms = hist.median(
                    bins(row, "rtt_median_ms"),
                    row.num("min_rtt_median_ms_min"),
                    row.num("max_rtt_median_ms_max"),
                )

    def _services(self, points: list[Row]) -> None:
        b = self.b
        rows = per_series(points)
        for level in LEVELS[:3]:
            for row in aggregate(rows, (*_AREA_TAGS[level], "service")):
                area = b.area(level, b._key(level, row))
                checks = row.count("sum_up_01_n")
                up = row.num("sum_up_01_sum")
                area.services[row.tags.get("service", "")] = ServiceFigures(
                    up / checks if checks and up is not None else None,
                    checks,
                    hist.median(
                        bins(row, "total_ms"),
                        row.num("min_total_ms_min"),
                        row.num("max_total_ms_max"),
                    ),
                )

    def _ipv6(self, points: list[Row]) -> None:
        shaped = []
        for row in aggregate(per_series(points), (*_AREA_TAGS["commune"], "probe"), hists=False):
            runs, works = row.count("sum_works_01_n"), row.num("sum_works_01_sum")
            share = works / runs if runs and works is not None else None
            shaped.append(Row(row.tags, {"works_share": share, "runs": runs}))
        self.b._ipv6(shaped)

    def _hours_seen(self, points: list[Row]) -> None:
        found = aggregate(per_series(points), (*_AREA_TAGS["commune"], "probe"), hists=False)
        self.b._hours_seen([Row(r.tags, {"hours_seen": r.count("sum_hours_seen")}) for r in found])
        self.b._first_report(
            [
                Row(r.tags, {"time": r.num("min_first_hour_s")})
                for r in found
                if r.num("min_first_hour_s")
            ]
        )

    def _by_hour(self, access: str) -> Handler:
        """Every (day, hour) point: that hour's median from its bins, then per hour of the
        day the median of those medians, as the raw report does."""

        def handle(rows: list[Row]) -> None:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(self.b.settings.timezone)
            by_local: dict[int, list[Row]] = {}
            for row in rows:
                day, utc_hour = row.num("time"), row.values.get("hour_utc")
                if not row.values.get("province") or day is None or utc_hour is None:
                    continue
                when = day + 3600 * ((int(str(utc_hour)) - int(day) // 3600) % 24)
                by_local.setdefault(dt.datetime.fromtimestamp(when, zone).hour, []).append(row)
            hours: list[Hour] = []
            for hour in range(24):
                found = by_local.get(hour, [])
                medians = []
                for r in found:
                    text = r.values.get("download_mbps_hist")
                    m = hist.median(hist.decode(text)) if isinstance(text, str) else None
                    if m is not None:
                        medians.append(m)
                hours.append(
                    Hour(
                        hour,
                        statistics.median(medians) if medians else None,
                        sum(r.count("download_mbps_n") for r in found),
                        sum(r.count("meets_download_target_sum") for r in found),
                    )
                )
            self.b.rollup_hours[access] = hours

        return handle


def compacted_months(
    client: InfluxQL, start: dt.datetime, end: dt.datetime, tz: str
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The whole local months of [start, end) that have monthly rollups (one request)."""
    from zoneinfo import ZoneInfo

    months = whole_months(start, end, ZoneInfo(tz))
    if not months:
        return []
    q = rollups_queries.MONTH_PRESENT
    results = client.run(";".join(q.render(start=a, end=z, tz=tz) for a, z in months))
    return [m for m, r in zip(months, results, strict=True) if r.get("series")]
