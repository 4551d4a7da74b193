"""The one catalogue of InfluxQL queries: the annual report runs them, Grafana panels show them.

Every query has a stable ``name``, a docstring-like ``doc`` saying what each returned column
is, and Grafana-style placeholders, so one text serves both:

- ``$timeFilter`` — the period (Grafana fills it; the report renders
  ``time >= '…' AND time < '…'``);
- ``$district``, ``$commune``, ``$access``, ``$operator``, ``$probe``, ``$service``,
  ``$target`` — tag filters written as anchored regexes (``"commune" =~ /^$commune$/``), the
  form Grafana fills from (multi-value) template variables. Give those variables an
  ``allValue`` of ``.*`` so that "All" also matches points without the tag (``district`` is
  optional);
- query-specific numbers (``$lowMbps``, ``$highMbps``, ``$timeSource``) as placeholders too.

Usage::

    from probefleet.collector import queries
    q = queries.CATALOGUE["download_summary"]
    q.render(start=..., end=..., group_by=("commune", "access"))   # the report: concrete text
    q.grafana(group_by=("commune",))                              # a dashboard panel's text

``GROUP BY`` is not a placeholder: the caller names the tags (plus the query's own fixed ones,
e.g. ``status``), so a panel can group by commune and the report by commune *and* access
type (the plan's targets differ per access type). Importing this module has no side effects.
"""

# The texts are built from constants of this module only; values reach them through render(),
# which quotes them (regex_literal, time_filter): S608 does not apply.
# ruff: noqa: S608
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

# Peak hours as SamKnows/Ofcom report them (7-11 pm), in the province's own time.
LOCAL_TZ: Final = "Asia/Ho_Chi_Minh"
PEAK_START_HOUR: Final = 19
PEAK_END_HOUR: Final = 23  # exclusive: 19:00-22:59

# Tags the report and the dashboards may group by or filter on.
FILTER_TAGS: Final = ("district", "commune", "access", "operator", "probe")
GROUP_TAGS: Final = (
    "province",
    "district",
    "commune",
    "access",
    "operator",
    "probe",
    "status",
    "server",
    "method",
    "ip_version",
    "service",
    "target",
    "time_source",  # a tag of the rollups only
    "hour_utc",  # throughput_hours_1d
)

# Points the collector wrote at a time it had to guess (``time_source = estimated``, see the
# collector README, *Clocks*) are kept out of the throughput statistics: their hour of day,
# hence peak and hour-of-day figures, would be wrong.
_TRUSTED: Final = "\"time_source\" != 'estimated'"
_AREA: Final = (
    '"district" =~ /^$district$/ AND "commune" =~ /^$commune$/ '
    'AND "access" =~ /^$access$/ AND "operator" =~ /^$operator$/'
)
_OK: Final = "\"status\" = 'ok'"


@dataclass(frozen=True, slots=True)
class Query:
    """One InfluxQL SELECT with placeholders; ``render`` and ``grafana`` give its text."""

    name: str
    doc: str
    measurement: str
    # "SELECT … FROM … WHERE …" without GROUP BY. ``$source`` (subqueries) is replaced by
    # ``source`` rendered with the same group-by tags.
    select: str
    source: str | None = None
    source_bucket: str | None = None  # the subquery's GROUP BY time(…)
    # Tags always grouped by (before the caller's), e.g. ("status",).
    fixed_group_by: tuple[str, ...] = ()
    # Time buckets: the report's interval, and the Grafana form's ($__interval or the same).
    bucket: str | None = None
    grafana_bucket: str | None = None
    local_time: bool = False  # tz(LOCAL_TZ): buckets on the province's clock
    # Report-only queries need more than one time range (peak windows of every day):
    # Grafana's $timeFilter cannot say that.
    grafana_ok: bool = True
    params: Mapping[str, str] = field(default_factory=dict)  # extra placeholders' defaults
    columns: tuple[str, ...] = ()

    def placeholders(self) -> list[str]:
        """The ``$names`` in the text (for the dashboard generator's variables)."""
        text = self.select + (self.source or "")
        return sorted(set(re.findall(r"\$([A-Za-z_]\w*)", text)) - {"source"})

    def _group_clause(self, group_by: Sequence[str], bucket: str | None, tz: str | None) -> str:
        for tag in group_by:
            if tag not in GROUP_TAGS:
                raise ValueError(f"query {self.name}: cannot group by {tag!r}")
        tags = [*self.fixed_group_by, *(t for t in group_by if t not in self.fixed_group_by)]
        parts = ([f"time({bucket})"] if bucket else []) + [quote_ident(t) for t in tags]
        clause = f" GROUP BY {', '.join(parts)}" if parts else ""
        if bucket:
            clause += " fill(none)"
        if self.local_time and tz is not None:
            clause += f" tz('{tz}')"
        return clause

    def _text(
        self, group_by: Sequence[str], bucket: str | None, tz: str, time_filters: Sequence[str]
    ) -> str:
        select = self.select
        if self.source is not None:
            # The subqueries keep the tags grouped by, so the outer query can group by them;
            # one subquery per time range, their rows merged by the outer aggregate.
            inner = self.source + self._group_clause(group_by, self.source_bucket, None)
            sources = ", ".join(f"({inner.replace('$timeFilter', f)})" for f in time_filters)
            select = select.replace("$source", sources)
        return select + self._group_clause(group_by, bucket, tz)

    def grafana(self, group_by: Sequence[str] = (), *, tz: str = LOCAL_TZ) -> str:
        """The text for a Grafana panel: placeholders left for Grafana to fill.

        Query-specific placeholders (``$lowMbps`` …) keep their defaults' names: give the
        dashboard a constant variable of that name, or substitute them yourself."""
        if not self.grafana_ok:
            raise ValueError(f"query {self.name} is report-only (several time ranges)")
        return self._text(group_by, self.grafana_bucket or self.bucket, tz, ["$timeFilter"])

    def render(
        self,
        *,
        start: dt.datetime,
        end: dt.datetime,
        group_by: Sequence[str] = (),
        filters: Mapping[str, str | Sequence[str] | None] | None = None,
        params: Mapping[str, str | float] | None = None,
        windows: Sequence[tuple[dt.datetime, dt.datetime]] | None = None,
        tz: str = LOCAL_TZ,
    ) -> str:
        """Concrete InfluxQL for the report: ``filters`` maps tag placeholders to an exact
        value or a list of them (None or absent = any, including none); ``windows`` are the
        time ranges of a report-only query (default: the whole period)."""
        if (end - start).total_seconds() <= 0:
            raise ValueError(f"query {self.name}: empty period {start} .. {end}")
        ranges = windows if windows is not None else [(start, end)]
        if not ranges:
            raise ValueError(f"query {self.name}: no time windows")
        text = self._text(group_by, self.bucket, tz, [time_filter(a, b) for a, b in ranges])
        text = text.replace("$timeFilter", time_filter(start, end))
        values: dict[str, str] = {**self.params}
        for key, value in (params or {}).items():
            values[key] = _number(value) if isinstance(value, float | int) else str(value)
        for tag in ("district", "commune", "access", "operator", "probe", "service", "target"):
            wanted = (filters or {}).get(tag)
            if wanted is None:
                values[tag] = ".*"
            elif isinstance(wanted, str):
                values[tag] = regex_literal(wanted)
            elif wanted:
                values[tag] = "(" + "|".join(regex_literal(w) for w in wanted) + ")"
            else:
                raise ValueError(f"query {self.name}: an empty list of {tag} values")
        # Longest names first, so $timeSource is not eaten by a $time….
        for key in sorted(values, key=len, reverse=True):
            text = text.replace(f"${key}", values[key])
        left = re.findall(r"\$([A-Za-z_]\w*)", text)
        if left:
            raise ValueError(f"query {self.name}: no value for ${', $'.join(sorted(set(left)))}")
        return text


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_REGEX_SPECIAL: Final = frozenset(r"\.+*?()|[]{}^$/")


def regex_literal(value: str) -> str:
    """``value`` matched literally inside InfluxQL's ``/…/`` (Go RE2 syntax): only RE2's
    punctuation is escaped — RE2 refuses escapes of letters and spaces."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in value)


def _rfc3339(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when}: give a timezone")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_filter(start: dt.datetime, end: dt.datetime) -> str:
    """The report's ``$timeFilter``: [start, end)."""
    return f"time >= '{_rfc3339(start)}' AND time < '{_rfc3339(end)}'"


def _number(value: float) -> str:
    """A plain decimal: InfluxQL reads ``1e9`` as a malformed duration."""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.9f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _q(query: Query) -> tuple[str, Query]:
    return query.name, query


_THR = f'FROM "throughput" WHERE $timeFilter AND {_OK} AND {_TRUSTED} AND {_AREA}'

CATALOGUE: Final[dict[str, Query]] = dict(
    [
        _q(
            Query(
                name="download_summary",
                doc="Download of completed tests (primary method: LibreSpeed/HTTP engine): "
                "median_mbps and p10_mbps (InfluxDB's median and nearest-rank 10th "
                "percentile), tests, tests_with_target (tests whose access type has a "
                "target), tests_at_target (download >= target) and share_at_target (0-1).",
                measurement="throughput",
                select='SELECT median("download_mbps") AS "median_mbps", '
                'percentile("download_mbps", 10) AS "p10_mbps", '
                'count("download_mbps") AS "tests", '
                'count("meets_download_target") AS "tests_with_target", '
                'sum("meets_download_target") AS "tests_at_target", '
                'mean("meets_download_target") AS "share_at_target" ' + _THR,
                columns=(
                    "median_mbps",
                    "p10_mbps",
                    "tests",
                    "tests_with_target",
                    "tests_at_target",
                    "share_at_target",
                ),
            )
        ),
        _q(
            Query(
                name="upload_summary",
                doc="Upload of completed tests: median_mbps, p10_mbps, tests; tests_with_target,"
                " tests_at_target and share_at_target only where the targets file sets an "
                "upload target (else null).",
                measurement="throughput",
                select='SELECT median("upload_mbps") AS "median_mbps", '
                'percentile("upload_mbps", 10) AS "p10_mbps", '
                'count("upload_mbps") AS "tests", '
                'count("meets_upload_target") AS "tests_with_target", '
                'sum("meets_upload_target") AS "tests_at_target", '
                'mean("meets_upload_target") AS "share_at_target" ' + _THR,
                columns=(
                    "median_mbps",
                    "p10_mbps",
                    "tests",
                    "tests_with_target",
                    "tests_at_target",
                    "share_at_target",
                ),
            )
        ),
        _q(
            Query(
                name="download_by_hour",
                doc="Per hour on the province's clock (tz Asia/Ho_Chi_Minh): median_mbps, "
                "tests and tests_at_target of the downloads in that hour. The report folds "
                "the hours of a year into 24 hours of the day; Grafana plots it over time.",
                measurement="throughput",
                select='SELECT median("download_mbps") AS "median_mbps", '
                'count("download_mbps") AS "tests", '
                'sum("meets_download_target") AS "tests_at_target" ' + _THR,
                bucket="1h",
                grafana_bucket="$__interval",
                local_time=True,
                columns=("median_mbps", "tests", "tests_at_target"),
            )
        ),
        _q(
            Query(
                name="throughput_peak_values",
                doc="The completed tests of one peak window (19:00-23:00 province time of "
                "one day; the report asks one statement per day of the period): raw "
                "download_mbps, upload_mbps and meets_download_target with their tags. The "
                "report takes medians and nearest-rank percentiles of these values the "
                "way InfluxDB's median() and percentile() do. Report-only: InfluxQL has no "
                "OR of time ranges, and a union of one subquery per day is slow (seconds "
                "per day on a year of data); dashboards show download_by_hour instead.",
                measurement="throughput",
                select='SELECT "download_mbps", "upload_mbps", "meets_download_target" ' + _THR,
                fixed_group_by=("province", "district", "commune", "access", "operator"),
                grafana_ok=False,
                columns=("download_mbps", "upload_mbps", "meets_download_target"),
            )
        ),
        _q(
            Query(
                name="download_band",
                doc="tests: completed downloads with $lowMbps <= download_mbps < $highMbps "
                "(the report asks one band of its distribution chart per statement).",
                measurement="throughput",
                select='SELECT count("download_mbps") AS "tests" '
                + _THR
                + ' AND "download_mbps" >= $lowMbps AND "download_mbps" < $highMbps',
                params={"lowMbps": "0", "highMbps": "1000000"},
                columns=("tests",),
            )
        ),
        _q(
            Query(
                name="throughput_runs",
                doc="runs: throughput results per status (ok, failed, skipped), whatever "
                "their timestamp's source — the test counts.",
                measurement="throughput",
                select='SELECT count("seq") AS "runs" FROM "throughput" '
                "WHERE $timeFilter AND " + _AREA,
                fixed_group_by=("status",),
                columns=("runs",),
            )
        ),
        _q(
            Query(
                name="throughput_skips",
                doc="skipped: throughput runs skipped; skipped_busy: of them, skipped by the "
                "busy-line gate (cross-traffic or CPU, the gate's detail_max_cpu_pct is "
                "present); skipped_cross_traffic: of them, cross-traffic above the limit.",
                measurement="throughput",
                select='SELECT count("seq") AS "skipped", '
                'count("detail_max_cpu_pct") AS "skipped_busy" FROM "throughput" '
                "WHERE $timeFilter AND \"status\" = 'skipped' AND " + _AREA,
                columns=("skipped", "skipped_busy"),
            )
        ),
        _q(
            Query(
                name="throughput_skips_cross_traffic",
                doc="skipped_cross_traffic: throughput runs skipped because the line carried "
                "more than the gate's limit of other traffic (the value that blocked it is "
                "in detail_cross_traffic_bytes_per_s).",
                measurement="throughput",
                select='SELECT count("seq") AS "skipped_cross_traffic" FROM "throughput" '
                "WHERE $timeFilter AND \"status\" = 'skipped' AND "
                '"detail_cross_traffic_bytes_per_s" > "detail_max_cross_traffic_bytes_per_s" '
                "AND " + _AREA,
                columns=("skipped_cross_traffic",),
            )
        ),
        _q(
            Query(
                name="throughput_clock",
                doc="results: throughput results whose timestamp came from $timeSource "
                "(probe, rebased: the probe's clock was not synchronised and the time was "
                "re-based on its boot, estimated: guessed from the arrival — excluded from "
                "the statistics).",
                measurement="throughput",
                select='SELECT count("seq") AS "results" FROM "throughput" '
                "WHERE $timeFilter AND \"time_source\" = '$timeSource' AND " + _AREA,
                params={"timeSource": "estimated"},
                columns=("results",),
            )
        ),
        _q(
            Query(
                name="throughput_unsynced",
                doc="results: throughput results measured while the probe's clock was not "
                "synchronised (clock_synced = false), whatever became of their timestamp.",
                measurement="throughput",
                select='SELECT count("seq") AS "results" FROM "throughput" '
                'WHERE $timeFilter AND "clock_synced" = false AND ' + _AREA,
                columns=("results",),
            )
        ),
        _q(
            Query(
                name="throughput_method",
                doc="How the completed tests were made, per method, server and IP version: "
                "tests, and the mean streams and durations (s) of each direction (means, not "
                "medians: four sorts of a year of tests cost InfluxDB ~50 s).",
                measurement="throughput",
                select='SELECT count("download_mbps") AS "tests", '
                'mean("download_streams") AS "download_streams", '
                'mean("upload_streams") AS "upload_streams", '
                'mean("download_duration_s") AS "download_duration_s", '
                'mean("upload_duration_s") AS "upload_duration_s" ' + _THR,
                fixed_group_by=("method", "server", "ip_version"),
                columns=(
                    "tests",
                    "download_streams",
                    "upload_streams",
                    "download_duration_s",
                    "upload_duration_s",
                ),
            )
        ),
        _q(
            Query(
                name="latency_summary",
                doc="Latency runs to targets matching $target: rtt_median_ms (median of the "
                "runs' medians), jitter_ms (median), loss_pct (lost echoes / sent, %), "
                "runs, runs_answered (at least one echo came back).",
                measurement="latency",
                select='SELECT median("rtt_median_ms") AS "rtt_median_ms", '
                'median("jitter_ms") AS "jitter_ms", '
                '100 * (1 - sum("received") / sum("sent")) AS "loss_pct", '
                'count("sent") AS "runs", count("rtt_min_ms") AS "runs_answered" '
                f'FROM "latency" WHERE $timeFilter AND {_OK} AND {_TRUSTED} AND {_AREA} '
                'AND "target" =~ /^$target$/',
                columns=("rtt_median_ms", "jitter_ms", "loss_pct", "runs", "runs_answered"),
            )
        ),
        _q(
            Query(
                name="data_network_reachability",
                doc="The provincial data network (targets matching $target, e.g. the "
                "provincial data centre's address on it): runs, runs_answered, "
                "reachable_share (0-1) and rtt_median_ms.",
                measurement="latency",
                select='SELECT count("sent") AS "runs", count("rtt_min_ms") AS "runs_answered", '
                'count("rtt_min_ms") / count("sent") AS "reachable_share", '
                'median("rtt_median_ms") AS "rtt_median_ms" '
                f'FROM "latency" WHERE $timeFilter AND {_OK} AND {_AREA} '
                'AND "target" =~ /^$target$/',
                columns=("runs", "runs_answered", "reachable_share", "rtt_median_ms"),
            )
        ),
        _q(
            Query(
                name="service_availability",
                doc="Provincial services matching $service, per service: availability "
                "(share of checks up, 0-1), checks, total_median_ms (median time of a "
                "whole check).",
                measurement="service",
                select='SELECT mean("up_01") AS "availability", count("up_01") AS "checks", '
                'median("total_ms") AS "total_median_ms" '
                f'FROM "service" WHERE $timeFilter AND {_OK} AND {_AREA} '
                'AND "service" =~ /^$service$/',
                fixed_group_by=("service",),
                columns=("availability", "checks", "total_median_ms"),
            )
        ),
        _q(
            Query(
                name="ipv6_readiness",
                doc="IPv6 summary rows: capable_share (global address and default route) "
                "and works_share (IPv6 works end to end), 0-1, and runs.",
                measurement="ipv6",
                select='SELECT mean("capable_01") AS "capable_share", '
                'mean("works_01") AS "works_share", count("works_01") AS "runs" '
                f'FROM "ipv6" WHERE $timeFilter AND {_OK} AND {_AREA} AND "check" = \'\'',
                columns=("capable_share", "works_share", "runs"),
            )
        ),
        _q(
            Query(
                name="probe_hours_seen",
                doc="hours_seen: hours (province clock) in which the probe sent at least "
                "one health report; group by probe. Uptime = hours_seen / hours from its "
                "first report (probe_first_report) to the end of the period.",
                measurement="health",
                select='SELECT count("reports") AS "hours_seen" FROM $source',
                source='SELECT count("uptime_s") AS "reports" FROM "health" '
                "WHERE $timeFilter AND \"interface\" = '' AND "
                '"district" =~ /^$district$/ AND "commune" =~ /^$commune$/ '
                'AND "probe" =~ /^$probe$/',
                source_bucket="1h",
                columns=("hours_seen",),
            )
        ),
        _q(
            Query(
                name="probe_first_report",
                doc="The time column is the probe's first health report in the period; "
                "uptime_s is its uptime then. Group by probe.",
                measurement="health",
                select='SELECT first("uptime_s") AS "uptime_s" FROM "health" '
                "WHERE $timeFilter AND \"interface\" = '' AND "
                '"district" =~ /^$district$/ AND "commune" =~ /^$commune$/ '
                'AND "probe" =~ /^$probe$/',
                columns=("uptime_s",),
            )
        ),
    ]
)


def grafana_queries() -> dict[str, Query]:
    """The queries a dashboard can show (``grafana_ok``)."""
    return {name: q for name, q in CATALOGUE.items() if q.grafana_ok}


def peak_windows(
    start: dt.datetime,
    end: dt.datetime,
    *,
    tz: str = LOCAL_TZ,
    start_hour: int = PEAK_START_HOUR,
    end_hour: int = PEAK_END_HOUR,
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Each day's peak window [start_hour, end_hour) on the ``tz`` clock, clipped to
    [start, end), as UTC datetimes: the time ranges of the ``*_peak`` queries."""
    from zoneinfo import ZoneInfo

    if not 0 <= start_hour < end_hour <= 24:
        raise ValueError(f"peak hours {start_hour}-{end_hour}: need 0 <= start < end <= 24")
    zone = ZoneInfo(tz)
    day = start.astimezone(zone).date() - dt.timedelta(days=1)
    last = end.astimezone(zone).date()
    out: list[tuple[dt.datetime, dt.datetime]] = []
    while day <= last:
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
        a = (midnight + dt.timedelta(hours=start_hour)).astimezone(dt.UTC)
        b = (midnight + dt.timedelta(hours=end_hour)).astimezone(dt.UTC)
        a, b = max(a, start), min(b, end)
        if a < b:
            out.append((a, b))
        day += dt.timedelta(days=1)
    return out


# -- rollups ---------------------------------------------------------------------------------
# The report's figures from the daily rollups (collector/rollups_*.py; fields in
# rollups_spec): every point of the period, one per series and day, all tags as series
# tags. Every number is a count, a sum, a min or a max, summed per series by InfluxDB; each
# histogram is one string field ``"<bin>:<count> …"`` (InfluxDB 1.x/2.x pay per series, field
# and shard read: bins as fields cost one read each), added up by the report itself.
_DAY_AREA = (
    '"district" =~ /^$district$/ AND "commune" =~ /^$commune$/ AND "access" =~ /^$access$/ '
    'AND "operator" =~ /^$operator$/'
)


_DAY_SUMS: Final = (
    r"SELECT sum(/(^n|_n|_sum|^hours_seen)$/), min(/(_min|^first_hour_s|^download_target_mbps)$/), "
    r"max(/(_max|^download_target_mbps)$/)"
)


def _days(name: str, measurement: str, doc: str, where: str = "") -> list[tuple[str, Query]]:
    """Two statements: the numbers summed per series by InfluxDB (one row per series), and
    (``<name>_bins``) every point's histograms, strings the report adds up."""
    text = f' FROM "{measurement}" WHERE $timeFilter{where} GROUP BY *'
    return [
        _q(Query(name=name, doc=doc, measurement=measurement, select=_DAY_SUMS + text,
                 grafana_ok=False)),
        _q(Query(name=f"{name}_bins", doc=doc + " Histograms.", measurement=measurement,
                 select="SELECT /_hist$/" + text, grafana_ok=False)),
    ]  # fmt: skip


ROLLUPS: Final[dict[str, Query]] = dict(
    [
        *_days(
            "throughput_days",
            "throughput_1d",
            "Every status and timestamp source (the report filters by the tags).",
            f" AND {_DAY_AREA}",
        ),
        *_days(
            "latency_days",
            "latency_1d",
            "Completed latency runs, every target (latency and data network figures).",
            f" AND {_OK} AND {_DAY_AREA}",
        ),
        *_days(
            "service_days",
            "service_1d",
            "Completed service checks of the services matching $service.",
            f' AND {_OK} AND {_DAY_AREA} AND "service" =~ /^$service$/',
        ),
        *_days(
            "ipv6_days",
            "ipv6_1d",
            "IPv6 summary rows.",
            f" AND {_OK} AND {_DAY_AREA} AND \"check\" = ''",
        ),
        *_days(
            "health_days",
            "health_1d",
            "The probes' own health rows: hours_seen and first_hour_s per day.",
            ' AND "interface" = \'\' AND "district" =~ /^$district$/ '
            'AND "commune" =~ /^$commune$/ AND "probe" =~ /^$probe$/',
        ),
        _q(
            Query(
                name="by_hour_rollup",
                doc="Every (day, UTC hour) of completed downloads per province and access "
                "type: download_mbps_n (tests), meets_download_target_sum (at target), "
                "download_mbps_hist (bins); the time column is the local day's start.",
                measurement="throughput_hours_1d",
                select='SELECT * FROM "throughput_hours_1d" WHERE $timeFilter '
                'AND "access" =~ /^$access$/',
                grafana_ok=False,
            )
        ),
    ]
)
