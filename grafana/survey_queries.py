"""The Survey board's queries (issue 22): survey points on a map, runs, hamlets. Names:
kinds/survey/README.md (the ``survey`` measurement), collector/README.md (the ``hamlet`` and
``hamlet_commune`` tags, the radio context).

A year of survey points at one every 5 s is millions: the map asks for the newest
:data:`MAP_POINTS` of the range (choose a run to see it whole), the tables one row per run or
hamlet and operator. A good fix is ``fix_ok = 'true'`` with a position (the decoder does not
enforce that a good fix has one: kinds/survey)."""

# Texts from constants only: S608 does not apply.
# ruff: noqa: S608
from __future__ import annotations

from typing import Final

from probefleet.collector.queries import Query

# The newest points a map layer asks for: about 4 hours of one probe at 5 s.
MAP_POINTS: Final = 3000
# The technologies that count as mobile broadband (the targets file's [coverage.mobile]
# technologies, tests/grafana/test_survey_board.py holds them equal).
BROADBAND: Final = ("lte", "nr5g_nsa", "nr5g_sa")
_BROADBAND_RE: Final = "/^(" + "|".join(BROADBAND) + ")$/"
_RUN: Final = '"run_id" =~ /^$run_id$/'
_FILTERS: Final = (
    f'{_RUN} AND "hamlet_commune" =~ /^$hamlet_commune$/ AND "hamlet" =~ /^$hamlet$/ '
    'AND "radio_technology" =~ /^$technology$/ AND "radio_operator" =~ /^$mobile_operator$/'
)
# A field condition keeps only the points that have a position.
_GOOD: Final = '"fix_ok" = \'true\' AND "lat_deg" >= -90 AND "lon_deg" >= -180'
_MAP_TAGS: Final = (
    "run_id",
    "probe",
    "hamlet_commune",
    "hamlet",
    "radio_technology",
    "radio_operator",
)
_MAP_FIELDS: Final = ("lat_deg", "lon_deg", "radio_rsrp_dbm", "radio_snr_db", "point_n")


def _map(name: str, doc: str, condition: str) -> Query:
    """The newest MAP_POINTS good-fix points meeting ``condition``, one row each, their tags
    as columns (the map's tooltip; no GROUP BY, so LIMIT bounds the whole answer)."""
    columns = ", ".join([*(f'"{f}"' for f in _MAP_FIELDS), *(f'"{t}"::tag' for t in _MAP_TAGS)])
    return Query(
        name=name,
        doc=doc,
        measurement="survey",
        select=f'SELECT {columns} FROM "survey" WHERE $timeFilter AND {_GOOD} AND {_FILTERS} '
        f"AND {condition} ORDER BY time DESC LIMIT {MAP_POINTS}",
        columns=(*_MAP_FIELDS, *_MAP_TAGS),
    )


def _run_counts() -> str:
    """points and good_fix_share per run and probe, in one statement: the good-fix count
    (grouped by fix_ok too, so its series keys differ from the totals': InfluxDB 1.x drops a
    merged row whose series key and time equal another's) and the total, merged by a plain
    SELECT, then summed (as panel_queries._radio_shares)."""
    where = f"WHERE $timeFilter AND {_RUN}"
    good = (
        f'(SELECT count("lat_deg") AS "good_n" FROM "survey" {where} AND {_GOOD} '
        'GROUP BY "run_id", "probe", "fix_ok")'
    )
    total = (
        f'(SELECT count("point_n") AS "points" FROM "survey" {where} GROUP BY "run_id", "probe")'
    )
    return (
        'SELECT sum("good_n") / sum("points") AS "good_fix_share", sum("points") AS "points" '
        f'FROM (SELECT "good_n", "points" FROM {good}, {total})'
    )


def _hamlet_counts() -> str:
    """Per hamlet and serving network: points (good fix), share_4g5g and the median RSRP,
    in one statement as :func:`_run_counts` (the broadband count keeps the technology tag,
    the total the fix_ok tag: keys that differ)."""
    where = f"WHERE $timeFilter AND {_GOOD} AND {_FILTERS} AND \"hamlet\" != ''"
    by = 'GROUP BY "hamlet_commune", "hamlet", "radio_operator"'
    broadband = (
        f'(SELECT count("lat_deg") AS "points_4g5g" FROM "survey" {where} '
        f'AND "radio_technology" =~ {_BROADBAND_RE} {by}, "radio_technology")'
    )
    total = (
        f'(SELECT count("lat_deg") AS "points", median("radio_rsrp_dbm") AS "rsrp" '
        f'FROM "survey" {where} {by}, "fix_ok")'
    )
    return (
        'SELECT sum("points") AS "points", sum("points_4g5g") / sum("points") AS "share_4g5g", '
        'max("rsrp") AS "radio_rsrp_median_dbm" '
        f'FROM (SELECT "points_4g5g", "points", "rsrp" FROM {broadband}, {total})'
    )


SURVEY_QUERIES: Final[tuple[Query, ...]] = (
    _map(
        "survey_map_broadband",
        "The newest good-fix survey points on 4G/5G (lat_deg, lon_deg, radio_rsrp_dbm, "
        "radio_snr_db, point_n and the tags run_id, probe, hamlet_commune, hamlet, "
        "radio_technology, radio_operator), newest first. 5G SA without an LTE RSRP has "
        "radio_rsrp_dbm null.",
        f'"radio_technology" =~ {_BROADBAND_RE}',
    ),
    _map(
        "survey_map_other",
        "As survey_map_broadband, the points on 2G/3G or without service (no technology): "
        "they count against coverage whatever their signal.",
        f'"radio_technology" !~ {_BROADBAND_RE}',
    ),
    Query(
        name="survey_runs",
        doc="Per run and probe: points (every point of the run in the range, good fix or "
        "not) and good_fix_share (0-1: fix_ok with a position). Null share: no good fix.",
        measurement="survey",
        select=_run_counts(),
        fixed_group_by=("run_id", "probe"),
        columns=("points", "good_fix_share"),
    ),
    Query(
        name="survey_run_first",
        doc="Per run and probe: first_point_n, the run's first point in the range (one "
        "selector: the row's time is that point's).",
        measurement="survey",
        select='SELECT first("point_n") AS "first_point_n" FROM "survey" '
        f"WHERE $timeFilter AND {_RUN}",
        fixed_group_by=("run_id", "probe"),
        columns=("first_point_n",),
    ),
    Query(
        name="survey_run_last",
        doc="Per run and probe: last_point_n, the run's newest point in the range (its "
        "time: the run's end, or where it stands now).",
        measurement="survey",
        select='SELECT last("point_n") AS "last_point_n" FROM "survey" '
        f"WHERE $timeFilter AND {_RUN}",
        fixed_group_by=("run_id", "probe"),
        columns=("last_point_n",),
    ),
    Query(
        name="survey_hamlets",
        doc="Per hamlet (the registry's code the collector assigned), its commune code and "
        "serving network (radio_operator): points (good fix), share_4g5g (0-1, on "
        "lte/nr5g_nsa/nr5g_sa; null: none) and radio_rsrp_median_dbm (median LTE RSRP).",
        measurement="survey",
        select=_hamlet_counts(),
        fixed_group_by=("hamlet_commune", "hamlet", "radio_operator"),
        columns=("points", "share_4g5g", "radio_rsrp_median_dbm"),
    ),
)

__all__ = ["BROADBAND", "MAP_POINTS", "SURVEY_QUERIES"]
