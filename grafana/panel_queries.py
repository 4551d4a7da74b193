"""The queries the dashboards show: the catalogue's (collector/queries.py), some of them in a
time-bucketed form, plus the few only a dashboard needs (a map, last-seen, health gauges).

The dashboard-only ones use the catalogue's own :class:`~collector.queries.Query` class and
conventions (``$timeFilter``, anchored-regex tag filters, ``status = 'ok'``), so a query can
move into the catalogue unchanged when the report wants it too. ``PANEL_QUERIES`` maps every
name a dashboard uses to its query; a name is never in both places.
"""

# Texts from constants only: S608 does not apply.
# ruff: noqa: S608
from __future__ import annotations

import dataclasses
from typing import Final

from probefleet.collector import queries
from probefleet.collector.queries import Query

from grafana.survey_queries import SURVEY_QUERIES
from grafana.year_queries import YEAR_QUERIES

_OK: Final = "\"status\" = 'ok'"
_AREA: Final = (
    '"district" =~ /^$district$/ AND "commune" =~ /^$commune$/ '
    'AND "access" =~ /^$access$/ AND "operator" =~ /^$operator$/'
)
_PLACE: Final = (
    '"district" =~ /^$district$/ AND "commune" =~ /^$commune$/ AND "probe" =~ /^$probe$/'
)
# The probe's own summary row of health (the per-interface rows carry an interface tag).
_SUMMARY: Final = "\"interface\" = ''"
ONLINE_WINDOW: Final = "10m"  # a probe that sent health within this is shown as reporting

# The fleet overview's "communes meeting" panel reads raw points up to this range (medians)
# and the daily rollups beyond: Grafana fills $__range_s, and a constant condition that is
# false makes InfluxDB return nothing for the other pair of queries.
LONG_RANGE_S: Final = 31 * 86_400
_SHORT: Final = f"$__range_s <= {LONG_RANGE_S}"
_LONG: Final = f"$__range_s > {LONG_RANGE_S}"
_COMMUNE_SHARES: Final = (
    'SELECT sum("meets_download_target_sum") / sum("meets_download_target_n") '
    'AS "share_at_target" FROM "throughput_1d" '
    f"WHERE $timeFilter AND {_LONG} AND {_OK} AND \"time_source\" != 'estimated' AND {_AREA} "
    'AND "meets_download_target_n" > 0 GROUP BY "commune", "access"'
)
# The radio filters (issue 21; names of /tmp/shared/radio-spec.md, collector/README.md).
_RADIO: Final = '"radio_technology" =~ /^$technology$/ AND "radio_operator" =~ /^$mobile_operator$/'
_TECH: Final = (  # share_<generation> -> the radio_technology condition
    ("share_5g", "=~ /^nr5g_/"),
    ("share_4g", "= 'lte'"),
    ("share_3g", "= 'umts'"),
    ("share_2g", "= 'gsm'"),
    ("share_none", "= ''"),
)


def _radio_shares() -> str:
    """Share of radio reads per generation, per commune and serving network, in one
    statement: one count per generation and the total, merged and then summed. InfluxDB
    1.x drops a row of a merged source whose series key and time equal another's, so the
    generations' counts keep the technology tag and the total the interface tag (keys
    that differ); the plain SELECT between them is needed for the sums to see every row."""
    where = f"WHERE $timeFilter AND {_PLACE} AND {_RADIO}"
    by = 'GROUP BY "commune", "radio_operator"'
    counts = [
        f'(SELECT count("registered") AS "{name}_n" FROM "radio" {where} '
        f'AND "radio_technology" {cond} {by}, "radio_technology")'
        for name, cond in _TECH
    ]
    counts.append(f'(SELECT count("registered") AS "reads" FROM "radio" {where} {by}, "interface")')
    names = [f'"{n}_n"' for n, _c in _TECH]
    merged = f'SELECT {", ".join(names)}, "reads" FROM {", ".join(counts)}'
    shares = ", ".join(f'sum("{n}_n") / sum("reads") AS "{n}"' for n, _c in _TECH)
    return f'SELECT {shares}, sum("reads") AS "reads" FROM ({merged})'


# Probes the collector has never heard from (in the inventory only) raise no offline alert.
_SEEN: Final = "\"state\" != 'never seen'"


def _over_time(name: str, new_name: str) -> Query:
    """A catalogue query bucketed by the dashboard's $__interval (same text otherwise)."""
    return dataclasses.replace(queries.CATALOGUE[name], name=new_name, grafana_bucket="$__interval")


_DASHBOARD: Final[tuple[Query, ...]] = (
    _over_time("download_summary", "download_over_time"),
    _over_time("upload_summary", "upload_over_time"),
    _over_time("latency_summary", "latency_over_time"),
    _over_time("service_availability", "service_over_time"),
    _over_time("ipv6_readiness", "ipv6_over_time"),
    Query(
        name="download_tests",
        doc="Completed downloads against the plan target (target_download_mbps): per "
        "$__interval the lowest and highest test (download_min_mbps, download_max_mbps) and "
        "their count, so a short range shows every test and a year at most ~1,000 points "
        "per series, never every row (issue 19: 212 k rows a year at 25 probes).",
        measurement="throughput",
        select='SELECT min("download_mbps") AS "download_min_mbps", '
        'max("download_mbps") AS "download_max_mbps", count("download_mbps") AS "tests", '
        'max("target_download_mbps") AS "target_download_mbps" FROM "throughput" '
        f"WHERE $timeFilter AND {_OK} AND \"time_source\" != 'estimated' AND {_AREA} "
        'AND "probe" =~ /^$probe$/',
        grafana_bucket="$__interval",
        columns=("download_min_mbps", "download_max_mbps", "tests", "target_download_mbps"),
    ),
    Query(
        name="communes_total",
        doc="communes: communes (per access type when grouped by access) with at least one "
        "completed download that has a target. Ranges up to LONG_RANGE_S only "
        "(communes_total_1d beyond).",
        measurement="throughput",
        select='SELECT count("median_mbps") AS "communes" FROM ('
        'SELECT median("download_mbps") AS "median_mbps", '
        'max("target_download_mbps") AS "target_mbps" FROM "throughput" '
        f"WHERE $timeFilter AND {_SHORT} AND {_OK} AND \"time_source\" != 'estimated' "
        f'AND {_AREA} AND "target_download_mbps" > 0 GROUP BY "commune", "access")',
        columns=("communes",),
    ),
    Query(
        name="communes_at_target",
        doc="communes: of communes_total, those whose median download is at or above the "
        "plan's target for the access type (i-Speed reports medians). Ranges up to "
        "LONG_RANGE_S only (communes_at_target_1d beyond).",
        measurement="throughput",
        select='SELECT count("median_mbps") AS "communes" FROM ('
        'SELECT median("download_mbps") AS "median_mbps", '
        'max("target_download_mbps") AS "target_mbps" FROM "throughput" '
        f"WHERE $timeFilter AND {_SHORT} AND {_OK} AND \"time_source\" != 'estimated' "
        f'AND {_AREA} AND "target_download_mbps" > 0 GROUP BY "commune", "access") '
        'WHERE "median_mbps" >= "target_mbps"',
        columns=("communes",),
    ),
    Query(
        name="communes_total_1d",
        doc="communes: as communes_total, from the daily rollups (throughput_1d), for "
        "ranges longer than LONG_RANGE_S (issue 19: 22 s at a year on raw points).",
        measurement="throughput_1d",
        select=f'SELECT count("share_at_target") AS "communes" FROM ({_COMMUNE_SHARES})',
        columns=("communes",),
    ),
    Query(
        name="communes_at_target_1d",
        doc="communes: of communes_total_1d, those where at least half the tests with a "
        "target met it: the rollups hold no median, but a median is at or above the "
        "target exactly when at least half the values are (InfluxDB's median of an even "
        "count averages the middle two: a commune with exactly half may differ).",
        measurement="throughput_1d",
        select=f'SELECT count("share_at_target") AS "communes" FROM ({_COMMUNE_SHARES}) '
        'WHERE "share_at_target" >= 0.5',
        columns=("communes",),
    ),
    Query(
        name="probe_location",
        doc="lat, lon: the probe's coordinates from the inventory (health summary rows "
        "carry them); group by probe and commune for the map.",
        measurement="health",
        select='SELECT last("lat_deg") AS "lat", last("lon_deg") AS "lon" FROM "health" '
        f"WHERE $timeFilter AND {_SUMMARY} AND {_PLACE}",
        columns=("lat", "lon"),
    ),
    Query(
        name="probes_reporting",
        doc=f"probes: probes that sent a health report in the last {ONLINE_WINDOW} "
        "(the time picker does not apply: this is 'now').",
        measurement="health",
        select='SELECT count("uptime_s") AS "probes" FROM ('
        'SELECT last("uptime_s") AS "uptime_s" FROM "health" '
        f"WHERE time > now() - {ONLINE_WINDOW} AND {_SUMMARY} AND {_PLACE} "
        'GROUP BY "probe")',
        columns=("probes",),
    ),
    Query(
        name="probes_known",
        doc="probes: probes that sent a health report within the time picker's range.",
        measurement="health",
        select='SELECT count("uptime_s") AS "probes" FROM ('
        'SELECT last("uptime_s") AS "uptime_s" FROM "health" '
        f'WHERE $timeFilter AND {_SUMMARY} AND {_PLACE} GROUP BY "probe")',
        columns=("probes",),
    ),
    Query(
        name="probe_last_seen",
        doc="Per probe, its latest health report: the time column is when it was measured "
        "(last seen; one selector, so InfluxDB returns that point's time) and uptime_s.",
        measurement="health",
        select='SELECT last("uptime_s") AS "uptime_s" '
        f'FROM "health" WHERE $timeFilter AND {_SUMMARY} AND {_PLACE}',
        columns=("uptime_s",),
    ),
    Query(
        name="probe_health",
        doc="Per probe, the latest value of each: temperature_c, cpu_pct, disk_used_pct, "
        "disk_full_01 (its disk refuses results), spool_depth (results waiting on the probe), "
        "spool_dropped (lost ever, all reasons), uptime_s. Several selectors: the time column "
        "is the period's start, not last seen (probe_last_seen has that).",
        measurement="health",
        select='SELECT last("uptime_s") AS "uptime_s", last("temperature_c") AS "temperature_c", '
        'last("cpu_pct") AS "cpu_pct", last("disk_used_pct") AS "disk_used_pct", '
        'last("disk_full_01") AS "disk_full_01", '
        'last("spool_depth") AS "spool_depth", last("spool_dropped") AS "spool_dropped" '
        f'FROM "health" WHERE $timeFilter AND {_SUMMARY} AND {_PLACE}',
        columns=(
            "uptime_s",
            "temperature_c",
            "cpu_pct",
            "disk_used_pct",
            "disk_full_01",
            "spool_depth",
            "spool_dropped",
        ),
    ),
    Query(
        name="storage_over_time",
        doc="Per probe over time: disk_full_01 (max: full at any time in the bucket), "
        "spool_held (results held in memory, max) and the results lost ever by reason "
        "(dropped_disk_full, dropped_spool_budget, dropped_unspoolable; max).",
        measurement="health",
        select='SELECT max("disk_full_01") AS "disk_full_01", max("spool_held") AS "spool_held", '
        'max("dropped_disk_full") AS "dropped_disk_full", '
        'max("dropped_spool_budget") AS "dropped_spool_budget", '
        'max("dropped_unspoolable") AS "dropped_unspoolable" '
        f'FROM "health" WHERE $timeFilter AND {_SUMMARY} AND {_PLACE}',
        grafana_bucket="$__interval",
        columns=(
            "disk_full_01",
            "spool_held",
            "dropped_disk_full",
            "dropped_spool_budget",
            "dropped_unspoolable",
        ),
    ),
    Query(
        name="health_over_time",
        doc="Per probe over time: temperature_c (max), spool_depth (max), cpu_pct (mean).",
        measurement="health",
        select='SELECT max("temperature_c") AS "temperature_c", '
        'max("spool_depth") AS "spool_depth", mean("cpu_pct") AS "cpu_pct" '
        f'FROM "health" WHERE $timeFilter AND {_SUMMARY} AND {_PLACE}',
        grafana_bucket="$__interval",
        columns=("temperature_c", "spool_depth", "cpu_pct"),
    ),
    Query(
        name="data_budget",
        doc="Per probe and metered interface: budget_used_pct, budget_used_bytes and "
        "budget_limit_bytes of the month, from the latest health report.",
        measurement="health",
        select='SELECT last("budget_used_pct") AS "budget_used_pct", '
        'last("budget_used_bytes") AS "budget_used_bytes", '
        'last("budget_limit_bytes") AS "budget_limit_bytes" FROM "health" '
        'WHERE $timeFilter AND "interface" != \'\' AND "budget_limit_bytes" > 0 '
        f"AND {_PLACE}",
        fixed_group_by=("interface",),
        columns=("budget_used_pct", "budget_used_bytes", "budget_limit_bytes"),
    ),
    Query(
        name="dns_time",
        doc="DNS resolution: time_median_ms per resolver and record type, answered "
        "(queries with a time), queries.",
        measurement="dns",
        select='SELECT median("time_ms") AS "time_median_ms", count("time_ms") AS "answered", '
        f'count("seq") AS "queries" FROM "dns" WHERE $timeFilter AND {_OK} AND {_AREA} '
        'AND "probe" =~ /^$probe$/',
        fixed_group_by=("resolver", "rrtype"),
        columns=("time_median_ms", "answered", "queries"),
    ),
    Query(
        name="ipv6_checks",
        doc="IPv6 check rows per check: pass_share (0-1), rtt_v6_ms and rtt_v4_ms (median "
        "TCP connect times), checks.",
        measurement="ipv6",
        select='SELECT mean("passed_01") AS "pass_share", median("rtt_v6_ms") AS "rtt_v6_ms", '
        'median("rtt_v4_ms") AS "rtt_v4_ms", count("passed_01") AS "checks" FROM "ipv6" '
        f"WHERE $timeFilter AND {_OK} AND {_AREA} AND \"check\" != ''",
        fixed_group_by=("check",),
        columns=("pass_share", "rtt_v6_ms", "rtt_v4_ms", "checks"),
    ),
    Query(
        name="runs_failed",
        doc="runs: results per measurement kind that failed (status failed), for the "
        "health dashboard's error rate; one statement per kind.",
        measurement="throughput",
        select='SELECT count("seq") AS "runs" FROM "throughput", "latency", "dns", "ipv6", '
        '"service" WHERE $timeFilter AND "status" = \'failed\' AND '
        '"district" =~ /^$district$/ AND "commune" =~ /^$commune$/ AND "probe" =~ /^$probe$/',
        columns=("runs",),
    ),
    # --- radio context (issue 21) ----------------------------------------------------------
    Query(
        name="radio_download",
        doc="Mobile downloads with their radio context, one row per probe, technology and "
        "$__interval: download_mbps, radio_rsrp_dbm, radio_snr_db (means of the tests in "
        "the interval: one test per row over a few days) and tests.",
        measurement="throughput",
        select='SELECT mean("download_mbps") AS "download_mbps", '
        'mean("radio_rsrp_dbm") AS "radio_rsrp_dbm", mean("radio_snr_db") AS "radio_snr_db", '
        'count("download_mbps") AS "tests" FROM "throughput" '
        f"WHERE $timeFilter AND {_OK} AND \"time_source\" != 'estimated' "
        f"AND \"access\" = 'mobile' AND {_PLACE} AND {_RADIO}",
        fixed_group_by=("probe", "radio_technology"),
        grafana_bucket="$__interval",
        columns=("download_mbps", "radio_rsrp_dbm", "radio_snr_db", "tests"),
    ),
    Query(
        name="radio_technology_share",
        doc="Per commune and serving network (radio_operator, MCC+MNC): the share of radio "
        "reads (0-1) on 5G (NSA or SA), 4G, 3G, 2G and without a technology (not "
        "registered), and reads. Reads are periodic: the share of reads is the share of "
        "time. Null: no read on that generation.",
        measurement="radio",
        select=_radio_shares(),
        fixed_group_by=("commune", "radio_operator"),
        columns=(*(n for n, _c in _TECH), "reads"),
    ),
    Query(
        name="radio_signal",
        doc="Per probe and $__interval: radio_rsrp_dbm and radio_snr_db (means of the radio "
        "reads), radio_rsrp_min_dbm (the weakest read).",
        measurement="radio",
        select='SELECT mean("radio_rsrp_dbm") AS "radio_rsrp_dbm", '
        'min("radio_rsrp_dbm") AS "radio_rsrp_min_dbm", '
        'mean("radio_snr_db") AS "radio_snr_db" FROM "radio" '
        f"WHERE $timeFilter AND {_PLACE} AND {_RADIO}",
        fixed_group_by=("probe",),
        grafana_bucket="$__interval",
        columns=("radio_rsrp_dbm", "radio_rsrp_min_dbm", "radio_snr_db"),
    ),
    # --- the collector's view: presence and self-metrics (collector/README.md) -------------
    Query(
        name="presence_now",
        doc="Per probe, the collector's presence verdict (latest presence point): state "
        "(online, offline, silent, never seen), online_01, last_seen_age_s (s since the last "
        "sign of life), line_up_01, last_test_ok_01, spool_depth (from its latest health).",
        measurement="presence",
        select='SELECT last("state") AS "state", last("online_01") AS "online_01", '
        'last("last_seen_age_s") AS "last_seen_age_s", last("line_up_01") AS "line_up_01", '
        'last("last_test_ok_01") AS "last_test_ok_01", last("spool_depth") AS "spool_depth" '
        f'FROM "presence" WHERE $timeFilter AND {_PLACE}',
        columns=(
            "state",
            "online_01",
            "last_seen_age_s",
            "line_up_01",
            "last_test_ok_01",
            "spool_depth",
        ),
    ),
    Query(
        name="probes_online",
        doc="online, offline: probes the collector's latest presence point calls online / "
        "offline or silent (probes never seen are left out).",
        measurement="presence",
        select='SELECT sum("online_01") AS "online", count("online_01") - sum("online_01") '
        'AS "offline" FROM (SELECT last("online_01") AS "online_01" FROM "presence" '
        f'WHERE $timeFilter AND {_SEEN} AND {_PLACE} GROUP BY "probe")',
        columns=("online", "offline"),
    ),
    Query(
        name="presence_over_time",
        doc="probes_online: probes online per bucket (the latest presence point of each "
        "probe in the bucket), over time.",
        measurement="presence",
        select='SELECT sum("online_01") AS "probes_online" FROM (SELECT last("online_01") '
        f'AS "online_01" FROM "presence" WHERE $timeFilter AND {_SEEN} AND {_PLACE} '
        'GROUP BY time($__interval), "probe")',
        grafana_bucket="$__interval",
        columns=("probes_online",),
    ),
    Query(
        name="collector_flow",
        doc="The collector's counters per bucket (sums over collectors and intervals): "
        "received, stored, rejected (dead-lettered messages), duplicates, seqs_lost (gaps "
        "given up).",
        measurement="collector",
        select='SELECT sum("received") AS "received", sum("stored") AS "stored", '
        'sum("rejected") AS "rejected", sum("duplicates") AS "duplicates", '
        'sum("seqs_lost") AS "seqs_lost" FROM "collector" WHERE $timeFilter',
        grafana_bucket="$__interval",
        columns=("received", "stored", "rejected", "duplicates", "seqs_lost"),
    ),
    Query(
        name="collector_levels",
        doc="The collector's levels per bucket (max): lag_max_s (measured to durable), "
        "write_latency_max_ms (per InfluxDB write), queue_depth (received, not yet "
        "acknowledged), spool_points (local spool), gaps_open (seqs still asked for).",
        measurement="collector",
        select='SELECT max("lag_max_s") AS "lag_max_s", '
        'max("write_latency_max_ms") AS "write_latency_max_ms", '
        'max("queue_depth") AS "queue_depth", max("spool_points") AS "spool_points", '
        'max("gaps_open") AS "gaps_open" FROM "collector" WHERE $timeFilter',
        grafana_bucket="$__interval",
        columns=("lag_max_s", "write_latency_max_ms", "queue_depth", "spool_points", "gaps_open"),
    ),
    Query(
        name="collector_behind",
        doc="How far behind the broker's queue each collector is (lag_s: the round trip of "
        "a ping it sends itself, max per bucket) and the results it holds in memory (held, "
        "bounded by its receive_maximum).",
        measurement="collector",
        select='SELECT max("lag_s") AS "lag_s", max("held") AS "held" FROM "collector" '
        "WHERE $timeFilter",
        fixed_group_by=("collector",),
        grafana_bucket="$__interval",
        columns=("lag_s", "held"),
    ),
    Query(
        name="dead_letters",
        doc="rejected (messages) and points_rejected (points InfluxDB refused) that went to "
        "the dead letters in the period: the collector writes no count of the dead-letter "
        "table itself; list them with `probe-collector deadletters`.",
        measurement="collector",
        select='SELECT sum("rejected") AS "rejected", sum("points_rejected") AS "points_rejected" '
        'FROM "collector" WHERE $timeFilter',
        columns=("rejected", "points_rejected"),
    ),
)

DASHBOARD_ONLY: Final[dict[str, Query]] = {
    q.name: q for q in (*_DASHBOARD, *YEAR_QUERIES, *SURVEY_QUERIES)
}
PANEL_QUERIES: Final[dict[str, Query]] = {**queries.grafana_queries(), **DASHBOARD_ONLY}
if len(PANEL_QUERIES) != len(queries.grafana_queries()) + len(DASHBOARD_ONLY):
    raise RuntimeError("a dashboard query reuses a catalogue name: rename it")
