"""The hamlet registry at ingest: point in polygon over the sample's synthetic hamlets, a point
on a boundary, no fix, outside every hamlet, a broken polygon, `[files] areas` and `check`,
and the survey point's hamlet tags (bounded by the registry whatever a probe sends)."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector.config import load_config
from probefleet.collector.hamlets import hamlet_index, load_hamlets
from probefleet.collector.inventory import Enrichment, load_inventory, load_targets
from probefleet.collector.points import parse, points_from
from probefleet.collector.report.areas import load_areas, parse_areas
from probefleet.collector.service import load_enrichment
from probefleet.core import configkit, wire
from shapely.geometry import shape

from tests.collector.helpers import GOLDEN, ROOT

AREAS = ROOT / "config" / "areas" / "dongnai.sample.geojson"
TOPICS = wire.Topics()


def _features(level: str) -> list[dict[str, Any]]:
    doc = json.loads(AREAS.read_text(encoding="utf-8"))
    return [f for f in doc["features"] if f["properties"]["level"] == level]


def test_every_sample_hamlet_owns_a_point_inside_it_and_nothing_outside_the_hamlets() -> None:
    index = load_hamlets(AREAS)
    assert len(index) == 12
    for feature in _features("hamlet"):
        inside = shape(feature["geometry"]).representative_point()
        found = index.locate(inside.x, inside.y)
        assert found is not None
        assert found.code == feature["properties"]["code"]
        assert found.commune_code == feature["properties"]["parent_code"]
    # A commune the sample gives no hamlets (Biên Hòa): inside the commune, in no hamlet.
    bien_hoa = next(f for f in _features("commune") if f["properties"]["code"] == "X26301")
    point = shape(bien_hoa["geometry"]).representative_point()
    assert index.locate(point.x, point.y) is None
    assert index.locate(0.0, 0.0) is None
    assert index.locate(float("nan"), 11.0) is None


def test_a_point_on_the_boundary_of_two_hamlets_goes_to_the_smaller_code_every_time() -> None:
    index = load_hamlets(AREAS)
    one, two = (
        shape(f["geometry"])
        for f in _features("hamlet")
        if f["properties"]["code"] in ("X26102-01", "X26102-02")
    )
    edge = one.intersection(two)  # their shared side
    assert edge.length > 0
    on = edge.interpolate(0.5, normalized=True)
    assert one.covers(on)
    assert two.covers(on)
    found = index.locate(on.x, on.y)
    assert found is not None
    assert found.code == "X26102-01"


def test_tags_need_a_good_fix_and_a_hamlet() -> None:
    index = load_hamlets(AREAS)
    hamlet = next(f for f in _features("hamlet") if f["properties"]["code"] == "X26201-03")
    p = shape(hamlet["geometry"]).representative_point()
    assert index.tags(fix_ok=True, lat_deg=p.y, lon_deg=p.x) == {
        "hamlet": "X26201-03",
        "hamlet_commune": "X26201",
    }
    assert index.tags(fix_ok=False, lat_deg=p.y, lon_deg=p.x) == {}
    assert index.tags(fix_ok=True, lat_deg=None, lon_deg=None) == {}
    assert index.tags(fix_ok=True, lat_deg=10.0, lon_deg=100.0) == {}


def test_a_self_intersecting_hamlet_is_named_with_the_reason() -> None:
    doc = json.loads(AREAS.read_text(encoding="utf-8"))
    bad = copy.deepcopy(doc)
    hamlet = next(f for f in bad["features"] if f["properties"]["code"] == "X26101-02")
    hamlet["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[107.45, 11.30], [107.47, 11.32], [107.47, 11.30], [107.45, 11.32],
                         [107.45, 11.30]]],
    }  # fmt: skip
    with pytest.raises(configkit.ConfigError) as info:
        hamlet_index(parse_areas(bad, "areas.geojson"))
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(
        "hamlet X26101-02 'Khu phố 2': geometry: not a valid polygon (Self-intersection"
    )


def _golden_survey(**data: Any) -> tuple[str, bytes]:
    doc = json.loads((GOLDEN / "result-survey.json").read_bytes())
    doc["data"].update(data)
    if doc["data"]["fix_ok"]:
        doc["data"].pop("fix_reason", None)
        doc["data"]["fix_mode"] = "3d"
    else:
        doc["data"].setdefault("fix_reason", "no fix")
    return doc["probe_id"], json.dumps(doc).encode()


def _points(enrichment: Enrichment, **data: Any) -> list[dict[str, str]]:
    probe, raw = _golden_survey(**data)
    parsed = parse(TOPICS.result(probe, "survey"), raw, TOPICS)
    return [dict(p.tags) for p in points_from(parsed.result, parsed.probe, enrichment)]


def test_a_survey_point_gets_its_hamlet_tags_at_ingest_and_other_points_none() -> None:
    enrichment = Enrichment(
        load_inventory(ROOT / "config/inventory.sample.toml"),
        load_targets(ROOT / "config/targets.sample.toml"),
        load_hamlets(AREAS),
    )
    hamlet = next(f for f in _features("hamlet") if f["properties"]["code"] == "X26102-03")
    p = shape(hamlet["geometry"]).representative_point()
    (tags,) = _points(enrichment, fix_ok=True, lat_deg=p.y, lon_deg=p.x)
    assert tags["hamlet"] == "X26102-03"
    assert tags["hamlet_commune"] == "X26102"
    assert tags["radio_operator"] == "45204"
    # No good fix (the point is kept, without a hamlet), or outside every hamlet.
    (tags,) = _points(enrichment, fix_ok=False, fix_reason="stale", lat_deg=p.y, lon_deg=p.x)
    assert "hamlet" not in tags
    assert "hamlet_commune" not in tags
    (tags,) = _points(enrichment, fix_ok=True, lat_deg=10.5, lon_deg=106.0)
    assert "hamlet" not in tags
    # Without a registry: no hamlet tags at all.
    (tags,) = _points(Enrichment(enrichment.inventory, enrichment.targets), fix_ok=True,
                      lat_deg=p.y, lon_deg=p.x)  # fmt: skip
    assert "hamlet" not in tags


def test_a_hostile_probe_cannot_make_hamlet_series_beyond_the_registry() -> None:
    enrichment = Enrichment(hamlets=load_hamlets(AREAS))
    hamlets = load_areas(AREAS).at("hamlet")
    codes = {f.code for f in hamlets}
    boxes = [f.bbox() for f in hamlets]
    west, south = min(b[0] for b in boxes) - 0.05, min(b[1] for b in boxes) - 0.05
    east, north = max(b[2] for b in boxes) + 0.05, max(b[3] for b in boxes) + 0.05
    rng = random.Random(22)  # noqa: S311 (a reproducible walk, not a secret)
    seen: set[str] = set()
    for _ in range(400):
        lat, lon = rng.uniform(south, north), rng.uniform(west, east)
        for tags in _points(enrichment, fix_ok=True, lat_deg=lat, lon_deg=lon):
            if "hamlet" in tags:
                seen.add(tags["hamlet"])
                assert tags["hamlet_commune"] == tags["hamlet"].split("-")[0]
    assert seen <= codes
    assert len(seen) >= 6  # the walk did land in hamlets: the check above is not empty


def _config(tmp_path: Path, areas: Path) -> Path:
    (tmp_path / "inventory.toml").write_text("")
    path = tmp_path / "collector.toml"
    path.write_text(
        "[files]\n"
        f'inventory = "{tmp_path / "inventory.toml"}"\n'
        f'targets = "{ROOT / "config/targets.sample.toml"}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'areas = "{areas}"\n'
    )
    return path


def test_files_areas_loads_the_hamlets_into_the_enrichment(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, AREAS))
    assert cfg.files.areas == str(AREAS)
    enrichment = load_enrichment(cfg)
    assert enrichment.hamlets is not None
    assert len(enrichment.hamlets) == 12
    assert load_config(ROOT / "config/collector.sample.toml").files.areas == ""


@pytest.mark.slow
def test_check_names_the_broken_hamlet_feature_and_key(tmp_path: Path) -> None:
    doc = json.loads(AREAS.read_text(encoding="utf-8"))
    hamlet = next(f for f in doc["features"] if f["properties"]["code"] == "X26102-04")
    hamlet["properties"]["parent_code"] = "X99999"
    broken = tmp_path / "areas.geojson"
    broken.write_text(json.dumps(doc), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "probefleet.collector.cli", "check", "--config",
         str(_config(tmp_path, broken))],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    assert (
        "hamlet X26102-04 'Ấp 4': properties.parent_code = 'X99999': no commune with that "
        "code in the file"
    ) in proc.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "probefleet.collector.cli", "check", "--config",
         str(_config(tmp_path, AREAS))],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "areas" in ok.stdout
