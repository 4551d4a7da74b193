"""The mobile section's split by radio technology and operator (issue 21), from raw points.

The agent tags every result measured on a mobile interface with the radio context read from
the modem at the test's start (``radio_technology``, ``radio_operator``; collector/README.md).
Medians do not add up, so each split is its own statement: by technology, by operator, by
both. They always read the raw ``throughput`` points of mobile access, even when the rest of
the report comes from the rollups (``[report] source``), and have the same definition as
the report's mobile median (``download_summary``). Results without a radio context (older
agents, a probe without a modem reading) are a row of their own, never dropped. Usage::

    plan_radio(builder)        # adds the statements; the figures land in builder.radio
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from probefleet.collector import queries
from probefleet.collector.report.fetch import Row
from probefleet.collector.report.model import MobileRadio, RadioRow
from probefleet.kinds.radio import fields as radio_fields

if TYPE_CHECKING:
    from probefleet.collector.report.gather import _Builder

# The tags the collector writes (kinds/radio/fields.py): one name for a thing everywhere.
TECHNOLOGY_TAG: Final = radio_fields.TAGS["technology"]  # "radio_technology"
OPERATOR_TAG: Final = radio_fields.TAGS["operator_code"]  # "radio_operator"
# radio_technology values (core/wire.py Technology), in the report's order, as shown.
TECHNOLOGIES: Final = {
    "nr5g_sa": "5G SA",
    "nr5g_nsa": "5G NSA",
    "lte": "4G",
    "umts": "3G",
    "gsm": "2G",
}
# The Vietnamese networks by MCC+MNC; any other code is shown as it is.
OPERATORS: Final = {
    "45204": "Viettel",
    "45202": "VinaPhone",
    "45201": "MobiFone",
    "45205": "Vietnamobile",
}


def technology_label(code: str) -> str:
    """ "4G" for "lte"; an unknown value as it came; "" (no radio context) as ""."""
    return TECHNOLOGIES.get(code, code)


def operator_label(code: str) -> str:
    """ "Viettel (45204)"; an unknown code alone; "" (no radio context) as ""."""
    name = OPERATORS.get(code)
    return f"{name} ({code})" if name else code


def _rank(value: str, known: list[str]) -> int:
    """Known values in their order, then unknown ones, then "" (no radio context) last."""
    return known.index(value) if value in known else len(known) + (not value)


def _order(row: RadioRow) -> tuple[int, int, str, str]:
    return (
        _rank(row.operator_code, list(OPERATORS)),
        _rank(row.technology, list(TECHNOLOGIES)),
        row.operator_code,
        row.technology,
    )


def _query(name: str, tags: tuple[str, ...]) -> queries.Query:
    base = queries.CATALOGUE["download_summary"]
    return dataclasses.replace(
        base,
        name=name,
        doc=f"download_summary of mobile tests grouped by {', '.join(tags)} (raw points)",
        fixed_group_by=tags,
    )


RADIO_QUERIES: Final = {
    q.name: q
    for q in (
        _query("mobile_download_by_technology", (TECHNOLOGY_TAG,)),
        _query("mobile_download_by_operator", (OPERATOR_TAG,)),
        _query("mobile_download_by_operator_technology", (OPERATOR_TAG, TECHNOLOGY_TAG)),
    )
}


def plan_radio(builder: _Builder) -> None:
    """Three statements over raw mobile throughput points; figures in ``builder.radio``."""
    for name, attr in (
        ("mobile_download_by_technology", "by_technology"),
        ("mobile_download_by_operator", "by_operator"),
        ("mobile_download_by_operator_technology", "by_operator_technology"),
    ):

        def handle(rows: list[Row], attr: str = attr) -> None:
            for row in rows:
                province = row.tags.get("province", "")
                if not province:
                    continue  # probes missing from the inventory are in no area
                split = builder.radio.setdefault(province, MobileRadio(province))
                getattr(split, attr).append(
                    RadioRow(
                        technology=row.tags.get(TECHNOLOGY_TAG, ""),
                        operator_code=row.tags.get(OPERATOR_TAG, ""),
                        median_mbps=row.num("median_mbps"),
                        p10_mbps=row.num("p10_mbps"),
                        tests=row.count("tests"),
                        tests_at_target=row.count("tests_at_target"),
                    )
                )
                getattr(split, attr).sort(key=_order)

        builder.add(
            name,
            "raw points, mobile",
            handle,
            group_by=("province",),
            filters={"access": "mobile"},
            catalogue=RADIO_QUERIES,
        )
