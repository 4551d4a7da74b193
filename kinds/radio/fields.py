"""The `radio` field table (see README.md), and the `radio_*` tags and fields of a snapshot
that every point of a mobile result carries (collector/points.py): one name everywhere."""

from __future__ import annotations

from typing import Final

from probefleet.core import wire
from probefleet.kinds.base import FieldValue, Row
from probefleet.kinds.radio.payload import RadioData

# The two snapshot figures that are tags: closed set (technology) and MCC+MNC (operator).
TAGS: Final = {"technology": "radio_technology", "operator_code": "radio_operator"}
# Every other snapshot figure, in wire order: a field radio_<name> (radio_end_<name>).
FIGURES: Final = tuple(f for f in wire.RadioSnapshot.__struct_fields__ if f not in TAGS)
REGISTERED: Final = frozenset({"home", "roaming"})


def tags(snapshot: wire.RadioSnapshot) -> dict[str, str | None]:
    return {tag: getattr(snapshot, name) for name, tag in TAGS.items()}


def figures(snapshot: wire.RadioSnapshot, prefix: str = "radio_") -> dict[str, FieldValue | None]:
    """``radio_<name>`` for every figure but the tags; absent ones are None (left out).
    Floats stay floats and integers integers, so a field's InfluxDB type never changes."""
    out: dict[str, FieldValue | None] = {}
    for name in FIGURES:
        value = getattr(snapshot, name)
        out[prefix + name] = float(value) if isinstance(value, float) else value
    return out


def context_fields(radio: wire.RadioContext) -> dict[str, FieldValue | None]:
    """The fields of a result's radio context: the start's figures, the end's (with its
    technology and operator as fields: tags are the start's) and whether they differ."""
    fields = figures(radio.start)
    end = radio.end
    if end is not None:
        fields.update(figures(end, "radio_end_"))
        fields["radio_end_technology"] = end.technology
        fields["radio_end_operator_code"] = end.operator_code
        fields["radio_changed"] = any(
            getattr(radio.start, name) != getattr(end, name)
            for name in ("technology", "operator_code", "cell_id")
        )
    return fields


def rows(data: RadioData) -> list[Row]:
    snapshot = data.snapshot
    fields = figures(snapshot)
    fields.update(
        registered=snapshot.registration in REGISTERED,
        modem_model=data.modem_model,
        modem_firmware=data.modem_firmware,
        modem_imei_sha256=data.modem_imei_sha256,
    )
    return [Row(tags(snapshot), fields)]


__all__ = ["FIGURES", "TAGS", "context_fields", "figures", "rows", "tags"]
