"""The area registry (commune boundaries, the hamlet registry's format) and the commune map:
errors name the feature and the key, all at once; inventory communes are found by name and
district; one without a polygon is named under the map and the report still renders."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector.inventory import load_inventory
from probefleet.collector.report.areas import load_areas, match_communes, parse_areas
from probefleet.collector.report.html import render_html
from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.settings import load_settings
from probefleet.collector.report.svgmap import VERDICT_FILL, svg_map
from probefleet.collector.report.tables import render_json
from probefleet.core import configkit

from demo.province import COMMUNES as DEMO_COMMUNES
from tests.collector.helpers import ROOT
from tests.collector.report import fleet as fl
from tests.collector.report import sample

LEGEND = {"met": "Met", "not_met": "Not met", "not_measured": "Not measured"}


def _doc() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sample.AREAS_FILE.read_text(encoding="utf-8"))
    return data


def test_the_sample_file_is_valid_labelled_synthetic_and_has_every_sample_commune(
    tmp_path: Path,
) -> None:
    registry = load_areas(sample.AREAS_FILE)
    assert registry.synthetic
    assert "SYNTHETIC" in registry.source
    assert {f.level for f in registry.features} == {"district", "commune", "hamlet"}
    # The synthetic hamlets: four per commune for three communes, each under its commune.
    hamlets = registry.at("hamlet")
    assert len(hamlets) == 12
    assert {h.parent_code for h in hamlets} == {"X26101", "X26102", "X26201"}
    for f in registry.at("commune"):
        assert registry.by_code("district", f.parent_code) is not None, f.name
    inventory_file = tmp_path / "fleet.toml"
    inventory_file.write_text(fl.INVENTORY, encoding="utf-8")
    wanted = [
        (info.district or "", info.commune)
        for path in (ROOT / "config" / "inventory.sample.toml", inventory_file)
        for info in load_inventory(path).probes.values()
    ] + [(c.district, c.commune) for c in DEMO_COMMUNES]
    found = match_communes(registry, wanted)
    assert found.missing == []
    assert len(found.features) == len(set(wanted))


def test_every_problem_is_listed_at_once_naming_the_feature_and_the_key() -> None:
    doc = _doc()
    bad = copy.deepcopy(doc)
    # The communes and districts only: a broken commune would make its hamlets' parent
    # unknown too (tests/collector/test_hamlets.py checks the hamlets).
    bad["features"] = [x for x in bad["features"] if x["properties"]["level"] != "hamlet"]
    f = bad["features"]
    f[1]["properties"]["level"] = "ward"
    f[2]["properties"]["code"] = ""
    f[3]["geometry"]["coordinates"][0][0] = [11.27, 107.43]  # lat/lon swapped
    f[4]["geometry"]["coordinates"][0].pop()  # not closed
    f[5]["properties"]["parent_code"] = "X999"
    f[6]["properties"]["code"] = f[5]["properties"]["code"]
    f[8]["geometry"] = {"type": "Point", "coordinates": [107.0, 11.0]}
    f.append(
        {
            "type": "Feature",
            "properties": {"level": "hamlet", "code": "H1", "name": "Ấp 1"},
            "geometry": f[1]["geometry"],
        }
    )
    with pytest.raises(configkit.ConfigError) as info:
        parse_areas(bad, "areas.geojson")
    assert info.value.path == "areas.geojson"
    assert info.value.problems == [
        "features[1] (ward X26101 'Tân Phú'): properties.level = \"ward\": must be one of "
        '"district", "commune", "hamlet"',
        "features[2] (commune 'Phú Lâm'): properties.code = \"\": must be a non-empty string "
        "of at most 32 characters",
        "features[3] (commune X26103 'Phú Sơn').geometry.coordinates[0][0] = [11.27, 107.43]: "
        "lon must be -180..180 and lat -90..90 (GeoJSON is [lon, lat])",
        "features[4] (district X732 'Định Quán').geometry.coordinates[0]: the ring is not "
        "closed (first position != last)",
        "features[8] (commune X26301 'Biên Hòa').geometry.type = \"Point\": must be "
        '"Polygon" or "MultiPolygon"',
        "features[17] (hamlet H1 'Ấp 1'): properties.parent_code: a hamlet needs the code of "
        "its commune",
        "features[5] (commune X26201 'La Ngà') and features[6] (commune X26201 'Phú Ngọc'): "
        "properties.code = 'X26201' used by two communes",
        "commune X26201 'La Ngà': properties.parent_code = 'X999': no district with that "
        "code in the file",
    ]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"type": "Feature"}, "FeatureCollection"),
        ({"type": "FeatureCollection", "features": {}}, "features: must be a list"),
        ({"type": "FeatureCollection", "features": [], "synthetic": "yes"}, "synthetic"),
    ],
)
def test_a_file_that_is_not_a_registry_says_why(data: dict[str, Any], said: str) -> None:
    with pytest.raises(configkit.ConfigError, match=said):
        parse_areas(data, "x.geojson")


def test_unreadable_and_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(configkit.ConfigError, match="cannot read the area file"):
        load_areas(tmp_path / "missing.geojson")
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(configkit.ConfigError, match=r"not valid JSON: .* \(line 1"):
        load_areas(broken)
    nested = tmp_path / "nested.geojson"  # a RecursionError in json.loads, before the check
    nested.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(configkit.ConfigError, match="nested deeper than 16 levels"):
        load_areas(nested)


def test_communes_are_found_by_name_and_district() -> None:
    registry = load_areas(sample.AREAS_FILE)
    found = match_communes(
        registry,
        [("Tân Phú", "Phú Lâm"), ("", "phú lâm"), ("Biên Hòa", "Tân Phú"), ("", "Nowhere")],
    )
    assert found.features[("Tân Phú", "Phú Lâm")].code == "X26102"
    assert found.features[("", "phú lâm")].code == "X26102"  # case and NFC do not matter
    why = {(m.district, m.commune): m for m in found.missing}
    assert why[("Biên Hòa", "Tân Phú")].reason == "other_district"
    assert why[("Biên Hòa", "Tân Phú")].text == "the area file has it in another district (Tân Phú)"
    assert why[("", "Nowhere")].text == "no commune of that name in the area file"
    assert len(found.missing) == 2


def test_the_settings_resolve_areas_file_next_to_themselves(tmp_path: Path) -> None:
    settings = tmp_path / "report.toml"
    settings.write_text('[report]\nareas_file = "areas/x.geojson"\n', encoding="utf-8")
    assert load_settings(settings).areas_file == str(tmp_path / "areas" / "x.geojson")
    settings.write_text('[report]\nareas_file = "/abs/x.geojson"\n', encoding="utf-8")
    assert load_settings(settings).areas_file == "/abs/x.geojson"


def test_the_map_fills_each_commune_by_its_verdict_with_a_legend() -> None:
    registry = load_areas(sample.AREAS_FILE)
    svg = svg_map(
        registry,
        {"X26101": "met", "X26102": "not_met"},
        title="Map",
        legend=LEGEND,
        map_id="m",
    )
    fills = dict(re.findall(r'data-code="([^"]+)" data-verdict="([^"]+)"', svg))
    assert fills["X26101"] == "met"
    assert fills["X26102"] == "not_met"
    assert fills["X26103"] == "not_measured"  # no verdict given: not measured, never met
    assert len(fills) == len(registry.at("commune"))
    assert f'fill="{VERDICT_FILL["met"]}" stroke' in svg
    assert 'fill="url(#hatch-m)"' in svg
    for label in LEGEND.values():
        assert f">{label}</text>" in svg
    # Nothing fetched: no script, no link, no URL but the SVG namespace.
    assert "<script" not in svg
    assert "href" not in svg
    assert re.findall(r"https?://[^\s\"']+", svg) == ["http://www.w3.org/2000/svg"]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_report_names_the_communes_the_map_lacks_and_still_renders(lang: str) -> None:
    t = Strings(lang)  # type: ignore[arg-type]
    report = sample.build_report()
    html = render_html(report, t)
    assert html.count('class="map"') == 2  # fixed and mobile download verdicts
    missing = html.split('id="map-missing"')[1].split("</div>")[0]
    assert "Đại Phước" in missing
    assert t("map_why_no_name") in missing  # in the report's language
    assert "Phường Long Hưng" in missing
    assert 'id="map-synthetic"' in html
    # Each commune on the map carries its own verdict, the one the tables show.
    for commune in report.communes:
        code = report.map.codes.get((commune.district, commune.commune))
        if code is None:
            continue
        shown = re.search(
            rf'data-code="{code}" data-verdict="([a-z_]+)"', html.split('id="map"')[1]
        )
        assert shown is not None
        assert shown.group(1) == commune.verdicts["download_fixed"], commune.commune
    doc = json.loads(render_json(report, t))
    assert {c["commune"] for c in doc["map"]["communes_without_polygon"]} == {
        "Đại Phước",
        "Phường Long Hưng (khu công nghiệp Nhơn Trạch)",
    }
    assert doc["map"]["synthetic"] is True


def test_without_an_area_file_the_report_says_there_is_no_map() -> None:
    html = render_html(sample.build_report(areas=None), Strings("en"))
    assert 'id="map-none"' in html
    assert "areas_file" in html.split('id="map-none"')[1][:200]
