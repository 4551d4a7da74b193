"""The per-commune dashboards (Commune, Compliance, IPv6 readiness) and the list of all five,
each with a stable uid (links and bookmarks rely on it; grafana/common.py).

Every panel's query is a named entry of :data:`grafana.panel_queries.PANEL_QUERIES` — the
catalogue the annual report also runs — grouped by the tags the panel needs."""

from __future__ import annotations

from probefleet.collector.inventory import TargetsFile

from grafana.common import SHARE_BANDS, UIDS, links, place_variables, share_stat
from grafana.fleet_boards import DISK_FULL_COLUMN, fleet_health, fleet_overview
from grafana.model import (
    JSON,
    alert_annotations,
    dashboard,
    panel,
    peak_hours_region,
    row,
    target,
    threshold_line,
)
from grafana.year_board import year


def commune() -> JSON:
    speed = {"custom": {"drawStyle": "points", "pointSize": 5}}
    down = panel(
        "timeseries",
        "Download per test against the target (lowest and highest per interval)",
        [target("download_tests", ("probe", "access"))],
        unit="Mbits",
        description="Each point: the lowest or the highest completed download in its time "
        "interval (one test per point over a few days; over a year the spread per interval). "
        "The line: the plan's target for the probe's access type.",
        overrides=[
            threshold_line("target_download_mbps"),
            {
                "matcher": {"id": "byRegexp", "options": "^tests.*"},
                "properties": [
                    {
                        "id": "custom.hideFrom",
                        "value": {"viz": True, "legend": True, "tooltip": False},
                    }
                ],
            },
        ],
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
                "table",
                "Probe health",
                [target("probe_health", ("probe",), table=True)],
                width=8,
                overrides=[DISK_FULL_COLUMN],
            ),
        ],
        description="One commune (or several) in detail: every test against the target line, "
        "latency, DNS, IPv6, the provincial services and the probe's health.",
        variables=place_variables("service", "target"),
        annotations=[peak_hours_region(), alert_annotations()],
        time_from="now-2d",
        links=links(),
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
            share_stat(
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
        variables=place_variables(),
        annotations=[peak_hours_region()],
        time_from="now-30d",
        links=links(),
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
        variables=place_variables(),
        time_from="now-30d",
        links=links(),
    )


def all_dashboards(targets: TargetsFile) -> dict[str, JSON]:
    """File stem -> dashboard JSON."""
    return {
        "fleet-overview": fleet_overview(targets),
        "commune": commune(),
        "compliance": compliance(targets),
        "ipv6-readiness": ipv6(targets),
        "fleet-health": fleet_health(),
        "year": year(),
    }
