"""The Survey board (issue 22): survey points on a map coloured by RSRP against the coverage
rule's boundary, the runs, and per hamlet the points, the share on 4G/5G and the median
RSRP; filtered by run, hamlet (the registry's codes the collector assigned), technology and
serving network. Queries: grafana/survey_queries.py."""

from __future__ import annotations

from collections.abc import Sequence

from probefleet.collector.inventory import TargetsFile

from grafana.common import GENERATIONS, SHARE_BANDS, UIDS, links
from grafana.i18n import Words
from grafana.model import JSON, custom_variable, dashboard, panel, row, tag_variable, target
from grafana.survey_queries import MAP_POINTS

# The points that count against coverage whatever their signal (2G/3G, no service).
OTHER_COLOUR = "purple"


def _null_is_zero(name: str) -> JSON:
    """No point of the kind: InfluxDB answers null; the share is 0."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [
            {
                "id": "mappings",
                "value": [
                    {
                        "type": "special",
                        "options": {"match": "null", "result": {"text": "0 %", "index": 0}},
                    }
                ],
            }
        ],
    }


def _coloured(name: str, steps: Sequence[tuple[str, float | None]], unit: str) -> JSON:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [
            {"id": "unit", "value": unit},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            {
                "id": "thresholds",
                "value": {
                    "mode": "absolute",
                    "steps": [{"color": c, "value": v} for c, v in steps],
                },
            },
        ],
    }


def _layer(name: str, ref: str, color: JSON) -> JSON:
    return {
        "type": "markers",
        "name": name,
        "tooltip": True,
        "filterData": {"id": "byRefId", "options": ref},
        "location": {"mode": "coords", "latitude": "lat_deg", "longitude": "lon_deg"},
        "config": {
            "showLegend": True,
            "style": {"size": {"fixed": 5}, "color": color, "opacity": 0.8},
        },
    }


def _map(w: Words, rsrp_min: float) -> JSON:
    boundary = w.num(rsrp_min)
    return panel(
        "geomap",
        w(
            "Điểm khảo sát, tô màu theo RSRP",
            "Survey points, coloured by RSRP",
        ),
        [
            target("survey_map_broadband", table=True),
            target("survey_map_other", ref="B", table=True),
        ],
        description=w(
            "Mỗi điểm: một điểm khảo sát có định vị tốt (điểm không định vị được bị bỏ "
            f"qua). Trên 4G/5G: màu theo RSRP, đỏ dưới {boundary} dBm (ngưỡng phủ sóng của "
            f"quy tắc đánh giá), xanh từ {boundary} dBm. Màu tím: 2G/3G hoặc mất sóng. Chỉ "
            f"{w.num(MAP_POINTS)} điểm mới nhất của mỗi lớp trong kỳ: chọn một lượt khảo "
            "sát để xem trọn lượt.",
            "Each marker: one survey point with a good fix (points without one are left "
            f"out). On 4G/5G coloured by RSRP: red below {boundary} dBm (the coverage rule's "
            f"boundary), green from {boundary} dBm. Purple: 2G/3G or no service. Only the "
            f"newest {w.num(MAP_POINTS)} points of each layer in the range: choose a survey "
            "run to see it whole.",
        ),
        # Units per field: the tooltip shows coordinates and point numbers too.
        overrides=[
            {
                "matcher": {"id": "byName", "options": name},
                "properties": [{"id": "unit", "value": unit}],
            }
            for name, unit in (
                ("radio_rsrp_dbm", "dBm"),
                ("radio_snr_db", "dB"),
                ("lat_deg", "none"),
                ("lon_deg", "none"),
                ("point_n", "none"),
            )
        ],
        thresholds=[("red", None), ("green", rsrp_min)],
        options={
            "view": {
                "id": "fit",
                "allLayers": True,
                "padding": 5,
                "maxZoom": 17,
                "lat": 11.0,
                "lon": 107.2,
                "zoom": 9,
            },
            "controls": {"showZoom": True, "mouseWheelZoom": True, "showScale": True},
            "tooltip": {"mode": "details"},
            "basemap": {"type": "default", "name": w("Bản đồ nền", "Basemap")},
            "layers": [
                _layer(
                    w("4G/5G: RSRP", "4G/5G: RSRP"),
                    "A",
                    {"field": "radio_rsrp_dbm", "fixed": "grey"},
                ),
                _layer(
                    w("2G/3G hoặc mất sóng", "2G/3G or no service"), "B", {"fixed": OTHER_COLOUR}
                ),
            ],
        },
        width=24,
        height=18,
    )


def _runs(w: Words) -> JSON:
    return panel(
        "table",
        w("Các lượt khảo sát", "Survey runs"),
        [
            target("survey_runs", table=True),
            target("survey_run_first", ref="B", table=True),
            target("survey_run_last", ref="C", table=True),
        ],
        description=w(
            "Mỗi lượt khảo sát (một chuyến đi hoặc đi bộ) và thiết bị đo: số điểm trong kỳ, "
            "tỷ lệ điểm định vị tốt, thời điểm điểm đầu tiên và cuối cùng trong kỳ, mới "
            "nhất trước. Chỉ lọc theo lượt khảo sát: mọi điểm của lượt đều được đếm.",
            "Each survey run (one drive or walk) and probe: its points in the range, the "
            "share with a good fix, the time of its first and last point in the range, "
            "newest first. Filtered by the run only: every point of the run counts.",
        ),
        overrides=[
            _coloured("good_fix_share", SHARE_BANDS, "percentunit"),
            _null_is_zero("good_fix_share"),
            {
                "matcher": {"id": "byName", "options": "Time 2"},
                "properties": [{"id": "displayName", "value": w("Điểm đầu tiên", "First point")}],
            },
            {
                "matcher": {"id": "byName", "options": "Time 3"},
                "properties": [{"id": "displayName", "value": w("Điểm cuối cùng", "Last point")}],
            },
        ],
        transformations=[
            {"id": "joinByField", "options": {"byField": "run_id", "mode": "outer"}},
            {
                "id": "organize",
                "options": {"excludeByName": {"Time 1": True, "probe 2": True, "probe 3": True}},
            },
            {"id": "sortBy", "options": {"sort": [{"field": "Time 3", "desc": True}]}},
        ],
        width=24,
    )


def _hamlets(w: Words, rsrp_min: float) -> JSON:
    return panel(
        "table",
        w("Theo ấp/khu phố và nhà mạng", "Per hamlet and operator"),
        [target("survey_hamlets", table=True)],
        description=w(
            "Theo ấp/khu phố (mã trong danh mục địa bàn do bộ thu thập gán cho từng điểm) "
            "và mạng phục vụ (MCC+MNC): số điểm định vị tốt, tỷ lệ điểm trên 4G/5G và RSRP "
            f"trung vị, đỏ dưới {w.num(rsrp_min)} dBm. Thấp nhất trước. Kết luận phủ sóng "
            "(đủ số điểm, tỷ lệ điểm đạt) có trong báo cáo năm.",
            "Per hamlet (the area registry's code the collector gave each point) and "
            "serving network (MCC+MNC): the points with a good fix, the share on 4G/5G and "
            f"the median RSRP, red below {rsrp_min:g} dBm. Lowest first. The coverage "
            "verdicts (enough points, the share of good ones) are in the annual report.",
        ),
        overrides=[
            _coloured("share_4g5g", SHARE_BANDS, "percentunit"),
            _null_is_zero("share_4g5g"),
            _coloured("radio_rsrp_median_dbm", [("red", None), ("green", rsrp_min)], "dBm"),
        ],
        transformations=[
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
            {"id": "sortBy", "options": {"sort": [{"field": "share_4g5g", "desc": False}]}},
        ],
        width=24,
        height=12,
    )


def variables(w: Words) -> list[JSON]:
    """The run (newest first: ids start with their day), the hamlet's commune and the
    hamlet (the registry's codes), then the radio filters of the Radio board."""
    run = tag_variable(w, "run_id", "survey")
    run["sort"] = 2  # alphabetical, descending
    return [
        run,
        tag_variable(w, "hamlet_commune", "survey", ["run_id"]),
        tag_variable(w, "hamlet", "survey", ["run_id", "hamlet_commune"]),
        custom_variable(w, "technology", GENERATIONS),
        tag_variable(w, "mobile_operator", "survey", ["run_id"], key="radio_operator"),
    ]


def survey(w: Words, targets: TargetsFile) -> JSON:
    rsrp_min = targets.coverage.mobile.rsrp_min_dbm
    return dashboard(
        w,
        UIDS["survey"],
        w("probefleet — Khảo sát vùng phủ", "probefleet — Survey"),
        [
            row(w("Bản đồ", "Map")),
            _map(w, rsrp_min),
            row(w("Lượt khảo sát và ấp/khu phố", "Runs and hamlets")),
            _runs(w),
            _hamlets(w, rsrp_min),
        ],
        description=w(
            "Vùng phủ sóng di động theo ấp/khu phố từ các lượt khảo sát (thiết bị đo di "
            "động có GPS, một điểm mỗi vài giây): bản đồ các điểm theo RSRP, các lượt khảo "
            "sát, và từng ấp/khu phố. Lọc theo lượt khảo sát, ấp/khu phố, công nghệ và nhà "
            "mạng.",
            "Mobile coverage per hamlet from survey runs (a portable probe with GPS, a point "
            "every few seconds): the points on a map by RSRP, the runs, and each hamlet. "
            "Filter by run, hamlet, technology and operator.",
        ),
        variables=variables(w),
        time_from="now-7d",
        links=links(w),
    )
