"""The fleet-wide dashboards: Fleet overview (map, reporting, communes at target, alerts as
annotations) and Fleet health (presence, last seen, spool, temperature, budgets, the
collector's own metrics and dead letters)."""

from __future__ import annotations

from probefleet.collector.inventory import TargetsFile

from grafana.common import SHARE_BANDS, UIDS, links, place_variables, share_stat
from grafana.model import (
    JSON,
    alert_annotations,
    dashboard,
    panel,
    row,
    target,
)


def fleet_overview(targets: TargetsFile) -> JSON:
    fixed, mobile = targets.fixed.download_mbps, targets.mobile.download_mbps
    geomap = panel(
        "geomap",
        "Probes, coloured by the share of tests at target",
        [
            target("probe_location", ("probe", "commune"), table=True),
            target("download_summary", ("probe",), ref="B", table=True),
        ],
        description="Each probe at its inventory coordinates; colour = share of its completed "
        f"downloads at or above the plan's target ({fixed:g} Mbit/s fixed, "
        f"{mobile:g} Mbit/s mobile).",
        unit="percentunit",
        thresholds=SHARE_BANDS,
        min_value=0,
        max_value=1,
        transformations=[
            {"id": "joinByField", "options": {"byField": "probe", "mode": "outer"}},
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "Time 1": True, "Time 2": True}},
            },
        ],
        options={
            "view": {"id": "coords", "lat": 11.0, "lon": 107.2, "zoom": 8},
            "controls": {"showZoom": True, "mouseWheelZoom": True},
            "basemap": {"type": "default", "name": "Basemap"},
            "layers": [
                {
                    "type": "markers",
                    "name": "Probes",
                    "tooltip": True,
                    "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                    "config": {
                        "showLegend": True,
                        "style": {
                            "size": {"fixed": 9},
                            "color": {"field": "share_at_target", "fixed": "grey"},
                            "text": {"mode": "field", "field": "commune"},
                        },
                    },
                }
            ],
        },
        width=14,
        height=16,
    )
    reporting = panel(
        "stat",
        "Probes reporting now / in the period",
        [target("probes_reporting"), target("probes_known", ref="B")],
        description="Probes that sent a health report in the last 10 minutes (online), and "
        "all probes seen in the selected period: the difference is offline.",
        options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
        width=10,
        height=4,
    )
    communes = panel(
        "stat",
        f"Communes meeting {mobile:g}/{fixed:g} Mbit/s (median download)",
        [target("communes_at_target", ("access",)), target("communes_total", ("access",), ref="B")],
        description="Communes whose median download in the period is at or above the target "
        "for the access type, out of those measured: 'at target' / 'measured' per access type.",
        options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
        width=10,
        height=4,
    )
    share = share_stat(
        "Share of tests at target",
        "download_summary",
        ("access",),
        "mean(meets_download_target): completed downloads at or above the target, per access type.",
    )
    share["gridPos"]["w"] = 10
    worst = panel(
        "table",
        "Worst communes (share of tests at target, lowest first)",
        [target("download_summary", ("commune", "access"), table=True)],
        unit="percentunit",
        transformations=[
            {"id": "sortBy", "options": {"sort": [{"field": "share_at_target", "desc": False}]}},
            {"id": "limit", "options": {"limitField": 15}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
        overrides=[
            {
                "matcher": {"id": "byRegexp", "options": "^(median|p10)_mbps$"},
                "properties": [{"id": "unit", "value": "Mbits"}],
            },
            {
                "matcher": {"id": "byRegexp", "options": "^tests.*"},
                "properties": [{"id": "unit", "value": "none"}],
            },
        ],
        width=10,
        height=8,
    )
    return dashboard(
        UIDS["fleet"],
        "probefleet — Fleet overview",
        [geomap, reporting, communes, share, worst],
        description="Where the probes are, whether they report, and how the communes compare "
        "with the plan's download targets.",
        variables=place_variables(),
        links=links(),
        annotations=[alert_annotations()],
    )


# The health table's disk_full_01 column: "DISK FULL" in red, "ok" in green.
DISK_FULL_COLUMN: JSON = {
    "matcher": {"id": "byName", "options": "disk_full_01"},
    "properties": [
        {"id": "displayName", "value": "disk"},
        {
            "id": "mappings",
            "value": [
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "ok", "color": "green", "index": 0},
                        "1": {"text": "DISK FULL", "color": "red", "index": 1},
                    },
                }
            ],
        },
        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
    ],
}


def fleet_health() -> JSON:
    return dashboard(
        UIDS["health"],
        "probefleet — Fleet health",
        [
            row("Probes"),
            panel(
                "stat",
                "Probes online / offline (collector's presence)",
                [target("probes_online")],
                description="Online: the probe's status says so and it was heard within "
                "presence.offline_after_s. Offline includes silent (no Last Will, nothing "
                "heard). Probes never seen are left out.",
                thresholds=[("green", None)],
                options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
                width=8,
            ),
            panel(
                "table",
                "Presence: state, last seen, line up, last test ok, spool",
                [target("presence_now", ("probe", "commune"), table=True)],
                description="The collector's verdict per probe (latest presence point).",
                width=16,
                overrides=[
                    {
                        "matcher": {"id": "byName", "options": "last_seen_age_s"},
                        "properties": [
                            {"id": "displayName", "value": "last seen (s ago)"},
                            {"id": "unit", "value": "s"},
                        ],
                    },
                    {
                        "matcher": {"id": "byName", "options": "state"},
                        "properties": [
                            {
                                "id": "mappings",
                                "value": [
                                    {
                                        "type": "value",
                                        "options": {
                                            "online": {"color": "green", "index": 0},
                                            "offline": {"color": "red", "index": 1},
                                            "silent": {"color": "orange", "index": 2},
                                        },
                                    }
                                ],
                            },
                            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                        ],
                    },
                ],
            ),
            panel(
                "timeseries",
                "Probes online over time",
                [target("presence_over_time", ())],
                width=24,
                height=6,
            ),
            panel(
                "table",
                "Last seen, temperature, spool (latest health report)",
                [
                    target("probe_last_seen", ("probe", "commune"), table=True),
                    target("probe_health", ("probe",), ref="B", table=True),
                ],
                width=24,
                # Last seen is the time of the last report (query A); B's time is not.
                transformations=[
                    {"id": "joinByField", "options": {"byField": "probe", "mode": "outer"}},
                    {
                        "id": "organize",
                        "options": {"excludeByName": {"Time 2": True, "uptime_s 2": True}},
                    },
                ],
                overrides=[
                    {
                        "matcher": {"id": "byName", "options": "Time 1"},
                        "properties": [
                            {"id": "displayName", "value": "last seen"},
                            {"id": "unit", "value": "dateTimeFromNow"},
                        ],
                    },
                    {
                        "matcher": {"id": "byName", "options": "temperature_c"},
                        "properties": [{"id": "unit", "value": "celsius"}],
                    },
                    {
                        "matcher": {"id": "byName", "options": "uptime_s"},
                        "properties": [{"id": "unit", "value": "s"}],
                    },
                    DISK_FULL_COLUMN,
                ],
            ),
            panel(
                "timeseries",
                "Storage: disk full, results held in memory, results lost (by reason)",
                [target("storage_over_time", ("probe",))],
                description="disk_full_01: the probe's disk refused results (they wait in "
                "memory, spool_held, and are spooled when it takes them again). dropped_*: "
                "results lost ever, per reason (counters that survive restarts). A health "
                "report measured while the disk is full arrives once it has room; the "
                "disk_full alert and the retained status tell of it at once.",
                width=24,
                height=6,
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": ".*disk_full_01.*"},
                        "properties": [
                            {"id": "custom.drawStyle", "value": "bars"},
                            {"id": "custom.axisPlacement", "value": "right"},
                            {"id": "max", "value": 1},
                        ],
                    }
                ],
            ),
            panel(
                "timeseries",
                "Temperature, spool depth, CPU",
                [target("health_over_time", ("probe",))],
                width=12,
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": ".*spool_depth.*"},
                        "properties": [{"id": "custom.axisPlacement", "value": "right"}],
                    }
                ],
            ),
            panel(
                "bargauge",
                "Mobile data budget used this month",
                [target("data_budget", ("probe",))],
                unit="percent",
                min_value=0,
                max_value=100,
                thresholds=[("green", None), ("orange", 80.0), ("red", 95.0)],
                options={
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "/budget_used_pct/"}
                },
                width=12,
            ),
            panel("timeseries", "Failed runs", [target("runs_failed", ())], width=12),
            row("Collector"),
            panel(
                "timeseries",
                "Collector: received, stored, rejected, duplicates, seqs lost",
                [target("collector_flow", ())],
                description="Per bucket, summed over collectors (self-metrics, measurement "
                "collector). rejected = messages dead-lettered at parse time.",
                width=12,
            ),
            panel(
                "timeseries",
                "Collector: lag, write latency, queue, spool, open gaps",
                [target("collector_levels", ())],
                description="lag_max_s: from measured to durable; write_latency_max_ms: per "
                "InfluxDB write; queue_depth: received, not yet acknowledged.",
                width=12,
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": "^lag_max_s.*"},
                        "properties": [{"id": "unit", "value": "s"}],
                    },
                    {
                        "matcher": {"id": "byRegexp", "options": "^write_latency_max_ms.*"},
                        "properties": [
                            {"id": "unit", "value": "ms"},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    },
                ],
            ),
            panel(
                "timeseries",
                "Collector behind the broker: lag and results held",
                [target("collector_behind")],
                description="lag_s: how far behind the broker's queue the collector is (the "
                "round trip of a ping it sends itself through that queue). Above 120 s the "
                "collector_lag alert fires and probe_offline does not page for probes that "
                "are merely silent; presence adds this lag to offline_after. held: results "
                "in memory, not yet handled (at most its receive_maximum).",
                width=12,
                thresholds=[("green", None), ("orange", 60.0), ("red", 120.0)],
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": "^lag_s.*"},
                        "properties": [{"id": "unit", "value": "s"}],
                    },
                    {
                        "matcher": {"id": "byRegexp", "options": "^held.*"},
                        "properties": [{"id": "custom.axisPlacement", "value": "right"}],
                    },
                ],
            ),
            panel(
                "stat",
                "Dead letters in the period",
                [target("dead_letters", ())],
                thresholds=[("green", None), ("red", 1.0)],
                width=12,
                description="Refused messages (rejected) and points InfluxDB refused "
                "(points_rejected): `probe-collector deadletters` lists them with the reason.",
                options={"reduceOptions": {"calcs": ["sum"]}, "colorMode": "background"},
            ),
        ],
        description="Is the fleet itself healthy: last seen, spool depth, temperature, data "
        "budgets, the collector's own metrics and its dead letters.",
        variables=place_variables(),
        time_from="now-24h",
        links=links(),
    )
