"""The Year board: every panel on the daily rollups, for ranges of weeks to years (the other
boards read raw points and are meant for up to a month)."""

from __future__ import annotations

from grafana.common import SHARE_BANDS, UIDS, links, place_variables
from grafana.model import JSON, dashboard, panel, row, target

_SHARE_RIGHT = {
    "matcher": {"id": "byRegexp", "options": ".*share.*"},
    "properties": [
        {"id": "unit", "value": "percentunit"},
        {"id": "custom.axisPlacement", "value": "right"},
    ],
}
_HIDE_COUNTS = {
    "matcher": {"id": "byRegexp", "options": ".*(tests|runs|checks|probes).*"},
    "properties": [
        {"id": "custom.hideFrom", "value": {"viz": True, "legend": True, "tooltip": False}}
    ],
}


def year() -> JSON:
    return dashboard(
        UIDS["year"],
        "probefleet — Year",
        [
            row("Speed (daily rollups)"),
            panel(
                "timeseries",
                "Download per day: mean and share at target",
                [target("year_download", ("access",))],
                unit="Mbits",
                overrides=[_SHARE_RIGHT, _HIDE_COUNTS],
            ),
            panel(
                "timeseries",
                "Upload per day (mean)",
                [target("year_upload", ("access",))],
                unit="Mbits",
                overrides=[_HIDE_COUNTS],
            ),
            panel(
                "timeseries",
                "Throughput runs per day by status",
                [target("year_runs", ())],
                width=24,
            ),
            row("Latency, services, IPv6, uptime"),
            panel(
                "timeseries",
                "Latency per day: mean of the runs' medians, loss",
                [target("year_latency", ("target",))],
                unit="ms",
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": ".*loss_pct.*"},
                        "properties": [
                            {"id": "unit", "value": "percent"},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    },
                    _HIDE_COUNTS,
                ],
            ),
            panel(
                "timeseries",
                "Service availability per day",
                [target("year_service", ())],
                unit="percentunit",
                min_value=0,
                max_value=1,
                thresholds=SHARE_BANDS,
                overrides=[_HIDE_COUNTS],
            ),
            panel(
                "timeseries",
                "IPv6 works per day (share of runs)",
                [target("year_ipv6", ())],
                unit="percentunit",
                min_value=0,
                max_value=1,
                overrides=[_HIDE_COUNTS],
            ),
            panel(
                "timeseries",
                "Probe uptime per day (hours reporting / 24)",
                [target("year_uptime", ())],
                unit="percentunit",
                min_value=0,
                max_value=1,
                overrides=[_HIDE_COUNTS],
            ),
        ],
        description="A year at a glance from the daily rollups (one point per probe and day): "
        "means and shares; the annual report gives medians. For a day or a week, use the "
        "Commune and Compliance boards (raw points).",
        variables=place_variables("service", "target"),
        time_from="now-1y",
        links=links(),
    )
