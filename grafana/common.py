"""What the probefleet dashboards share: their uids, the colour bands, links, variables."""

from __future__ import annotations

from typing import Final

from grafana.model import (
    JSON,
    access_variable,
    panel,
    tag_variable,
    target,
)

UIDS: Final = {
    "fleet": "probefleet-fleet-overview",
    "commune": "probefleet-commune",
    "compliance": "probefleet-compliance",
    "ipv6": "probefleet-ipv6",
    "health": "probefleet-fleet-health",
    "year": "probefleet-year",
}
# Share of tests at target, coloured like the SamKnows/Ofcom bands (below 80 %, 80-95 %, 95+).
SHARE_BANDS: Final = [("red", None), ("orange", 0.8), ("green", 0.95)]


def links() -> list[JSON]:
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


def place_variables(*extra: str) -> list[JSON]:
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


def share_stat(title: str, query: str, group_by: tuple[str, ...], description: str) -> JSON:
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
