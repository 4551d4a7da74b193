"""The hamlet registry at ingest: which hamlet (ấp, thôn, khu phố) a survey point lies in.

The hamlets are the ``level = "hamlet"`` features of the area registry (``[files] areas``,
format: collector/report/README.md, *The area registry*); point in polygon is shapely's,
over an STRtree of the polygons, so a province's 10,000 hamlets cost microseconds a point.
A point on the boundary of two hamlets is in both (``covers``): it goes to the one with the
smaller code, so that the same point always lands in the same hamlet. Usage::

    index = load_hamlets(Path("config/areas/dongnai.sample.geojson"))    # ConfigError
    index.locate(107.42, 11.30)            # Hamlet, or None outside every hamlet
    index.tags(fix_ok=True, lat_deg=11.30, lon_deg=107.42)   # {"hamlet": …, "hamlet_commune": …}

Tag values come from the registry only: whatever a probe sends, it cannot make a series
beyond the registry's hamlets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import shapely
from probefleet.collector.report.areas import AreaFeature, AreaRegistry, load_areas
from probefleet.core.configkit import ConfigError
from shapely.geometry import MultiPolygon, Point
from shapely.geometry import Polygon as ShapelyPolygon

# The tags a survey point gets (collector/README.md, *survey*).
HAMLET_TAG: Final = "hamlet"
HAMLET_COMMUNE_TAG: Final = "hamlet_commune"


@dataclass(frozen=True, slots=True)
class Hamlet:
    code: str
    name: str
    commune_code: str


def _shape(feature: AreaFeature) -> MultiPolygon:
    return MultiPolygon([ShapelyPolygon(poly[0], list(poly[1:])) for poly in feature.polygons])


class HamletIndex:
    """The registry's hamlets in an STRtree; :meth:`locate` is the only question asked."""

    def __init__(self, hamlets: list[Hamlet], shapes: list[MultiPolygon]) -> None:
        self.hamlets = hamlets
        self._tree = shapely.STRtree(shapes)
        shapely.prepare(shapes)
        self._shapes = shapes

    def __len__(self) -> int:
        return len(self.hamlets)

    def locate(self, lon_deg: float, lat_deg: float) -> Hamlet | None:
        """The hamlet that covers (lon, lat), boundary included; None outside all of them."""
        if not (math.isfinite(lon_deg) and math.isfinite(lat_deg)):
            return None
        found = self._tree.query(Point(lon_deg, lat_deg), predicate="covered_by")
        if len(found) == 0:
            return None
        return min((self.hamlets[int(i)] for i in found), key=lambda h: h.code)

    def tags(
        self, *, fix_ok: bool, lat_deg: float | None, lon_deg: float | None
    ) -> dict[str, str | None]:
        """The survey point's hamlet tags: empty without a good fix or outside every hamlet
        (the point is kept, untagged)."""
        if not fix_ok or lat_deg is None or lon_deg is None:
            return {}
        hamlet = self.locate(lon_deg, lat_deg)
        if hamlet is None:
            return {}
        return {HAMLET_TAG: hamlet.code, HAMLET_COMMUNE_TAG: hamlet.commune_code}


def hamlet_index(registry: AreaRegistry) -> HamletIndex:
    """The registry's hamlets, each polygon checked by shapely (a self-intersecting ring
    would answer point in polygon wrongly): ConfigError names every bad hamlet."""
    hamlets: list[Hamlet] = []
    shapes: list[MultiPolygon] = []
    problems: list[str] = []
    for feature in registry.at("hamlet"):
        shape = _shape(feature)
        if not shape.is_valid:
            problems.append(
                f"hamlet {feature.code} {feature.name!r}: geometry: not a valid polygon "
                f"({shapely.is_valid_reason(shape)})"
            )
            continue
        hamlets.append(Hamlet(feature.code, feature.name, feature.parent_code or ""))
        shapes.append(shape)
    if problems:
        raise ConfigError(registry.path, problems)
    return HamletIndex(hamlets, shapes)


def load_hamlets(path: Path) -> HamletIndex:
    """Read and check the registry (``[files] areas``) and index its hamlets."""
    return hamlet_index(load_areas(path))
