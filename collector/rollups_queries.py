"""The report's InfluxQL over the rollups: every stored point of the period, the whole local
months from ``<kind>_1mo`` and the other days from ``<kind>_1d``, all tags as series tags.

Raw points (``SELECT *``), not InfluxDB's ``sum()``: InfluxDB 1.x runs one iterator per
series, field and shard for an aggregate, so summing ~40 fields of 1,200 series over a month
took 11.6 s where reading the same points took 1.3 s (bench/bench_report.py ``--profile``).
The report adds them up itself (collector/report/rollup_gather.py). Usage::

    text = points_query("throughput", monthly=True).render(start=a, end=b, filters=...)
"""

# ruff: noqa: S608 - texts from constants only; values reach them through Query.render
from __future__ import annotations

from typing import Final

from probefleet.collector.queries import Query
from probefleet.collector.rollups_daily import daily_of
from probefleet.collector.rollups_monthly import monthly_of

_AREA: Final = (
    '"district" =~ /^$district$/ AND "commune" =~ /^$commune$/ AND "access" =~ /^$access$/ '
    'AND "operator" =~ /^$operator$/'
)
_OK: Final = "\"status\" = 'ok'"

# kind -> (what the rows are, the statement's own filters)
WHERE: Final[dict[str, tuple[str, str]]] = {
    "throughput": ("Every status and timestamp source (the report filters by the tags).",
                   f" AND {_AREA}"),
    "latency": ("Completed latency runs, every target.", f" AND {_OK} AND {_AREA}"),
    "service": ("Completed service checks of the services matching $service.",
                f' AND {_OK} AND {_AREA} AND "service" =~ /^$service$/'),
    "ipv6": ("IPv6 summary rows.", f" AND {_OK} AND {_AREA} AND \"check\" = ''"),
    "health": ("The probes' own health rows: hours_seen and first_hour_s.",
               ' AND "interface" = \'\' AND "district" =~ /^$district$/ '
               'AND "commune" =~ /^$commune$/ AND "probe" =~ /^$probe$/'),
}  # fmt: skip


def points_query(kind: str, *, monthly: bool) -> Query:
    """Every rollup point of ``kind`` in ``$timeFilter`` (monthly or daily), GROUP BY *."""
    doc, where = WHERE[kind]
    measurement = monthly_of(kind) if monthly else daily_of(kind)
    return Query(
        name=f"{measurement}_points",
        doc=doc,
        measurement=measurement,
        select=f'SELECT * FROM "{measurement}" WHERE $timeFilter{where} GROUP BY *',
        grafana_ok=False,
    )


POINTS: Final[dict[str, Query]] = {
    q.name: q for kind in WHERE for q in (points_query(kind, monthly=m) for m in (True, False))
}

# Whether a month is compacted: its health_1mo points (every probe reports health).
MONTH_PRESENT: Final = Query(
    name="health_1mo_present",
    doc="One point of the month's health_1mo, if any.",
    measurement="health_1mo",
    select='SELECT "n" FROM "health_1mo" WHERE $timeFilter LIMIT 1',
    grafana_ok=False,
)
