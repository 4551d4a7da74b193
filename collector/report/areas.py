"""The area registry: district, commune and hamlet boundaries (GeoJSON) with official codes.

One format for the report's commune map and the hamlet registry (issue 22): a GeoJSON
FeatureCollection (RFC 7946, lon/lat WGS 84) whose features carry ``properties.level``
("district" | "commune" | "hamlet"), ``code``, ``name`` and ``parent_code``; the format is
documented in ``collector/report/README.md`` (*The area registry*). Every problem is listed
at once, each naming the feature and the key. Usage::

    registry = load_areas(Path("config/areas/dongnai.sample.geojson"))   # ConfigError
    found = match_communes(registry, [("Tân Phú", "Phú Lâm"), ("", "Biên Hòa")])
    found.features[("Tân Phú", "Phú Lâm")].code, found.missing
"""

from __future__ import annotations

import itertools
import json
import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from probefleet.core import wire
from probefleet.core.configkit import ConfigError

AreaLevel = Literal["district", "commune", "hamlet"]
LEVELS: Final[tuple[AreaLevel, ...]] = ("district", "commune", "hamlet")
# The level a feature's parent_code points at (a district's parent is the province: none
# in the file; since the 2025 reorganisation a commune may have no district either).
PARENT_LEVEL: Final[dict[str, AreaLevel | None]] = {
    "district": None,
    "commune": "district",
    "hamlet": "commune",
}
# Bounds: a registry is a province's cadastral export, not something to trust blindly.
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
MAX_FEATURES: Final = 200_000
MAX_POSITIONS: Final = 5_000_000
MAX_CODE_CHARS: Final = 32
MAX_NAME_CHARS: Final = 100
MAX_PROBLEMS_SHOWN: Final = 50
_CODE_CHARS: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-")

Ring = tuple[tuple[float, float], ...]  # (lon, lat), closed: first == last
Polygon = tuple[Ring, ...]  # outer ring, then holes


@dataclass(frozen=True)
class AreaFeature:
    level: AreaLevel
    code: str
    name: str
    parent_code: str | None
    polygons: tuple[Polygon, ...]  # a Polygon is one, a MultiPolygon several

    def bbox(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of the outer rings."""
        lons = [p[0] for poly in self.polygons for p in poly[0]]
        lats = [p[1] for poly in self.polygons for p in poly[0]]
        return min(lons), min(lats), max(lons), max(lats)


@dataclass(frozen=True)
class AreaRegistry:
    path: str
    features: tuple[AreaFeature, ...]
    synthetic: bool = False  # the file says its shapes are made up (a demo, a test)
    source: str = ""  # where the boundaries come from, as the file says

    def at(self, level: AreaLevel) -> list[AreaFeature]:
        return [f for f in self.features if f.level == level]

    def by_code(self, level: AreaLevel, code: str | None) -> AreaFeature | None:
        return next((f for f in self.features if f.level == level and f.code == code), None)


def _label(index: int, props: Any) -> str:
    """How a problem names its feature: its index, and its level, code and name if it has them."""
    said = ""
    if isinstance(props, dict):
        parts = [str(props[k]) for k in ("level", "code") if isinstance(props.get(k), str)]
        parts = [p for p in parts if p.strip()]
        if isinstance(props.get("name"), str) and props["name"].strip():
            parts.append(repr(props["name"]))
        said = f" ({' '.join(parts)})" if parts else ""
    return f"features[{index}]{said}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.positions = 0
        # (level, code) -> features using it, broken ones included: a feature dropped for
        # its geometry must not make its children's parent_code "unknown" too.
        self.codes: dict[tuple[str, str], list[str]] = {}

    def ring(self, where: str, value: Any) -> Ring | None:
        if not isinstance(value, list) or len(value) < 4:
            self.problems.append(f"{where}: a ring needs at least 4 positions, got {_short(value)}")
            return None
        out: list[tuple[float, float]] = []
        for i, pos in enumerate(value):
            ok = (
                isinstance(pos, list)
                and 2 <= len(pos) <= 3
                and all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos)
                and all(math.isfinite(c) for c in pos)
            )
            if not ok:
                self.problems.append(f"{where}[{i}] = {_short(pos)}: not a [lon, lat] position")
                return None
            lon, lat = float(pos[0]), float(pos[1])
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                self.problems.append(
                    f"{where}[{i}] = {_short(pos)}: lon must be -180..180 and lat -90..90 "
                    "(GeoJSON is [lon, lat])"
                )
                return None
            out.append((lon, lat))
        self.positions += len(out)
        if out[0] != out[-1]:
            self.problems.append(f"{where}: the ring is not closed (first position != last)")
            return None
        return tuple(out)

    def polygon(self, where: str, value: Any) -> Polygon | None:
        if not isinstance(value, list) or not value:
            self.problems.append(f"{where}: a polygon is a list of rings, got {_short(value)}")
            return None
        rings = [self.ring(f"{where}[{i}]", r) for i, r in enumerate(value)]
        return None if any(r is None for r in rings) else tuple(r for r in rings if r)

    def geometry(self, where: str, geom: Any) -> tuple[Polygon, ...] | None:
        if not isinstance(geom, dict):
            self.problems.append(f"{where}.geometry: missing (a Polygon or MultiPolygon)")
            return None
        kind, coords = geom.get("type"), geom.get("coordinates")
        if kind == "Polygon":
            poly = self.polygon(f"{where}.geometry.coordinates", coords)
            return None if poly is None else (poly,)
        if kind == "MultiPolygon":
            if not isinstance(coords, list) or not coords:
                self.problems.append(
                    f"{where}.geometry.coordinates: a MultiPolygon is a list of polygons"
                )
                return None
            polys = [
                self.polygon(f"{where}.geometry.coordinates[{i}]", p) for i, p in enumerate(coords)
            ]
            return None if any(p is None for p in polys) else tuple(p for p in polys if p)
        self.problems.append(
            f'{where}.geometry.type = {_short(kind)}: must be "Polygon" or "MultiPolygon"'
        )
        return None

    def text(self, where: str, props: dict[str, Any], key: str, limit: int) -> str | None:
        value = props.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            self.problems.append(
                f"{where}: properties.{key} = {_short(value)}: must be a non-empty string "
                f"of at most {limit} characters"
            )
            return None
        return unicodedata.normalize("NFC", value.strip())

    def feature(self, index: int, feat: Any) -> AreaFeature | None:
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            self.problems.append(f"features[{index}]: not a GeoJSON Feature object")
            return None
        props = feat.get("properties")
        where = _label(index, props)
        if not isinstance(props, dict):
            self.problems.append(f"{where}: properties: missing (level, code, name, parent_code)")
            return None
        level = props.get("level")
        if level not in LEVELS:
            self.problems.append(
                f"{where}: properties.level = {_short(level)}: must be one of "
                + ", ".join(f'"{x}"' for x in LEVELS)
            )
        code = self.text(where, props, "code", MAX_CODE_CHARS)
        if code is not None and not set(code) <= _CODE_CHARS:
            self.problems.append(
                f"{where}: properties.code = {_short(code)}: letters, digits, '.', '_', '-' only"
            )
            code = None
        name = self.text(where, props, "name", MAX_NAME_CHARS)
        parent = props.get("parent_code")
        if parent is not None and (not isinstance(parent, str) or not parent.strip()):
            self.problems.append(
                f"{where}: properties.parent_code = {_short(parent)}: a code (string) or null"
            )
            parent = None
        if level == "hamlet" and parent is None:
            self.problems.append(
                f"{where}: properties.parent_code: a hamlet needs the code of its commune"
            )
        if level in LEVELS and code is not None:
            self.codes.setdefault((str(level), code), []).append(where)
        polygons = self.geometry(where, feat.get("geometry"))
        if level not in LEVELS or code is None or name is None or polygons is None:
            return None
        return AreaFeature(level, code, name, parent.strip() if parent else None, polygons)


def parse_areas(data: Any, path: str) -> AreaRegistry:
    """Check a decoded registry; ConfigError lists every problem (feature and key named)."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ConfigError(path, ['type: must be "FeatureCollection" (a GeoJSON object)'])
    raw = data.get("features")
    if not isinstance(raw, list):
        raise ConfigError(path, ["features: must be a list of Feature objects"])
    if len(raw) > MAX_FEATURES:
        raise ConfigError(path, [f"features: {len(raw):,} features, at most {MAX_FEATURES:,}"])
    check = _Checker()
    features: list[AreaFeature] = []
    for index, feat in enumerate(raw):
        found = check.feature(index, feat)
        if found is not None:
            features.append(found)
        if check.positions > MAX_POSITIONS:
            check.problems.append(f"features: more than {MAX_POSITIONS:,} positions in all")
            break
    for (level, code), where in check.codes.items():
        if len(where) > 1:
            check.problems.append(
                f"{' and '.join(where)}: properties.code = {code!r} used by two {level}s"
            )
    for f in features:
        parent_level = PARENT_LEVEL[f.level]
        if f.parent_code is None or parent_level is None:
            continue  # a district's parent: the province, not in the file
        if (parent_level, f.parent_code) not in check.codes:
            check.problems.append(
                f"{f.level} {f.code} {f.name!r}: properties.parent_code = {f.parent_code!r}: "
                f"no {parent_level} with that code in the file"
            )
    synthetic = data.get("synthetic", False)
    if not isinstance(synthetic, bool):
        check.problems.append(f"synthetic = {_short(synthetic)}: true or false")
    source = data.get("source", "")
    if not isinstance(source, str):
        check.problems.append(f"source = {_short(source)}: a string")
    if check.problems:
        shown = check.problems[:MAX_PROBLEMS_SHOWN]
        if len(check.problems) > len(shown):
            shown.append(f"... and {len(check.problems) - len(shown)} more problems")
        raise ConfigError(path, shown)
    return AreaRegistry(
        path, tuple(features), synthetic is True, source if isinstance(source, str) else ""
    )


def load_areas(path: Path) -> AreaRegistry:
    """Read and check a registry file (``[report] areas_file``)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(path, [f"{size:,} bytes: at most {MAX_FILE_BYTES:,}"])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the area file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text: {exc.reason}"]) from None
    try:
        # The wire's own depth check: json.loads recurses per level and a deeply nested
        # file would end in RecursionError, a traceback instead of a config error.
        wire.check_nesting(text.encode())  # GeoJSON needs 8 levels (a MultiPolygon's point)
        data = json.loads(text)
    except wire.WireError as exc:
        raise ConfigError(path, [exc.reason]) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            path, [f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
        ) from None
    return parse_areas(data, str(path))


def _same(a: str, b: str) -> bool:
    return unicodedata.normalize("NFC", a).casefold() == unicodedata.normalize("NFC", b).casefold()


MissingReason = Literal["no_name", "other_district", "ambiguous"]


@dataclass(frozen=True)
class MissingPolygon:
    """An inventory commune the area file has no polygon for, and why (``detail``: the
    districts the file has it in, or how many communes share the name)."""

    district: str
    commune: str
    reason: MissingReason
    detail: str = ""

    @property
    def text(self) -> str:
        """Why, in English (the stderr warning, the JSON)."""
        if self.reason == "no_name":
            return "no commune of that name in the area file"
        if self.reason == "other_district":
            return f"the area file has it in another district ({self.detail})"
        return f"{self.detail} communes of that name: give the inventory's district"


@dataclass
class Matched:
    """Inventory communes -> their polygon, and the ones without one."""

    features: dict[tuple[str, str], AreaFeature] = field(default_factory=dict)
    missing: list[MissingPolygon] = field(default_factory=list)


def match_communes(registry: AreaRegistry, communes: Iterable[tuple[str, str]]) -> Matched:
    """Find each inventory commune ``(district or "", commune)`` by name; where the
    inventory names a district and several communes share the name, by its district."""
    out = Matched()
    candidates = registry.at("commune")
    for district, commune in communes:
        named = [f for f in candidates if _same(f.name, commune)]
        if district:
            # A commune without a district in the file (after 2025) matches any district.
            in_district = [
                f for f in named if _same(_district_name(registry, f) or district, district)
            ]
        else:
            in_district = named
        if len(in_district) == 1:
            out.features[(district, commune)] = in_district[0]
        elif not named:
            out.missing.append(MissingPolygon(district, commune, "no_name"))
        elif not in_district:
            elsewhere = sorted({_district_name(registry, f) or "?" for f in named})
            out.missing.append(
                MissingPolygon(district, commune, "other_district", ", ".join(elsewhere))
            )
        else:
            out.missing.append(
                MissingPolygon(district, commune, "ambiguous", str(len(in_district)))
            )
    return out


def _district_name(registry: AreaRegistry, feature: AreaFeature) -> str | None:
    parent = registry.by_code("district", feature.parent_code)
    return parent.name if parent else None


def ring_centroid(ring: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The area centroid of a closed ring (shoelace); its mean point if it has no area.
    Only for placing a label: nothing is decided by it."""
    a = cx = cy = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        cross = x0 * y1 - x1 * y0
        a += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(a) < 1e-18:
        n = max(1, len(ring) - 1)
        return sum(p[0] for p in ring[:-1]) / n, sum(p[1] for p in ring[:-1]) / n
    return cx / (3 * a), cy / (3 * a)


def ring_area(ring: Sequence[tuple[float, float]]) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2)
