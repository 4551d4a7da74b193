"""Pure parsing: (topic, payload) -> a checked result -> InfluxDB points. No broker, no DB.

Usage::

    parsed = parse(topic, payload, topics)             # raises Rejected(field, reason)
    points = points_from(parsed.result, parsed.probe, enrichment, when)

The data model (measurement = kind, tags, fields, timestamps) is documented, table by
table, in ``collector/README.md``; ``tests/collector/test_points.py`` holds it to that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from probefleet.collector import _rows
from probefleet.collector.clock import Timestamp, as_measured
from probefleet.collector.errors import Rejected
from probefleet.collector.inventory import Enrichment
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.core import wire
from probefleet.kinds.radio import fields as radio_fields

# Tags every point may carry (besides the per-row identifiers of list payloads).
COMMON_TAGS: Final = (
    "probe",
    "status",
    "interface",
    "access",
    "operator",
    "commune",
    "district",
    "province",
    "inventory",
)
# Tags of every point of a result measured on a mobile interface (its radio context's start:
# technology and MCC+MNC); the radio kind's points carry them too.
RADIO_TAGS: Final = tuple(radio_fields.TAGS.values())
UNKNOWN_PROBE: Final = "unknown"
# Tags that never tell two rows of one payload apart (interface does, for health).
_NOT_ROW_IDS: Final = (
    (frozenset(COMMON_TAGS) - {"interface"}) | frozenset(RADIO_TAGS) | {"hamlet", "hamlet_commune"}
)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A result that passed every check, with the probe id taken from its topic."""

    probe: str
    kind: wire.Kind
    result: wire.Result


def parse(topic: str, payload: bytes, topics: wire.Topics) -> Parsed:
    """Check a message against the wire contract and its topic; Rejected names the reason."""
    try:
        probe, channel, kind = topics.parse(topic)
    except wire.WireError as exc:
        raise Rejected(exc.field, exc.reason) from None
    if channel != "results" or kind is None:
        raise Rejected("topic", f"{topic!r} is not a results topic")
    try:
        result = wire.decode_result(payload)
    except wire.WireError as exc:
        raise Rejected(exc.field, exc.reason) from None
    # The broker's ACL ties a login to its topic subtree, not to what the payload says.
    if result.probe_id != probe:
        raise Rejected(
            "probe_id", f"payload claims probe {result.probe_id!r} on the topic of {probe!r}"
        )
    payload_kind = wire.kind_of(result)
    if payload_kind != kind:
        raise Rejected("kind", f"payload kind {payload_kind!r} on a {kind!r} topic")
    return Parsed(probe, payload_kind, result)


def parse_status(topic: str, payload: bytes, topics: wire.Topics) -> tuple[str, wire.ProbeStatus]:
    """Check a ProbeStatus (presence, Last Will) against the contract and its topic."""
    try:
        probe, channel, _kind = topics.parse(topic)
        if channel != "status":
            raise Rejected("topic", f"{topic!r} is not a status topic")
        status: wire.ProbeStatus = wire.decode(payload, wire.ProbeStatus)
    except wire.WireError as exc:
        raise Rejected(exc.field, exc.reason) from None
    if status.probe_id != probe:
        raise Rejected(
            "probe_id", f"status claims probe {status.probe_id!r} on the topic of {probe!r}"
        )
    return probe, status


def _common(
    result: wire.Result, probe: str, enrichment: Enrichment, when: Timestamp
) -> _rows.Context:
    info = enrichment.probe(probe)
    link = enrichment.interface(probe, result.interface)
    tags: dict[str, str | None] = {
        "probe": probe,
        "status": result.status,
        "interface": result.interface,
        # What the probe says about its link wins; the inventory fills the gap.
        "access": result.access or (link.access if link else None),
        "operator": link.operator if link else None,
    }
    if info is None:
        tags["inventory"] = UNKNOWN_PROBE
    else:
        tags.update(commune=info.commune, district=info.district, province=info.province)
    fields: dict[str, FieldValue | None] = {
        "seq": result.seq,
        "clock_synced": result.clock.synced,
        "time_source": when.source,
        "request_id": result.request_id,  # None (left out) for scheduled runs
    }
    if result.radio is not None:
        # What the modem said at the start (tags and radio_* fields) and end (radio_end_*).
        tags.update(radio_fields.tags(result.radio.start))
        fields.update(radio_fields.context_fields(result.radio))
    if enrichment.hamlets is not None and result.data is not None:
        tags.update(_hamlet_tags(enrichment, result.data))
    if result.status != "ok":
        fields["reason"] = result.reason
        for key, value in sorted((result.detail or {}).items()):
            fields[f"detail_{key}"] = float(value)
    return _rows.Context(wire.kind_of(result), probe, tags, fields, when.time_ns, enrichment)


def _hamlet_tags(enrichment: Enrichment, data: object) -> dict[str, str | None]:
    """A survey point's hamlet (registry codes only: bounded whatever the probe sends).
    Read by name, so that no other kind's payload is touched: only the survey kind's has a
    ``fix_ok``, and a point without a good fix or outside every hamlet gets no tag."""
    fix_ok = getattr(data, "fix_ok", None)
    if fix_ok is not True or enrichment.hamlets is None:
        return {}
    lat, lon = getattr(data, "lat_deg", None), getattr(data, "lon_deg", None)
    if not (isinstance(lat, float | int) and isinstance(lon, float | int)):
        return {}
    return enrichment.hamlets.tags(fix_ok=True, lat_deg=float(lat), lon_deg=float(lon))


def points_from(
    result: wire.Result,
    topic_probe: str,
    enrichment: Enrichment,
    when: Timestamp | None = None,
) -> list[Point]:
    """The points of one result: measurement = its kind, timestamp = ``when`` (default: the
    probe's ``measured_at``). Failed and skipped results give one point with ``status`` and
    ``reason``. Rejected if two rows of the payload would be the same InfluxDB point (one
    would silently overwrite the other)."""
    ctx = _common(result, topic_probe, enrichment, when or as_measured(result))
    if result.status != "ok" or result.data is None:
        points = [ctx.point(ctx.kind, {}, {})]
    else:
        points = _rows.build(result.data, ctx)
    seen: set[str] = set()
    for point in points:
        if point.series in seen:
            ids = ", ".join(f"{k}={v}" for k, v in point.tags if k not in _NOT_ROW_IDS)
            raise Rejected("data", f"two rows are the same point ({ids}): one would be lost")
        seen.add(point.series)
    return points
