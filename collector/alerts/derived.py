"""Values alert rules read that no single stored field holds: the ``radio`` kind's service
state and its fallback below 4G, from its ``registered`` field and ``radio_technology`` tag.

A rule names one of these as its ``field`` (``measurement = "radio"``); the value is
computed from the point as the collector wrote it (names in /tmp/shared radio spec and
collector/README.md), so a rule and a dashboard read the same thing. A read that carries no
``registered`` field (a "skipped" result: no ModemManager or no modem; a failed read) gives
no value at all: it never pages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from probefleet.collector.lineproto import FieldValue

Tags = Mapping[str, str]
Fields = Mapping[str, FieldValue]
Derive = Callable[[Tags, Fields], float | None]
# Below 4G: what the plan switches off (technology -> generation: gsm 2G, umts 3G).
FALLBACK_TECHNOLOGIES: Final = frozenset({"gsm", "umts"})


def _read(fields: Fields) -> bool | None:
    registered = fields.get("registered")
    return registered if isinstance(registered, bool) else None


def in_service_01(tags: Tags, fields: Fields) -> float | None:
    """1: registered (home or roaming) on a technology; 0: not registered, or no
    technology (the modem sees no network)."""
    registered = _read(fields)
    if registered is None:
        return None
    return float(registered and bool(tags.get("radio_technology")))


def below_4g_01(tags: Tags, fields: Fields) -> float | None:
    """1: on 2G/3G; 0: on 4G/5G; none while there is no technology at all (that is
    mobile_service_lost's, and a fallback goes on until 4G/5G is back)."""
    technology = tags.get("radio_technology")
    if _read(fields) is None or not technology:
        return None
    return float(technology in FALLBACK_TECHNOLOGIES)


DERIVED: Final[dict[tuple[str, str], Derive]] = {
    ("radio", "in_service_01"): in_service_01,
    ("radio", "below_4g_01"): below_4g_01,
}
# The radio kind's numeric fields a rule may name directly (the spec's `radio_<name>`).
RADIO_FIELDS: Final = frozenset(
    {"registered"}
    | {f"radio_{n}" for n in ("signal_quality_pct", "rssi_dbm", "rsrp_dbm", "rsrq_db",
                              "snr_db", "nr_rsrp_dbm", "nr_rsrq_db", "nr_snr_db", "rscp_dbm",
                              "ecio_db")}
    | {name for measurement, name in DERIVED if measurement == "radio"}
)  # fmt: skip


def value_of(measurement: str, field: str, tags: Tags, fields: Fields) -> float | None:
    """The number a rule on ``field`` reads from a point; None: the point has none."""
    derive = DERIVED.get((measurement, field))
    if derive is not None:
        return derive(tags, fields)
    value = fields.get(field)
    if value is None or isinstance(value, str):
        return None
    return float(value)
