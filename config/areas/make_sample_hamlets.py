"""Add synthetic hamlets to the sample registry: each listed commune cut in four (shapely).

Made-up shapes, like the sample's communes: the commune's polygon cut by the vertical and
horizontal lines through its centre (rounded, so that a test can put a point exactly on a
boundary between two hamlets). Run from the repository root; rewrites the file in place::

    .venv/bin/python config/areas/make_sample_hamlets.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shapely.geometry import box, mapping, shape
from shapely.geometry.polygon import orient

FILE = Path(__file__).with_name("dongnai.sample.geojson")
# commune code -> the hamlets' name prefix (ấp in rural communes, khu phố in towns)
COMMUNES = {"X26101": "Khu phố", "X26102": "Ấp", "X26201": "Ấp"}


def _hamlets(commune: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    poly = shape(commune["geometry"])
    minx, miny, maxx, maxy = poly.bounds
    cx, cy = round((minx + maxx) / 2, 3), round((miny + maxy) / 2, 3)
    quarters = [
        box(minx - 1, cy, cx, maxy + 1),  # north-west
        box(cx, cy, maxx + 1, maxy + 1),  # north-east
        box(cx, miny - 1, maxx + 1, cy),  # south-east
        box(minx - 1, miny - 1, cx, cy),  # south-west
    ]
    code = commune["properties"]["code"]
    out = []
    for n, quarter in enumerate(quarters, start=1):
        part = orient(poly.intersection(quarter))
        geometry = mapping(part)
        rounded = json.loads(json.dumps(geometry), parse_float=lambda s: round(float(s), 5))
        out.append(
            {
                "type": "Feature",
                "properties": {
                    "level": "hamlet",
                    "code": f"{code}-{n:02d}",
                    "name": f"{prefix} {n}",
                    "parent_code": code,
                    "note": "SYNTHETIC",
                },
                "geometry": {"type": rounded["type"], "coordinates": rounded["coordinates"]},
            }
        )
    return out


def main() -> None:
    doc = json.loads(FILE.read_text(encoding="utf-8"))
    features = [f for f in doc["features"] if f["properties"]["level"] != "hamlet"]
    for commune in [f for f in features if f["properties"]["code"] in COMMUNES]:
        features.extend(_hamlets(commune, COMMUNES[commune["properties"]["code"]]))
    doc["features"] = features
    lines = ",\n".join("  " + json.dumps(f, ensure_ascii=False) for f in features)
    head = {k: v for k, v in doc.items() if k != "features"}
    text = json.dumps(head, ensure_ascii=False, indent=1)[:-2]
    FILE.write_text(f'{text},\n "features": [\n{lines}\n ]\n}}\n', encoding="utf-8")


if __name__ == "__main__":
    main()
