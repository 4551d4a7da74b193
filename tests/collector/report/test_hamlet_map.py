"""The hamlet map's survey tracks: thinned to a bound, cut where they leave the drawing."""

from __future__ import annotations

import re

from probefleet.collector.report.areas import load_areas
from probefleet.collector.report.hamlet_coverage import MAX_TRACK_POINTS, thin
from probefleet.collector.report.svgmap import svg_map

from tests.collector.report import sample

LEGEND = {"met": "Covered", "not_met": "Not covered", "not_measured": "Not surveyed"}


def test_a_long_track_is_thinned_to_the_bound_keeping_both_ends() -> None:
    track = [(107.0 + i * 1e-5, 11.0) for i in range(50_001)]
    thinned = thin(track)
    assert len(thinned) <= MAX_TRACK_POINTS
    assert thinned[0] == track[0]
    assert thinned[-1] == track[-1]
    short = track[:10]
    assert thin(short) == short


def test_a_track_leaving_the_map_is_cut_there() -> None:
    registry = load_areas(sample.AREAS_FILE)
    tan_phu = registry.by_code("commune", "X26101")
    assert tan_phu is not None
    west, south, east, north = tan_phu.bbox()
    mid = (south + north) / 2
    inside = [(west + (east - west) * k / 10, mid) for k in range(1, 5)]
    away = [(100.0, 0.0)]  # far outside the province
    back = [(west + (east - west) * k / 10, mid) for k in range(6, 10)]
    svg = svg_map(registry, {}, title="t", legend=LEGEND, map_id="m", tracks=[inside + away + back])
    lines = re.findall(r'<polyline class="track" points="([^"]+)"', svg)
    assert [len(line.split()) for line in lines] == [4, 4]
    assert svg_map(registry, {}, title="t", legend=LEGEND, map_id="m").count("track") == 0
