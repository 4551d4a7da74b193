"""Which catalogue queries the report runs, with which grouping, and how rows become figures.

Medians do not add up: every level (commune, district, province, operator) gets its own
statement, so a district's median is the median of its tests, not of its communes' medians.
Counts (hours seen, IPv6-ready probes) are summed from the probe level. Usage::

    report = gather(fetcher, start=..., end=..., settings=..., inventory=..., targets=...)
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from zoneinfo import ZoneInfo

from probefleet.collector import queries
from probefleet.collector.coverage import SurveySample
from probefleet.collector.inventory import InventoryFile, TargetsFile
from probefleet.collector.report import ranks, state
from probefleet.collector.report.fetch import STATEMENTS_PER_REQUEST, Fetcher, Row
from probefleet.collector.report.hamlet_coverage import plan_survey
from probefleet.collector.report.model import (
    ACCESS_TYPES,
    AccessFigures,
    Area,
    Band,
    Exclusions,
    Hour,
    Level,
    Methodology,
    MobileRadio,
    Report,
    ServerRow,
    ServiceFigures,
    Speed,
)
from probefleet.collector.report.radio import plan_radio
from probefleet.collector.report.rollup_gather import (
    RollupPlan,
    compacted_months,
    rolled_up,
    whole_days,
)
from probefleet.collector.report.settings import ReportSettings
from probefleet.collector.report.verdicts import apply_verdicts

# One band table for the raw path and the rollups (a second copy could drift from it).
from probefleet.collector.rollups_spec import BANDS

AREA_TAGS: Final[dict[Level, tuple[str, ...]]] = {
    "commune": ("province", "district", "commune"),
    "district": ("province", "district"),
    "province": ("province",),
    "operator": ("operator",),
}
_NO_LIMIT_MBPS: Final = 1_000_000.0

Key = tuple[str, ...]
Source = Literal["auto", "rollups", "raw"]
Handler = Callable[[list[Row]], None]


@dataclass
class _Job:
    query: queries.Query
    what: str
    texts: list[str]
    handle: Handler


class _Builder:
    def __init__(
        self,
        *,
        start: dt.datetime,
        end: dt.datetime,
        settings: ReportSettings,
        inventory: InventoryFile,
        targets: TargetsFile | None,
    ) -> None:
        self.start, self.end = start, end
        self.settings = settings
        self.targets = targets
        self.target_mbps: dict[str, float] = {}
        if targets is not None:
            self.target_mbps = {
                "fixed": targets.fixed.download_mbps,
                "mobile": targets.mobile.download_mbps,
            }
        self.areas: dict[Level, dict[Key, Area]] = {level: {} for level in AREA_TAGS}
        self.jobs: list[_Job] = []
        self.exclusions = Exclusions()
        self.servers: list[ServerRow] = []
        self.bands: dict[str, list[Band]] = {}
        self.hourly: dict[str, dict[int, list[Row]]] = {}
        self.probe_areas: dict[str, Key] = {}
        self.bands_exact: set[str] = set()  # rollups: bands counted with this target
        self.rollup_hours: dict[str, list[Hour]] = {}
        self.radio: dict[str, MobileRadio] = {}  # province -> mobile split (radio.py)
        self.survey: dict[str, list[SurveySample]] = {}  # hamlet -> its points (hamlet_coverage)
        self.tracks: dict[str, list[tuple[float, float]]] = {}  # run_id -> (lon, lat) positions
        for probe_id, info in inventory.probes.items():
            key = (info.province, info.district or "", info.commune)
            self.probe_areas[probe_id] = key
            for level in ("commune", "district", "province"):
                area = self.area(level, key[: len(AREA_TAGS[level])])
                area.probes += 1

    # -- areas ---------------------------------------------------------------------------

    def area(self, level: Level, key: Key) -> Area:
        found = self.areas[level].get(key)
        if found is None:
            found = Area(level)
            for tag, value in zip(AREA_TAGS[level], key, strict=True):
                setattr(found, tag, value)
            self.areas[level][key] = found
        return found

    def _key(self, level: Level, row: Row) -> Key:
        return tuple(row.tags.get(t, "") for t in AREA_TAGS[level])

    def _access(self, level: Level, row: Row) -> AccessFigures | None:
        access = row.tags.get("access", "")
        if access not in ACCESS_TYPES:
            return None  # no access type known: no target, not in the plan's figures
        area = self.area(level, self._key(level, row))
        figures = area.access.get(access)
        if figures is None:
            figures = AccessFigures(access, self.target_mbps.get(access))
            area.access[access] = figures
        return figures

    # -- planning ------------------------------------------------------------------------

    def add(
        self,
        name: str,
        what: str,
        handle: Handler,
        *,
        group_by: Sequence[str] = (),
        filters: dict[str, str | Sequence[str] | None] | None = None,
        params: dict[str, str | float] | None = None,
        windows: list[tuple[dt.datetime, dt.datetime]] | None = None,
        catalogue: dict[str, queries.Query] = queries.CATALOGUE,
    ) -> None:
        query = catalogue[name]
        text = query.render(
            start=self.start,
            end=self.end,
            group_by=group_by,
            filters=filters,
            params=params,
            windows=windows,
            tz=self.settings.timezone,
        )
        self.jobs.append(_Job(query, what, [text], handle))

    def plan(self, latency_targets: list[str] | None) -> None:
        s = self.settings
        windows = queries.peak_windows(
            self.start,
            self.end,
            tz=s.timezone,
            start_hour=s.peak_start_hour,
            end_hour=s.peak_end_hour,
        )
        levels: tuple[Level, ...] = ("commune", "district", "province", "operator")
        for level in levels:
            group = (*AREA_TAGS[level], "access")
            by = f"by {level}"
            self.add("download_summary", by, self._speed(level, "download"), group_by=group)
            self.add("upload_summary", by, self._speed(level, "upload"), group_by=group)
            self.add("throughput_runs", by, self._runs(level), group_by=group)
            if latency_targets is None or latency_targets:
                self.add(
                    "latency_summary",
                    by,
                    self._latency(level),
                    group_by=group,
                    filters={"target": latency_targets},
                )
            if level == "operator":
                continue
            if s.data_network_targets:
                self.add(
                    "data_network_reachability",
                    by,
                    self._data_network(level),
                    group_by=AREA_TAGS[level],
                    filters={"target": s.data_network_targets},
                )
            self.add(
                "service_availability",
                by,
                self._services(level),
                group_by=AREA_TAGS[level],
                filters={"service": s.services or None},
            )
        if windows:
            query = queries.CATALOGUE["throughput_peak_values"]
            texts = [query.render(start=a, end=b, tz=s.timezone) for a, b in windows]
            self.jobs.append(_Job(query, f"{len(windows)} peak windows", texts, self._peak))
        probe_group = (*AREA_TAGS["commune"], "probe")
        self.add("ipv6_readiness", "by probe", self._ipv6, group_by=probe_group)
        self.add("probe_hours_seen", "by probe", self._hours_seen, group_by=probe_group)
        self.add("probe_first_report", "by probe", self._first_report, group_by=probe_group)
        self._plan_methodology()
        self._plan_charts()

    def _plan_methodology(self) -> None:
        ex = self.exclusions
        self.add("throughput_method", "servers", self._servers)

        def total(attr: str, column: str) -> Handler:
            def handle(rows: list[Row]) -> None:
                setattr(ex, attr, sum(r.count(column) for r in rows))

            return handle

        self.add("throughput_skips", "in the period", total("skipped_busy", "skipped_busy"))
        self.add(
            "throughput_skips_cross_traffic",
            "in the period",
            total("skipped_cross_traffic", "skipped_cross_traffic"),
        )
        self.add("throughput_unsynced", "in the period", total("unsynced", "results"))
        for source in ("rebased", "estimated"):
            self.add(
                "throughput_clock",
                source,
                total(source, "results"),
                params={"timeSource": source},
            )

        def runs(rows: list[Row]) -> None:
            for row in rows:
                n = row.count("runs")
                ex.runs_total += n
                if row.tags.get("status") == "skipped":
                    ex.skipped += n
                elif row.tags.get("status") == "failed":
                    ex.failed += n

        self.add("throughput_runs", "in the period", runs)

    def _plan_charts(self) -> None:
        for access, target in self.target_mbps.items():
            self.bands[access] = []
            for low, high in BANDS:
                band = Band(low, high, 0)
                self.bands[access].append(band)

                def handle(rows: list[Row], band: Band = band) -> None:
                    # Probes missing from the inventory (no province) are in no area.
                    band.tests = sum(r.count("tests") for r in rows if r.tags.get("province"))

                self.add(
                    "download_band",
                    f"{access} {low:g}-{high:g}x target"
                    if high is not None
                    else f"{access} >= {low:g}x target",
                    handle,
                    group_by=("province",),
                    filters={"access": access},
                    params={
                        "lowMbps": low * target,
                        "highMbps": high * target if high is not None else _NO_LIMIT_MBPS,
                    },
                )

        def by_hour(rows: list[Row]) -> None:
            zone = ZoneInfo(self.settings.timezone)
            for row in rows:
                access = row.tags.get("access", "")
                when = row.num("time")
                if access not in ACCESS_TYPES or when is None or not row.tags.get("province"):
                    continue
                hour = dt.datetime.fromtimestamp(when, zone).hour
                self.hourly.setdefault(access, {}).setdefault(hour, []).append(row)

        self.add("download_by_hour", "by access type", by_hour, group_by=("province", "access"))

    # -- handlers ------------------------------------------------------------------------

    def _speed(self, level: Level, direction: str) -> Handler:
        def handle(rows: list[Row]) -> None:
            for row in rows:
                figures = self._access(level, row)
                if figures is None:
                    continue
                speed: Speed = getattr(figures, direction)
                speed.median_mbps = row.num("median_mbps")
                speed.p10_mbps = row.num("p10_mbps")
                speed.tests = row.count("tests")
                speed.tests_with_target = row.count("tests_with_target")
                speed.tests_at_target = row.count("tests_at_target")

        return handle

    def _peak(self, rows: list[Row]) -> None:
        """Peak-hour values -> every level's peak median and 10th percentile (InfluxDB's
        definitions, ``ranks``), counts of tests and of tests at target."""
        values: dict[tuple[Level, Key, str, str], list[float]] = {}
        at_target: dict[tuple[Level, Key, str], int] = {}
        for row in rows:
            if row.tags.get("access", "") not in ACCESS_TYPES:
                continue
            for level in AREA_TAGS:
                slot = (level, self._key(level, row), row.tags["access"])
                for direction in ("download", "upload"):
                    value = row.num(f"{direction}_mbps")
                    if value is not None:
                        values.setdefault((*slot, direction), []).append(value)
                at_target[slot] = at_target.get(slot, 0) + row.count("meets_download_target")
        for (level, key, access, direction), found in values.items():
            if not any(key):
                continue  # probes missing from the inventory
            probe_like = Row(dict(zip(AREA_TAGS[level], key, strict=True)), {})
            probe_like.tags["access"] = access
            figures = self._access(level, probe_like)
            assert figures is not None
            speed: Speed = getattr(figures, direction)
            speed.peak_median_mbps = ranks.median(found)
            speed.peak_p10_mbps = ranks.percentile(found, 10)
            speed.peak_tests = len(found)
            if direction == "download":
                speed.peak_tests_at_target = at_target.get((level, key, access), 0)

    def _runs(self, level: Level) -> Handler:
        def handle(rows: list[Row]) -> None:
            for row in rows:
                figures = self._access(level, row)
                if figures is None:
                    continue
                status = row.tags.get("status", "")
                if status in ("ok", "failed", "skipped"):
                    setattr(figures, f"runs_{status}", row.count("runs"))

        return handle

    def _latency(self, level: Level) -> Handler:
        def handle(rows: list[Row]) -> None:
            for row in rows:
                figures = self._access(level, row)
                if figures is None:
                    continue
                lat = figures.latency
                lat.rtt_median_ms = row.num("rtt_median_ms")
                lat.jitter_ms = row.num("jitter_ms")
                lat.loss_pct = row.num("loss_pct")
                lat.runs = row.count("runs")

        return handle

    def _data_network(self, level: Level) -> Handler:
        def handle(rows: list[Row]) -> None:
            for row in rows:
                area = self.area(level, self._key(level, row))
                area.data_network_runs = row.count("runs")
                area.data_network_answered = row.count("runs_answered")
                area.data_network_rtt_median_ms = row.num("rtt_median_ms")

        return handle

    def _services(self, level: Level) -> Handler:
        def handle(rows: list[Row]) -> None:
            for row in rows:
                area = self.area(level, self._key(level, row))
                area.services[row.tags.get("service", "")] = ServiceFigures(
                    row.num("availability"), row.count("checks"), row.num("total_median_ms")
                )

        return handle

    def _rollup(self, row: Row) -> list[Area]:
        key = self._key("commune", row)
        return [
            self.area(level, key[: len(AREA_TAGS[level])])
            for level in AREA_TAGS
            if level != "operator"
        ]

    def _ipv6(self, rows: list[Row]) -> None:
        weighted: dict[int, float] = {}
        for row in rows:
            works, runs = row.num("works_share"), row.count("runs")
            if works is None or not runs:
                continue
            ready = works >= self.settings.ipv6_ready_min_share
            for area in self._rollup(row):
                area.ipv6_probes_measured += 1
                area.ipv6_probes_ready += int(ready)
                area.ipv6_runs += runs
                weighted[id(area)] = weighted.get(id(area), 0.0) + works * runs
        for level in ("commune", "district", "province"):
            for area in self.areas[level].values():
                if area.ipv6_runs:
                    area.ipv6_works_share = weighted[id(area)] / area.ipv6_runs

    def _hours_seen(self, rows: list[Row]) -> None:
        self._seen = {(r.tags.get("probe", ""), self._key("commune", r)): r for r in rows}

    def _first_report(self, rows: list[Row]) -> None:
        end_s = self.end.timestamp()
        for row in rows:
            first = row.num("time")
            seen = self._seen.get((row.tags.get("probe", ""), self._key("commune", row)))
            if first is None or seen is None:
                continue
            # Hours are whole UTC hours (the subquery's buckets): from the first report's hour
            # to the end of the period.
            first_hour = first - first % 3600
            expected = max(1, int(-(-(end_s - first_hour) // 3600)))
            for area in self._rollup(row):
                area.probes_seen += 1
                area.hours_seen += seen.count("hours_seen")
                area.hours_expected += expected

    def _servers(self, rows: list[Row]) -> None:
        for row in rows:
            self.servers.append(
                ServerRow(
                    row.tags.get("method", ""),
                    row.tags.get("server", ""),
                    row.tags.get("ip_version", ""),
                    row.count("tests"),
                    row.num("download_streams"),
                    row.num("upload_streams"),
                    row.num("download_duration_s"),
                    row.num("upload_duration_s"),
                )
            )
        self.servers.sort(key=lambda s: (-s.tests, s.server))

    # -- result --------------------------------------------------------------------------

    def hours(self) -> dict[str, list[Hour]]:
        if self.rollup_hours:
            return {a: h for a, h in sorted(self.rollup_hours.items()) if any(x.tests for x in h)}
        out: dict[str, list[Hour]] = {}
        for access, by_hour in sorted(self.hourly.items()):
            out[access] = []
            for hour in range(24):
                rows = by_hour.get(hour, [])
                medians = [m for r in rows if (m := r.num("median_mbps")) is not None]
                out[access].append(
                    Hour(
                        hour,
                        statistics.median(medians) if medians else None,
                        sum(r.count("tests") for r in rows),
                        sum(r.count("tests_at_target") for r in rows),
                    )
                )
        return out


def _named(areas: dict[Key, Area]) -> list[Area]:
    return [areas[k] for k in sorted(areas) if areas[k].name]


def gather(
    fetcher: Fetcher,
    *,
    start: dt.datetime,
    end: dt.datetime,
    settings: ReportSettings,
    inventory: InventoryFile,
    targets: TargetsFile | None,
    state_dir: str | None = None,
    latency_targets_known: list[str] | None = None,
    source: Source = "auto",
) -> Report:
    """Run the report's statements (progress through ``fetcher``) and build the figures.

    ``source``: "rollups" (the daily rollups: periods of whole local days), "raw" (every
    point), "auto" (rollups when the period is whole days).

    ``latency_targets_known``: the latency targets in the database (SHOW TAG VALUES), to
    leave the data network's out of the latency figures when no list is configured."""
    builder = _Builder(
        start=start, end=end, settings=settings, inventory=inventory, targets=targets
    )
    latency_targets: list[str] | None
    if settings.latency_targets:
        latency_targets = list(settings.latency_targets)
    elif settings.data_network_targets and latency_targets_known is not None:
        skip = set(settings.data_network_targets)
        latency_targets = [t for t in latency_targets_known if t not in skip]
    else:
        latency_targets = None
    if source == "auto":
        rolled = whole_days(start, end, settings.timezone) and rolled_up(fetcher.client, start, end)
        source = "rollups" if rolled else "raw"
        if fetcher.progress is not None:
            fetcher.progress(f"figures from the {'daily rollups' if rolled else 'raw points'}")
    if source == "rollups":
        if not whole_days(start, end, settings.timezone):
            raise ValueError(f"rollups answer whole local days only, not {start} .. {end}")
        months = compacted_months(fetcher.client, start, end, settings.timezone)
        RollupPlan(builder).plan(latency_targets, months)
    else:
        builder.plan(latency_targets)
    # Raw points whatever the source: the rollups keep no radio context per test.
    plan_radio(builder)
    plan_survey(builder)  # raw survey points too: the hamlet items (hamlet_coverage.py)
    fetcher.total = sum(-(-len(j.texts) // STATEMENTS_PER_REQUEST) for j in builder.jobs)
    for job in builder.jobs:
        job.handle(fetcher.rows(job.query, job.what, job.texts))
    exclusions = builder.exclusions
    state.read_into(exclusions, state_dir, start, end)
    report = Report(
        start=start,
        end=end,
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        targets_mbps=builder.target_mbps,
        # Probes missing from the inventory have no commune/province tags: left out here.
        province=_named(builder.areas["province"]),
        districts=_named(builder.areas["district"]),
        communes=_named(builder.areas["commune"]),
        operators=_named(builder.areas["operator"]),
        methodology=Methodology(
            timezone=settings.timezone,
            peak_start_hour=settings.peak_start_hour,
            peak_end_hour=settings.peak_end_hour,
            targets_year=targets.year if targets else None,
            targets_source=targets.source if targets else "",
            servers=builder.servers,
            exclusions=exclusions,
            data_network_targets=list(settings.data_network_targets),
            latency_targets=latency_targets or [],
            services=list(settings.services),
        ),
        bands=builder.bands,
        hours=builder.hours(),
        query_seconds=sum(fetcher.seconds.values()),
        statements=sum(len(j.texts) for j in builder.jobs),
        mobile_radio=[builder.radio[p] for p in sorted(builder.radio)],
        survey=builder.survey,
        survey_tracks=builder.tracks,
    )
    apply_verdicts(report, settings, targets)
    return report
