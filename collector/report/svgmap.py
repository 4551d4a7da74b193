"""The commune map: inline SVG drawn from the area registry, communes filled by verdict.

No tiles, no script, nothing fetched: the polygons of ``[report] areas_file`` projected by
equirectangular scaling (lon × cos(mid latitude), lat), which is true enough over a province.
The three verdicts are told apart without colour too: dark blue, light orange, white with
grey hatching (Okabe-Ito hues; three distinct greys when printed in black and white). Usage::

    svg_map(registry, {"X26102": "not_met"}, title="…", legend={"met": "Đạt", …})
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Final

from probefleet.collector.report.areas import AreaFeature, AreaRegistry, ring_area, ring_centroid

# One palette for the map and the verdict cells of the tables (html.py).
VERDICT_FILL: Final = {"met": "#0072b2", "not_met": "#e69f00", "not_measured": "#ffffff"}
VERDICT_TINT: Final = {"met": "#cfe3f1", "not_met": "#fbe3b3", "not_measured": "#f3f4f6"}
_HATCH: Final = "#8a8a8a"
_DISTRICT: Final = "#111111"
_BORDER: Final = "#4b5563"
_TRACK: Final = "#cc79a7"  # Okabe-Ito reddish purple: apart from the three fills
_ORDER: Final = ("met", "not_met", "not_measured")
_LEGEND_H: Final = 26


def _fill(verdict: str, hatch_id: str) -> str:
    return f"url(#{hatch_id})" if verdict == "not_measured" else VERDICT_FILL[verdict]


class _Projection:
    def __init__(self, features: list[AreaFeature], width: float, max_height: float) -> None:
        boxes = [f.bbox() for f in features]
        self.lon0 = min(b[0] for b in boxes)
        self.lat1 = max(b[3] for b in boxes)
        lon_span = max(1e-6, max(b[2] for b in boxes) - self.lon0)
        lat_span = max(1e-6, self.lat1 - min(b[1] for b in boxes))
        self.kx = math.cos(math.radians(self.lat1 - lat_span / 2))
        self.pad = 6.0
        inner = width - 2 * self.pad
        self.k = min(inner / (lon_span * self.kx), (max_height - 2 * self.pad) / lat_span)
        self.width = width
        self.height = lat_span * self.k + 2 * self.pad

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            self.pad + (lon - self.lon0) * self.kx * self.k,
            self.pad + (self.lat1 - lat) * self.k,
        )

    def path(self, feature: AreaFeature) -> str:
        parts = []
        for polygon in feature.polygons:
            for ring in polygon:
                pts = [self.xy(lon, lat) for lon, lat in ring[:-1]]
                parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + " Z")
        return " ".join(parts)


def _tracks(proj: _Projection, tracks: Sequence[Sequence[tuple[float, float]]]) -> list[str]:
    """Each track as polylines, broken where it leaves the drawing (the legend is below)."""
    out: list[str] = []
    for track in tracks:
        pieces: list[list[str]] = [[]]
        for lon, lat in track:
            x, y = proj.xy(lon, lat)
            if 0 <= x <= proj.width and 0 <= y <= proj.height:
                pieces[-1].append(f"{x:.1f},{y:.1f}")
            elif pieces[-1]:
                pieces.append([])
        out.extend(
            f'<polyline class="track" points="{" ".join(p)}" fill="none" stroke="{_TRACK}" '
            'stroke-width="1.6" stroke-linejoin="round"/>'
            for p in pieces
            if len(p) > 1
        )
    return out


def _label_point(feature: AreaFeature) -> tuple[float, float]:
    outer = max((poly[0] for poly in feature.polygons), key=ring_area)
    return ring_centroid(outer)


def svg_map(
    registry: AreaRegistry,
    verdicts: Mapping[str, str],
    *,
    title: str,
    legend: Mapping[str, str],
    map_id: str,
    width: int = 500,
    max_height: int = 420,
    tracks: Sequence[Sequence[tuple[float, float]]] = (),
) -> str:
    """Communes of ``registry`` filled by ``verdicts`` (commune code -> verdict; a commune
    without one is "not_measured"), district outlines on top, names, and the legend;
    ``tracks`` (lon, lat) drawn over them as lines, cut where they leave the map."""
    communes = registry.at("commune")
    districts = registry.at("district")
    if not communes:
        return ""
    proj = _Projection(communes + districts, width, max_height)
    hatch = f"hatch-{map_id}"
    body = [
        f'<defs><pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{_HATCH}" stroke-width="1.6"/></pattern>'
        "</defs>"
    ]
    for f in communes:
        verdict = verdicts.get(f.code, "not_measured")
        body.append(
            f'<path d="{proj.path(f)}" fill="{_fill(verdict, hatch)}" stroke="{_BORDER}" '
            f'stroke-width="0.8" data-code="{escape(f.code)}" data-verdict="{verdict}">'
            f"<title>{escape(f.name)} ({escape(f.code)}): {escape(legend[verdict])}</title></path>"
        )
    for f in districts:
        body.append(
            f'<path d="{proj.path(f)}" fill="none" stroke="{_DISTRICT}" stroke-width="1.8"/>'
        )
    body.extend(_tracks(proj, tracks))
    for f in communes:
        x, y = proj.xy(*_label_point(f))
        # Keep the name inside the drawing (~0.55 em a character): a border commune's label
        # would be cut at the frame.
        half = 3.4 * len(f.name) + 2
        x = min(max(x, half), width - half)
        body.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="12" text-anchor="middle" '
            'paint-order="stroke" stroke="#ffffff" stroke-width="3.5" stroke-linejoin="round" '
            f'fill="#111111">{escape(f.name)}</text>'
        )
    top = proj.height + 8
    x = 6.0
    for verdict in _ORDER:
        body.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="22" height="14" '
            f'fill="{_fill(verdict, hatch)}" stroke="{_BORDER}"/>'
        )
        text = legend[verdict]
        body.append(
            f'<text x="{x + 28:.1f}" y="{top + 12:.1f}" font-size="13" fill="#111111">'
            f"{escape(text)}</text>"
        )
        x += 28 + 7.5 * len(text) + 22
    height = top + _LEGEND_H
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="map" '
        f'viewBox="0 0 {width} {height:.0f}" width="100%" style="max-width:{width}px">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )
