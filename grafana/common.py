"""What the probefleet dashboards share: their uids, the colour bands, links, variables."""

from __future__ import annotations

from typing import Final

from grafana.i18n import Words
from grafana.model import (
    JSON,
    access_variable,
    custom_variable,
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
    "radio": "probefleet-radio",
    "survey": "probefleet-survey",
}
# Technology (the radio_technology tag) -> generation, as radio-spec and the report say.
GENERATIONS: Final = (
    ("5G SA", "nr5g_sa"),
    ("5G NSA", "nr5g_nsa"),
    ("4G (LTE)", "lte"),
    ("3G (UMTS)", "umts"),
    ("2G (GSM)", "gsm"),
)
# Share of tests at target, coloured like the SamKnows/Ofcom bands (below 80 %, 80-95 %, 95+).
SHARE_BANDS: Final = [("red", None), ("orange", 0.8), ("green", 0.95)]


def links(w: Words) -> list[JSON]:
    """The menu of the other boards in the same language (tags: probefleet and the
    language)."""
    return [
        {
            "type": "dashboards",
            "tags": ["probefleet", w.lang],
            "asDropdown": True,
            "title": "probefleet",
            "includeVars": True,
            "keepTime": True,
        }
    ]


def place_variables(w: Words, *extra: str) -> list[JSON]:
    variables = [
        tag_variable(w, "district", "health"),
        tag_variable(w, "commune", "health", ["district"]),
        tag_variable(w, "probe", "health", ["district", "commune"]),
        tag_variable(w, "operator", "throughput", ["district", "commune"]),
        access_variable(w),
    ]
    measurement = {"service": "service", "target": "latency"}
    variables += [tag_variable(w, name, measurement[name]) for name in extra]
    return variables


def radio_variables(w: Words) -> list[JSON]:
    """The place, then the radio filters: technology (by generation) and the serving
    network (MCC+MNC, from the radio reads)."""
    return [
        tag_variable(w, "district", "health"),
        tag_variable(w, "commune", "health", ["district"]),
        tag_variable(w, "probe", "health", ["district", "commune"]),
        custom_variable(w, "technology", GENERATIONS),
        tag_variable(w, "mobile_operator", "radio", ["district", "commune"], key="radio_operator"),
    ]


def share_stat(
    w: Words, title: str, query: str, group_by: tuple[str, ...], description: str
) -> JSON:
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
