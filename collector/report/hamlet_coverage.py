"""The plan's hamlet items: survey points read back per hamlet, verdicts, counts per area.

One statement reads the good-fix survey points that the collector placed in a hamlet (tag
``hamlet``, collector/hamlets.py) with their radio figures and stop-test download, grouped
by hamlet and radio tags; the verdicts are then made here (collector/coverage.py) for every
hamlet of the registry — one never visited is "not surveyed". Raw points, whatever
``[report] source`` says: a survey is thousands of points, not a year of tests. Usage::

    plan_survey(builder)                          # gather: adds the statement
    apply_coverage(report, registry, declared, targets, inventory)   # after attach_map
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Literal
from zoneinfo import ZoneInfo

from probefleet.collector import queries
from probefleet.collector.coverage import (
    MobileCoverageRule,
    SurveySample,
    any_operator,
    mobile_verdict,
)
from probefleet.collector.hamlets import HAMLET_TAG, hamlet_index
from probefleet.collector.inventory import InventoryFile, TargetsFile
from probefleet.collector.report.areas import AreaRegistry
from probefleet.collector.report.fetch import Row
from probefleet.collector.report.ftth import Declared
from probefleet.collector.report.model import (
    Area,
    Basis,
    CheckOutcome,
    Coverage,
    CoverageCount,
    FtthCheck,
    HamletCoverage,
    OperatorCount,
    Report,
)
from probefleet.collector.report.radio import OPERATOR_TAG, TECHNOLOGY_TAG

if TYPE_CHECKING:
    from probefleet.collector.report.gather import _Builder

SURVEY_QUERY: Final = queries.Query(
    name="survey_points",
    doc="Survey points with a good fix inside a hamlet: point_n, the radio figures the "
    "coverage rule reads (radio_rsrp_dbm, radio_nr_rsrp_dbm, radio_snr_db, radio_nr_snr_db) "
    "and a stop test's download_mbps, one row a point, per hamlet and radio tags.",
    measurement="survey",
    select='SELECT "point_n", "radio_rsrp_dbm", "radio_nr_rsrp_dbm", "radio_snr_db", '
    '"radio_nr_snr_db", "download_mbps" FROM "survey" WHERE $timeFilter '
    "AND \"fix_ok\" = 'true' AND \"hamlet\" != ''",
    fixed_group_by=(HAMLET_TAG, OPERATOR_TAG, TECHNOLOGY_TAG),
    grafana_ok=False,
    columns=("point_n", "radio_rsrp_dbm", "radio_snr_db", "download_mbps"),
)


TRACK_QUERY: Final = queries.Query(
    name="survey_tracks",
    doc="Positions (lat_deg, lon_deg) of the survey points with a good fix, per run_id in "
    "time order: the tracks drawn on the hamlet map.",
    measurement="survey",
    select='SELECT "lat_deg", "lon_deg" FROM "survey" WHERE $timeFilter AND "fix_ok" = \'true\'',
    fixed_group_by=("run_id",),
    grafana_ok=False,
    columns=("lat_deg", "lon_deg"),
)
# A track is drawn from at most this many positions (every k-th kept): an SVG path of a
# day's walk at one point every few seconds would be megabytes.
MAX_TRACK_POINTS: Final = 2000
MAX_TRACKS: Final = 500


def thin(
    track: list[tuple[float, float]], limit: int = MAX_TRACK_POINTS
) -> list[tuple[float, float]]:
    """Every k-th position so that at most ``limit`` remain, the last one kept."""
    if len(track) <= limit:
        return track
    step = -(-len(track) // (limit - 1))
    return [*track[::step], track[-1]]


def plan_survey(builder: _Builder) -> None:
    """Two statements; the points land in ``builder.survey`` (hamlet code -> samples) and
    the tracks in ``builder.tracks`` (run_id -> positions, thinned)."""

    def tracks(rows: list[Row]) -> None:
        runs: dict[str, list[tuple[float, float]]] = {}
        for row in rows:
            lat, lon = row.num("lat_deg"), row.num("lon_deg")
            if lat is not None and lon is not None:
                runs.setdefault(row.tags.get("run_id", ""), []).append((lon, lat))
        for run in sorted(runs)[:MAX_TRACKS]:
            builder.tracks[run] = thin(runs[run])

    def handle(rows: list[Row]) -> None:
        for row in rows:
            code = row.tags.get(HAMLET_TAG, "")
            if not code:
                continue
            builder.survey.setdefault(code, []).append(
                SurveySample(
                    operator=row.tags.get(OPERATOR_TAG, ""),
                    technology=row.tags.get(TECHNOLOGY_TAG, ""),
                    rsrp_dbm=row.num("radio_rsrp_dbm"),
                    nr_rsrp_dbm=row.num("radio_nr_rsrp_dbm"),
                    snr_db=row.num("radio_snr_db"),
                    nr_snr_db=row.num("radio_nr_snr_db"),
                    download_mbps=row.num("download_mbps"),
                )
            )

    builder.add(
        "survey_tracks", "survey, raw points", tracks, catalogue={"survey_tracks": TRACK_QUERY}
    )
    builder.add(
        "survey_points", "survey, raw points", handle, catalogue={"survey_points": SURVEY_QUERY}
    )


def _hamlets(
    registry: AreaRegistry,
    *,
    survey: dict[str, list[SurveySample]],
    rule: MobileCoverageRule,
    target_mbps: float | None,
    declared: Sequence[Declared] | None,
    end: dt.date,
) -> list[HamletCoverage]:
    out: list[HamletCoverage] = []
    for f in sorted(registry.at("hamlet"), key=lambda f: f.code):
        commune = registry.by_code("commune", f.parent_code)
        district = registry.by_code("district", commune.parent_code if commune else None)
        row = HamletCoverage(
            f.code,
            f.name,
            f.parent_code or "",
            commune.name if commune else "",
            district.code if district else "",
            district.name if district else "",
        )
        points = survey.get(f.code, [])
        row.points_no_radio = sum(1 for p in points if not p.operator)
        for operator in sorted({p.operator for p in points if p.operator}):
            mine = [p for p in points if p.operator == operator]
            row.mobile[operator] = mobile_verdict(mine, rule, target_mbps)
        row.mobile_verdict = any_operator(row.mobile.values())
        if declared is not None:
            row.ftth = {
                d.operator: d.since for d in declared if d.hamlet_code == f.code and d.since < end
            }
            row.ftth_verdict = "covered" if row.ftth else "not_covered"
        out.append(row)
    return out


def _count(
    level: Literal["commune", "district", "province"],
    code: str,
    name: str,
    rows: list[HamletCoverage],
) -> CoverageCount:
    count = CoverageCount(level, code, name, hamlets=len(rows))
    for h in rows:
        count.mobile_covered += h.mobile_verdict == "covered"
        count.mobile_surveyed += h.mobile_verdict != "not_surveyed"
        for operator, finding in h.mobile.items():
            by = count.by_operator.setdefault(operator, OperatorCount())
            by.covered += finding.verdict == "covered"
            by.surveyed += finding.verdict != "not_surveyed"
        if h.ftth_verdict is not None:
            count.ftth_covered = (count.ftth_covered or 0) + (h.ftth_verdict == "covered")
    return count


def _counts(registry: AreaRegistry, rows: list[HamletCoverage]) -> list[CoverageCount]:
    out = [_count("province", "", "", rows)]
    for d in sorted(registry.at("district"), key=lambda f: f.code):
        mine = [h for h in rows if h.district_code == d.code]
        if mine:
            out.append(_count("district", d.code, d.name, mine))
    for c in sorted(registry.at("commune"), key=lambda f: f.code):
        mine = [h for h in rows if h.commune_code == c.code]
        if mine:
            count = _count("commune", c.code, c.name, mine)
            parent = registry.by_code("district", c.parent_code)
            count.district = parent.name if parent else ""
            out.append(count)
    return out


def _checks(
    report: Report,
    registry: AreaRegistry,
    inventory: InventoryFile,
    declared: Sequence[Declared],
) -> list[FtthCheck]:
    """Each fixed line of the inventory against its operator's declarations where it is."""
    index = hamlet_index(registry)
    tests = {
        (c.district, c.commune): c.access["fixed"].download.tests
        for c in report.communes
        if "fixed" in c.access
    }
    out: list[FtthCheck] = []
    for probe, info in sorted(inventory.probes.items()):
        key = (info.district or "", info.commune)
        commune_code = report.map.codes.get(key, "")
        hamlets_here = {h.code for h in index.hamlets if h.commune_code == commune_code}
        if not hamlets_here:
            continue  # no hamlets of that commune in the registry: nothing to compare with
        hamlet = (
            index.locate(info.lon, info.lat)
            if info.lon is not None and info.lat is not None
            else None
        )
        for link in info.interfaces.values():
            if link.access != "fixed":
                continue
            mine = {
                d.hamlet_code for d in declared if d.operator.casefold() == link.operator.casefold()
            }
            n = tests.get(key, 0)
            where = {hamlet.code} if hamlet is not None else hamlets_here
            outcome: CheckOutcome = (
                "no_tests" if not n else ("agrees" if mine & where else "disagrees")
            )
            out.append(
                FtthCheck(
                    probe,
                    link.operator,
                    commune_code,
                    info.commune,
                    hamlet.code if hamlet is not None else "",
                    outcome,
                    n,
                )
            )
    return out


def _set(area: Area, item: str, count: CoverageCount | None, ftth: bool) -> None:
    if count is None or not count.hamlets:
        return  # no hamlets of this area in the registry: stays "not measured"
    covered = count.ftth_covered if ftth else count.mobile_covered
    if covered is None or (not ftth and not count.mobile_surveyed):
        return  # no declared coverage / not one hamlet surveyed: "not measured"
    area.verdicts[item] = "met" if covered == count.hamlets else "not_met"
    area.bases[item] = Basis(
        "hamlets_ftth" if ftth else "hamlets",
        part=covered,
        whole=count.hamlets,
        tests=count.hamlets if ftth else count.mobile_surveyed,
        share=covered / count.hamlets,
        threshold=1.0,
    )


def apply_coverage(
    report: Report,
    registry: AreaRegistry | None,
    declared: Sequence[Declared] | None,
    targets: TargetsFile | None,
    inventory: InventoryFile,
) -> None:
    """Every hamlet's verdicts, the counts per area, and the coverage items of the report's
    areas (still "not measured" without survey points or declared coverage)."""
    if registry is None or not registry.at("hamlet"):
        return
    rule = targets.coverage.mobile if targets else MobileCoverageRule()
    target = targets.mobile.download_mbps if targets else None
    # Declared before the period's end (exclusive) on the province's clock.
    end = report.end.astimezone(ZoneInfo(report.methodology.timezone)).date()
    rows = _hamlets(
        registry, survey=report.survey, rule=rule, target_mbps=target, declared=declared, end=end
    )
    coverage = Coverage(rule, target, rows, _counts(registry, rows))
    coverage.operators = sorted({op for h in rows for op in h.mobile})
    coverage.survey_points = sum(len(v) for k, v in report.survey.items())
    coverage.tracks = list(report.survey_tracks.values())
    if declared is not None:
        coverage.ftth_files = sorted({d.where.rsplit(":", 1)[0] for d in declared})
        coverage.checks = _checks(report, registry, inventory, declared)
    report.coverage = coverage
    by_code = {(c.level, c.code): c for c in coverage.areas}
    district_codes = {d.name.casefold(): d.code for d in registry.at("district")}
    for area in [*report.communes, *report.districts, *report.province]:
        if area.level == "commune":
            count = by_code.get(
                ("commune", report.map.codes.get((area.district, area.commune), ""))
            )
        elif area.level == "district":
            count = by_code.get(("district", district_codes.get(area.district.casefold(), "")))
        else:
            count = by_code.get(("province", ""))
        _set(area, "coverage_mobile", count, ftth=False)
        _set(area, "coverage_fixed", count, ftth=True)
