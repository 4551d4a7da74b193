"""The five probefleet dashboards, each with a stable uid (links and bookmarks rely on it).

Every panel's query is a named entry of :data:`grafana.panel_queries.PANEL_QUERIES` — the
catalogue the annual report also runs — grouped by the tags the panel needs."""

from __future__ import annotations

from typing import Final

from collector.inventory import TargetsFile
from grafana.model import (
    JSON,
    access_variable,
    dashboard,
    panel,
    peak_hours_region,
    row,
    tag_variable,
    target,
    threshold_line,
)

UIDS: Final = {
    "fleet": "probefleet-fleet-overview",
    "commune": "probefleet-commune",
    "compliance": "probefleet-compliance",
    "ipv6": "probefleet-ipv6",
    "health": "probefleet-fleet-health",
}
# Share of tests at target, coloured like the SamKnows/Ofcom bands (below 80 %, 80-95 %, 95+).
SHARE_BANDS: Final = [("red", None), ("orange", 0.8), ("green", 0.95)]


def _links() -> list[JSON]:
    return [
        {
            "type": "dashboards",
            "tags": ["probefleet"],
            "asDropdown": True,
            "title": "probefleet",
            "includeVars": True,
            "keepTime": True,
        }
    ]


def _place_variables(*extra: str) -> list[JSON]:
    variables = [
        tag_variable("district", "health"),
        tag_variable("commune", "health", ["district"]),
        tag_variable("probe", "health", ["district", "commune"]),
        tag_variable("operator", "throughput", ["district", "commune"]),
        access_variable(),
    ]
    measurement = {"service": "service", "target": "latency"}
    variables += [tag_variable(name, measurement[name]) for name in extra]
    return variables


def _share_stat(title: str, query: str, group_by: tuple[str, ...], description: str) -> JSON:
    return panel(
        "stat",
        title,
        [target(query, group_by)],
        description=description,
        unit="percentunit",
        thresholds=SHARE_BANDS,
        min_value=0,
        max_value=1,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "/share_at_target/"},
            "colorMode": "background",
            "textMode": "value_and_name",
        },
        width=8,
        height=5,
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
    share = _share_stat(
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
        variables=_place_variables(),
        links=_links(),
    )


def commune() -> JSON:
    speed = {"custom": {"drawStyle": "points", "pointSize": 5}}
    down = panel(
        "timeseries",
        "Download per test against the target",
        [target("download_tests", ("probe", "access"))],
        unit="Mbits",
        overrides=[threshold_line("target_download_mbps")],
        options={"legend": {"displayMode": "table", "placement": "bottom"}},
        width=24,
    )
    down["fieldConfig"]["defaults"].update(speed)
    return dashboard(
        UIDS["commune"],
        "probefleet — Commune",
        [
            row("Speed"),
            down,
            panel(
                "timeseries",
                "Download: median and share at target",
                [target("download_over_time", ("access",))],
                unit="Mbits",
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": ".*share_at_target.*"},
                        "properties": [
                            {"id": "unit", "value": "percentunit"},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    },
                    {
                        "matcher": {"id": "byRegexp", "options": ".*tests.*"},
                        "properties": [
                            {
                                "id": "custom.hideFrom",
                                "value": {"viz": True, "legend": True, "tooltip": False},
                            }
                        ],
                    },
                ],
            ),
            panel(
                "timeseries",
                "Upload (median)",
                [target("upload_over_time", ("access",))],
                unit="Mbits",
            ),
            row("Latency"),
            panel(
                "timeseries",
                "Latency, jitter and loss",
                [target("latency_over_time", ("target",))],
                unit="ms",
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": ".*loss_pct.*"},
                        "properties": [
                            {"id": "unit", "value": "percent"},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    }
                ],
            ),
            panel(
                "table", "DNS resolution", [target("dns_time", ("probe",), table=True)], unit="ms"
            ),
            row("IPv6, services, health"),
            panel(
                "timeseries",
                "IPv6 works (share of runs)",
                [target("ipv6_over_time", ("probe",))],
                unit="percentunit",
                min_value=0,
                max_value=1,
                width=8,
            ),
            panel(
                "table",
                "Provincial services",
                [target("service_availability", (), table=True)],
                unit="percentunit",
                width=8,
            ),
            panel(
                "timeseries",
                "Provincial services: availability over time",
                [target("service_over_time", ("commune",))],
                unit="percentunit",
                min_value=0,
                max_value=1,
                width=24,
            ),
            panel(
                "table", "Probe health", [target("probe_health", ("probe",), table=True)], width=8
            ),
        ],
        description="One commune (or several) in detail: every test against the target line, "
        "latency, DNS, IPv6, the provincial services and the probe's health.",
        variables=_place_variables("service", "target"),
        annotations=[peak_hours_region()],
        time_from="now-2d",
        links=_links(),
    )


def compliance(targets: TargetsFile) -> JSON:
    fixed, mobile = targets.fixed.download_mbps, targets.mobile.download_mbps
    table_opts = {"cellHeight": "sm", "showHeader": True}
    by: list[JSON] = []
    for tag in ("district", "operator", "access"):
        by.append(
            panel(
                "table",
                f"Download by {tag}: median, 10th percentile, share at target",
                [
                    target(
                        "download_summary",
                        (tag, "access") if tag != "access" else ("access",),
                        table=True,
                    )
                ],
                options=table_opts,
                overrides=[
                    {
                        "matcher": {"id": "byName", "options": "share_at_target"},
                        "properties": [
                            {"id": "unit", "value": "percentunit"},
                            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                            {
                                "id": "thresholds",
                                "value": {
                                    "mode": "absolute",
                                    "steps": [{"color": c, "value": v} for c, v in SHARE_BANDS],
                                },
                            },
                        ],
                    },
                    {
                        "matcher": {"id": "byRegexp", "options": "^(median|p10)_mbps$"},
                        "properties": [{"id": "unit", "value": "Mbits"}],
                    },
                ],
                transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
                width=12 if tag != "access" else 24,
            )
        )
    return dashboard(
        UIDS["compliance"],
        "probefleet — Compliance with the plan's targets",
        [
            _share_stat(
                "Share of tests at target",
                "download_summary",
                ("access",),
                f"Completed downloads at or above {fixed:g} Mbit/s (fixed) or "
                f"{mobile:g} Mbit/s (mobile), as FCC/Ofcom report it.",
            ),
            panel(
                "stat",
                "Median download",
                [target("download_summary", ("access",))],
                unit="Mbits",
                description="The figure i-Speed publishes: the median.",
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/median_mbps/"}},
                width=8,
                height=5,
            ),
            panel(
                "stat",
                "Median upload",
                [target("upload_summary", ("access",))],
                unit="Mbits",
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/median_mbps/"}},
                width=8,
                height=5,
            ),
            *by,
            panel(
                "timeseries",
                "Download by hour of day (province time): median and tests "
                "at target; 19:00-23:00 is the peak",
                [target("download_by_hour", ("access",))],
                unit="Mbits",
                width=24,
                description="Hourly medians over time. The report folds them into the 24 "
                "hours of the day and reports the peak apart (download_peak).",
            ),
            panel(
                "table",
                "How the tests were made (method, server, IP version)",
                [target("throughput_method", (), table=True)],
                width=12,
            ),
            panel(
                "table",
                "Runs by status (ok, failed, skipped)",
                [target("throughput_runs", ("access",), table=True)],
                width=12,
            ),
        ],
        description="Medians and the share of tests at or above the plan's targets, by "
        "district, operator, access type and hour of day — the way i-Speed and the FCC report.",
        variables=_place_variables(),
        annotations=[peak_hours_region()],
        time_from="now-30d",
        links=_links(),
    )


def ipv6(targets: TargetsFile) -> JSON:
    expected = targets.ipv6.works_pct
    bands = [("red", None), ("green", expected / 100)] if expected else SHARE_BANDS
    return dashboard(
        UIDS["ipv6"],
        "probefleet — IPv6 readiness",
        [
            panel(
                "stat",
                "IPv6 capable / works (share of runs)",
                [target("ipv6_readiness", ())],
                unit="percentunit",
                thresholds=bands,
                min_value=0,
                max_value=1,
                width=8,
                height=6,
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/_share$/"}},
            ),
            panel(
                "table",
                "By commune",
                [target("ipv6_readiness", ("commune", "operator"), table=True)],
                unit="percentunit",
                width=16,
                height=10,
                transformations=[
                    {"id": "sortBy", "options": {"sort": [{"field": "works_share", "desc": False}]}}
                ],
            ),
            panel(
                "bargauge",
                "Checks passed (global address, route, AAAA, TCP, HTTP)",
                [target("ipv6_checks", ())],
                unit="percentunit",
                min_value=0,
                max_value=1,
                thresholds=SHARE_BANDS,
                width=12,
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/pass_share/"}},
            ),
            panel(
                "table",
                "TCP connect time, IPv6 against IPv4",
                [target("ipv6_checks", ("operator",), table=True)],
                unit="ms",
                width=12,
            ),
            panel(
                "timeseries",
                "IPv6 works over time, per commune",
                [target("ipv6_over_time", ("commune",))],
                unit="percentunit",
                width=24,
                min_value=0,
                max_value=1,
            ),
        ],
        description="The plan's IPv6 transition (section IV.1), commune by commune: global "
        "address and route (capable), end-to-end reachability (works), checks.",
        variables=_place_variables(),
        time_from="now-30d",
        links=_links(),
    )


def fleet_health() -> JSON:
    return dashboard(
        UIDS["health"],
        "probefleet — Fleet health",
        [
            row("Probes"),
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
            panel(
                "table",
                "Presence (collector's verdict: online, line up, last test ok)",
                [target("presence_now", ("probe",), table=True)],
                width=12,
            ),
            panel("timeseries", "Failed runs", [target("runs_failed", ())], width=12),
            row("Collector"),
            panel(
                "timeseries",
                "Collector: received, stored, rejected, duplicates",
                [target("collector_flow", ())],
                width=12,
            ),
            panel(
                "stat",
                "Dead letters in the period",
                [target("dead_letters", ())],
                thresholds=[("green", None), ("red", 1.0)],
                width=12,
                description="Refused messages/points: `probe-collector deadletters` lists "
                "them with the reason.",
                options={"reduceOptions": {"calcs": ["sum"]}, "colorMode": "background"},
            ),
        ],
        description="Is the fleet itself healthy: last seen, spool depth, temperature, data "
        "budgets, the collector's own metrics and its dead letters.",
        variables=_place_variables(),
        time_from="now-24h",
        links=_links(),
    )


def all_dashboards(targets: TargetsFile) -> dict[str, JSON]:
    """File stem -> dashboard JSON."""
    return {
        "fleet-overview": fleet_overview(targets),
        "commune": commune(),
        "compliance": compliance(targets),
        "ipv6-readiness": ipv6(targets),
        "fleet-health": fleet_health(),
    }
