"""The Year board's queries: the district rollups (``<kind>_district_1d``,
collector/rollups_daily.py), one point per district, access type, operator and status a
day, so a year of 1,000 probes reads ~365 points per district and line instead of one per
probe and day (the per-probe daily rollups took 3-24 s a panel at 1,000 probes; the target
is 1 s). The panels filter by district, access type and operator, not by commune: for one
commune over a year, the Commune board or the annual report. Means and shares only
(InfluxQL cannot read a median from the rollups' histograms): the annual report gives the
medians."""

# ruff: noqa: S608 - texts from constants only
from __future__ import annotations

from typing import Final

from probefleet.collector.queries import Query

_AREA: Final = (
    '"district" =~ /^$district$/ AND "access" =~ /^$access$/ AND "operator" =~ /^$operator$/'
)
_TRUSTED_OK: Final = "\"status\" = 'ok' AND \"time_source\" != 'estimated'"
DAY: Final = "1d"


def _speed(direction: str) -> Query:
    return Query(
        name=f"year_{direction}",
        doc=f"Per day: mean_mbps ({direction}, mean of the tests), share_at_target (0-1, "
        "tests with a target), tests.",
        measurement="throughput_district_1d",
        select=f'SELECT sum("{direction}_mbps_sum") / sum("{direction}_mbps_n") AS "mean_mbps", '
        f'sum("meets_{direction}_target_sum") / sum("meets_{direction}_target_n") '
        f'AS "share_at_target", sum("{direction}_mbps_n") AS "tests" '
        f'FROM "throughput_district_1d" WHERE $timeFilter AND {_TRUSTED_OK} AND {_AREA}',
        grafana_bucket=DAY,
        columns=("mean_mbps", "share_at_target", "tests"),
    )


YEAR_QUERIES: Final[tuple[Query, ...]] = (
    _speed("download"),
    Query(
        name="year_upload",
        doc="Per day: mean_mbps (upload, mean of the tests), tests.",
        measurement="throughput_district_1d",
        select='SELECT sum("upload_mbps_sum") / sum("upload_mbps_n") AS "mean_mbps", '
        'sum("upload_mbps_n") AS "tests" '
        f'FROM "throughput_district_1d" WHERE $timeFilter AND {_TRUSTED_OK} AND {_AREA}',
        grafana_bucket=DAY,
        columns=("mean_mbps", "tests"),
    ),
    Query(
        name="year_runs",
        doc="Per day and status: runs (throughput results: ok, failed, skipped).",
        measurement="throughput_district_1d",
        select='SELECT sum("n") AS "runs" FROM "throughput_district_1d" '
        f"WHERE $timeFilter AND {_AREA}",
        fixed_group_by=("status",),
        grafana_bucket=DAY,
        columns=("runs",),
    ),
    Query(
        name="year_latency",
        doc="Per day, targets matching $target: rtt_mean_ms (mean of the runs' medians), "
        "loss_pct (lost / sent, %), runs.",
        measurement="latency_district_1d",
        select='SELECT sum("rtt_median_ms_sum") / sum("rtt_median_ms_n") AS "rtt_mean_ms", '
        '100 * (1 - sum("received_sum") / sum("sent_sum")) AS "loss_pct", '
        'sum("sent_n") AS "runs" '
        f'FROM "latency_district_1d" WHERE $timeFilter AND {_TRUSTED_OK} AND {_AREA} '
        'AND "target" =~ /^$target$/',
        grafana_bucket=DAY,
        columns=("rtt_mean_ms", "loss_pct", "runs"),
    ),
    Query(
        name="year_service",
        doc="Per day and service: availability (share of checks up, 0-1), checks.",
        measurement="service_district_1d",
        select='SELECT sum("up_01_sum") / sum("up_01_n") AS "availability", '
        'sum("up_01_n") AS "checks" '
        f'FROM "service_district_1d" WHERE $timeFilter AND "status" = \'ok\' AND {_AREA} '
        'AND "service" =~ /^$service$/',
        fixed_group_by=("service",),
        grafana_bucket=DAY,
        columns=("availability", "checks"),
    ),
    Query(
        name="year_ipv6",
        doc="Per day: works_share (IPv6 works end to end, share of runs), runs.",
        measurement="ipv6_district_1d",
        select='SELECT sum("works_01_sum") / sum("works_01_n") AS "works_share", '
        'sum("works_01_n") AS "runs" '
        f'FROM "ipv6_district_1d" WHERE $timeFilter AND "status" = \'ok\' AND {_AREA} '
        "AND \"check\" = ''",
        grafana_bucket=DAY,
        columns=("works_share", "runs"),
    ),
    Query(
        name="year_uptime",
        doc="Per day: uptime_share (hours with a health report / 24, mean over the probes "
        "that reported that day), probes.",
        measurement="health_district_1d",
        select='SELECT sum("hours_seen") / sum("probes") / 24 AS "uptime_share", '
        'sum("probes") AS "probes" '
        'FROM "health_district_1d" WHERE $timeFilter AND "district" =~ /^$district$/',
        grafana_bucket=DAY,
        columns=("uptime_share", "probes"),
    ),
)
