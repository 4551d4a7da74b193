"""A payload's points: its kind's field table (kinds/<kind>/fields.py) plus the enrichment.

No kind is named here: every kind's rows come from the registry, and the collector adds
what it alone knows — the inventory's tags for a row's interface, the probe's location, and
the plan's target for every row that carries a download speed."""

from __future__ import annotations

from dataclasses import dataclass

from probefleet.collector.inventory import Enrichment
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.core import wire
from probefleet.kinds import Row
from probefleet.kinds import spec as kind_spec
from probefleet.kinds.common.rows import as01


@dataclass(frozen=True, slots=True)
class Context:
    """What every point of one result shares: tags, fields, time, and the enrichment."""

    kind: wire.Kind
    probe: str
    tags: dict[str, str | None]
    fields: dict[str, FieldValue | None]
    time_ns: int
    enrichment: Enrichment

    def point(
        self,
        measurement: str,
        tags: dict[str, str | None],
        fields: dict[str, FieldValue | None],
    ) -> Point:
        return Point.build(
            measurement, {**self.tags, **tags}, {**self.fields, **fields}, self.time_ns
        )

    def link_tags(self, interface: str) -> dict[str, str | None]:
        """Tags of one of the probe's interfaces (health rows), from the inventory."""
        link = self.enrichment.interface(self.probe, interface)
        return {
            "interface": interface,
            "access": link.access if link else None,
            "operator": link.operator if link else None,
        }


def build(data: object, ctx: Context) -> list[Point]:
    """The points of an ``ok`` payload of ``ctx.kind``; the measurement is the kind."""
    return [_point(row, ctx) for row in kind_spec(ctx.kind).rows(data)]


def _point(row: Row, ctx: Context) -> Point:
    tags = row.tags if row.link is None else {**ctx.link_tags(row.link), **row.tags}
    fields = row.fields  # made for this call by the kind's rows(): ours to extend
    if row.located:
        info = ctx.enrichment.probe(ctx.probe)
        fields["lat_deg"] = float(info.lat) if info and info.lat is not None else None
        fields["lon_deg"] = float(info.lon) if info and info.lon is not None else None
    if "download_mbps" in fields:
        _compare_with_target(fields, tags.get("access", ctx.tags.get("access")), ctx)
    return ctx.point(ctx.kind, tags, fields)


def _compare_with_target(
    fields: dict[str, FieldValue | None], access: str | None, ctx: Context
) -> None:
    """The plan's target for the row's access type, and whether the speed met it (0/1, so
    that mean() is the share of tests at target)."""
    targets = ctx.enrichment.targets
    plan = targets.for_access(access) if targets else None
    if plan is None:
        return
    download, upload = fields.get("download_mbps"), fields.get("upload_mbps")
    fields["target_download_mbps"] = float(plan.download_mbps)
    if isinstance(download, float):
        fields["meets_download_target"] = as01(download >= plan.download_mbps)
    if plan.upload_mbps is not None:
        fields["target_upload_mbps"] = float(plan.upload_mbps)
        if isinstance(upload, float):
            fields["meets_upload_target"] = as01(upload >= plan.upload_mbps)
