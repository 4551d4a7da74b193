"""The fleet-wide dashboards: Fleet overview (map, reporting, communes at target, alerts as
annotations) and Fleet health (presence, last seen, spool, temperature, budgets, the
collector's own metrics and dead letters)."""

from __future__ import annotations

from probefleet.collector.inventory import TargetsFile

from grafana.common import SHARE_BANDS, UIDS, links, place_variables, share_stat
from grafana.i18n import Words
from grafana.model import (
    JSON,
    alert_annotations,
    dashboard,
    panel,
    row,
    target,
)


def _communes(w: Words, fixed: float, mobile: float) -> JSON:
    """Raw points (medians) up to LONG_RANGE_S, the daily rollups beyond: each pair of
    queries returns nothing outside its range (grafana/panel_queries.py)."""
    return panel(
        "stat",
        w(
            f"Xã/phường đạt {w.num(mobile)}/{w.num(fixed)} Mbit/s (trung vị tải xuống)",
            f"Communes meeting {mobile:g}/{fixed:g} Mbit/s (median download)",
        ),
        [
            target("communes_at_target", ("access",)),
            target("communes_total", ("access",), ref="B"),
            target("communes_at_target_1d", ("access",), ref="C"),
            target("communes_total_1d", ("access",), ref="D"),
        ],
        description=w(
            "Số xã/phường có trung vị tải xuống trong kỳ đạt hoặc vượt mục tiêu của loại "
            "truy nhập, trên số xã/phường đã đo: 'đạt' / 'đã đo' theo loại truy nhập. Kỳ "
            "dài hơn 31 ngày đọc số liệu tổng hợp theo ngày: xã/phường đạt khi ít nhất một "
            "nửa số lần đo đạt mục tiêu (tức là trung vị đạt mục tiêu).",
            "Communes whose median download in the period is at or above the target for "
            "the access type, out of those measured: 'at target' / 'measured' per access "
            "type. Past 31 days it reads the daily rollups: a commune meets the target when "
            "at least half its tests do (which is its median meeting it).",
        ),
        options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
        # Both queries of a pair return "communes": their names say which is which.
        overrides=[
            _named_by_query(ref, w(vi, en))
            for refs, vi, en in (("AC", "Đạt mục tiêu", "At target"), ("BD", "Đã đo", "Measured"))
            for ref in refs
        ],
        width=10,
        height=4,
    )


def _named_by_query(ref: str, label: str) -> JSON:
    return {
        "matcher": {"id": "byFrameRefID", "options": ref},
        "properties": [{"id": "displayName", "value": f"{label} ${{__field.labels.access}}"}],
    }


def fleet_overview(w: Words, targets: TargetsFile) -> JSON:
    fixed, mobile = targets.fixed.download_mbps, targets.mobile.download_mbps
    geomap = panel(
        "geomap",
        w(
            "Thiết bị đo, tô màu theo tỷ lệ lần đo đạt mục tiêu",
            "Probes, coloured by the share of tests at target",
        ),
        [
            target("probe_location", ("probe", "commune"), table=True),
            target("download_summary", ("probe",), ref="B", table=True),
        ],
        description=w(
            "Mỗi thiết bị đo tại tọa độ trong danh mục; màu = tỷ lệ lần tải xuống thành "
            f"công đạt hoặc vượt mục tiêu của kế hoạch ({w.num(fixed)} Mbit/s cố định, "
            f"{w.num(mobile)} Mbit/s di động).",
            "Each probe at its inventory coordinates; colour = share of its completed "
            f"downloads at or above the plan's target ({fixed:g} Mbit/s fixed, "
            f"{mobile:g} Mbit/s mobile).",
        ),
        unit="percentunit",
        thresholds=SHARE_BANDS,
        min_value=0,
        max_value=1,
        transformations=[
            {"id": "joinByField", "options": {"byField": "probe", "mode": "outer"}},
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "Time 1": True, "Time 2": True}},
            },
        ],
        options={
            "view": {"id": "coords", "lat": 11.0, "lon": 107.2, "zoom": 8},
            "controls": {"showZoom": True, "mouseWheelZoom": True},
            "basemap": {"type": "default", "name": w("Bản đồ nền", "Basemap")},
            "layers": [
                {
                    "type": "markers",
                    "name": w("Thiết bị đo", "Probes"),
                    "tooltip": True,
                    "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                    "config": {
                        "showLegend": True,
                        "style": {
                            "size": {"fixed": 9},
                            "color": {"field": "share_at_target", "fixed": "grey"},
                            "text": {"mode": "field", "field": "commune"},
                        },
                    },
                }
            ],
        },
        width=14,
        height=16,
    )
    reporting = panel(
        "stat",
        w("Thiết bị đo đang gửi / trong kỳ", "Probes reporting now / in the period"),
        [target("probes_reporting"), target("probes_known", ref="B")],
        description=w(
            "Thiết bị đo đã gửi báo cáo tình trạng trong 10 phút qua (trực tuyến), và mọi "
            "thiết bị đo đã liên lạc trong kỳ đã chọn: phần chênh lệch là mất kết nối.",
            "Probes that sent a health report in the last 10 minutes (online), and "
            "all probes seen in the selected period: the difference is offline.",
        ),
        options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
        width=10,
        height=4,
    )
    share = share_stat(
        w,
        w("Tỷ lệ lần đo đạt mục tiêu", "Share of tests at target"),
        "download_summary",
        ("access",),
        w(
            "Tỷ lệ lần tải xuống thành công đạt hoặc vượt mục tiêu, theo loại truy nhập.",
            "mean(meets_download_target): completed downloads at or above the target, per "
            "access type.",
        ),
    )
    share["gridPos"]["w"] = 10
    worst = panel(
        "table",
        w(
            "Xã/phường thấp nhất (tỷ lệ lần đo đạt mục tiêu, thấp nhất trước)",
            "Worst communes (share of tests at target, lowest first)",
        ),
        [target("download_summary", ("commune", "access"), table=True)],
        unit="percentunit",
        description=w(
            "15 xã/phường có tỷ lệ lần đo đạt mục tiêu thấp nhất trong kỳ, với trung vị và "
            "phân vị 10.",
            "The 15 communes with the lowest share of tests at target in the period, with "
            "their median and 10th percentile.",
        ),
        transformations=[
            {"id": "sortBy", "options": {"sort": [{"field": "share_at_target", "desc": False}]}},
            {"id": "limit", "options": {"limitField": 15}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
        overrides=[
            {
                "matcher": {"id": "byRegexp", "options": "^(median|p10)_mbps$"},
                "properties": [{"id": "unit", "value": "Mbits"}],
            },
            {
                "matcher": {"id": "byRegexp", "options": "^tests.*"},
                "properties": [{"id": "unit", "value": "none"}],
            },
        ],
        width=10,
        height=8,
    )
    return dashboard(
        w,
        UIDS["fleet"],
        w("probefleet — Tổng quan mạng lưới", "probefleet — Fleet overview"),
        [geomap, reporting, _communes(w, fixed, mobile), share, worst],
        description=w(
            "Thiết bị đo ở đâu, có gửi số liệu không, và các xã/phường so với mục tiêu tải "
            "xuống của kế hoạch ra sao.",
            "Where the probes are, whether they report, and how the communes compare "
            "with the plan's download targets.",
        ),
        variables=place_variables(w),
        links=links(w),
        annotations=[alert_annotations(w)],
    )


def disk_full_column(w: Words) -> JSON:
    """The health table's disk_full_01 column: "full" in red, "ok" in green."""
    return {
        "matcher": {"id": "byName", "options": "disk_full_01"},
        "properties": [
            {"id": "displayName", "value": w("Ổ đĩa", "Disk")},
            {
                "id": "mappings",
                "value": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": w("bình thường", "ok"), "color": "green", "index": 0},
                            "1": {"text": w("ĐẦY", "DISK FULL"), "color": "red", "index": 1},
                        },
                    }
                ],
            },
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
        ],
    }


def _state_column(w: Words) -> JSON:
    return {
        "matcher": {"id": "byName", "options": "state"},
        "properties": [
            {
                "id": "mappings",
                "value": [
                    {
                        "type": "value",
                        "options": {
                            "online": {
                                "text": w("trực tuyến", "online"),
                                "color": "green",
                                "index": 0,
                            },
                            "offline": {
                                "text": w("mất kết nối", "offline"),
                                "color": "red",
                                "index": 1,
                            },
                            "silent": {
                                "text": w("im lặng", "silent"),
                                "color": "orange",
                                "index": 2,
                            },
                        },
                    }
                ],
            },
            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
        ],
    }


def _health_rows(w: Words) -> list[JSON]:
    return [
        row(w("Thiết bị đo", "Probes")),
        panel(
            "stat",
            w(
                "Thiết bị đo trực tuyến / mất kết nối (theo bộ thu thập)",
                "Probes online / offline (collector's presence)",
            ),
            [target("probes_online")],
            description=w(
                "Trực tuyến: trạng thái của thiết bị đo báo như vậy và bộ thu thập đã nghe "
                "thấy nó trong presence.offline_after_s. Mất kết nối gồm cả im lặng (không "
                "có Last Will, không nghe thấy gì). Thiết bị đo chưa từng liên lạc không "
                "được tính.",
                "Online: the probe's status says so and it was heard within "
                "presence.offline_after_s. Offline includes silent (no Last Will, nothing "
                "heard). Probes never seen are left out.",
            ),
            thresholds=[("green", None)],
            options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
            width=8,
        ),
        panel(
            "table",
            w(
                "Hiện diện: trạng thái, lần cuối liên lạc, đường truyền, lần đo cuối, hàng đợi",
                "Presence: state, last seen, line up, last test ok, spool",
            ),
            [target("presence_now", ("probe", "commune"), table=True)],
            description=w(
                "Kết luận của bộ thu thập cho từng thiết bị đo (điểm hiện diện mới nhất).",
                "The collector's verdict per probe (latest presence point).",
            ),
            width=16,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "last_seen_age_s"},
                    "properties": [{"id": "unit", "value": "s"}],
                },
                _state_column(w),
            ],
        ),
        panel(
            "timeseries",
            w("Thiết bị đo trực tuyến theo thời gian", "Probes online over time"),
            [target("presence_over_time", ())],
            description=w(
                "Số thiết bị đo trực tuyến mỗi khoảng thời gian (điểm hiện diện cuối của "
                "mỗi thiết bị trong khoảng).",
                "Probes online per interval (each probe's latest presence point in it).",
            ),
            width=24,
            height=6,
        ),
        panel(
            "table",
            w(
                "Lần cuối liên lạc, nhiệt độ, hàng đợi (báo cáo tình trạng mới nhất)",
                "Last seen, temperature, spool (latest health report)",
            ),
            [
                target("probe_last_seen", ("probe", "commune"), table=True),
                target("probe_health", ("probe",), ref="B", table=True),
            ],
            description=w(
                "Thời điểm báo cáo tình trạng cuối cùng của mỗi thiết bị đo và các số liệu "
                "trong báo cáo đó.",
                "When each probe last sent a health report, and that report's figures.",
            ),
            width=24,
            # Last seen is the time of the last report (query A); B's time is not. Both
            # return uptime_s: after the join they are "uptime_s 1" (A, kept) and
            # "uptime_s 2" (B, hidden), so the overrides name "uptime_s 1" (issue 19: an
            # override on "uptime_s" matched no field).
            transformations=[
                {"id": "joinByField", "options": {"byField": "probe", "mode": "outer"}},
                {
                    "id": "organize",
                    "options": {"excludeByName": {"Time 2": True, "uptime_s 2": True}},
                },
            ],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Time 1"},
                    "properties": [
                        {"id": "displayName", "value": w("Lần cuối liên lạc", "Last seen")},
                        {"id": "unit", "value": "dateTimeFromNow"},
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "temperature_c"},
                    "properties": [{"id": "unit", "value": "celsius"}],
                },
                {
                    "matcher": {"id": "byName", "options": "uptime_s 1"},
                    "properties": [{"id": "unit", "value": "s"}],
                },
                disk_full_column(w),
            ],
        ),
        panel(
            "timeseries",
            w(
                "Lưu trữ: ổ đĩa đầy, kết quả giữ trong bộ nhớ, kết quả bị mất (theo lý do)",
                "Storage: disk full, results held in memory, results lost (by reason)",
            ),
            [target("storage_over_time", ("probe",))],
            description=w(
                "Ổ đĩa đầy: ổ đĩa của thiết bị đo từ chối kết quả (chúng chờ trong bộ nhớ "
                "và được ghi lại khi ổ đĩa nhận lại). Kết quả bị mất: từ trước tới nay, theo "
                "lý do (bộ đếm giữ qua các lần khởi động lại). Báo cáo tình trạng đo khi ổ "
                "đĩa đầy đến khi có chỗ; cảnh báo disk_full và trạng thái lưu giữ báo ngay.",
                "disk_full_01: the probe's disk refused results (they wait in "
                "memory, spool_held, and are spooled when it takes them again). dropped_*: "
                "results lost ever, per reason (counters that survive restarts). A health "
                "report measured while the disk is full arrives once it has room; the "
                "disk_full alert and the retained status tell of it at once.",
            ),
            width=24,
            height=6,
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".*disk_full_01.*"},
                    "properties": [
                        {"id": "custom.drawStyle", "value": "bars"},
                        {"id": "custom.axisPlacement", "value": "right"},
                        {"id": "max", "value": 1},
                    ],
                }
            ],
        ),
        panel(
            "timeseries",
            w("Nhiệt độ, hàng đợi, CPU", "Temperature, spool depth, CPU"),
            [target("health_over_time", ("probe",))],
            description=w(
                "Theo thiết bị đo: nhiệt độ cao nhất, số kết quả chờ gửi cao nhất và CPU "
                "trung bình mỗi khoảng thời gian.",
                "Per probe: highest temperature, highest spool depth and mean CPU per interval.",
            ),
            width=12,
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".*spool_depth.*"},
                    "properties": [{"id": "custom.axisPlacement", "value": "right"}],
                }
            ],
        ),
        panel(
            "bargauge",
            w("Hạn mức dữ liệu di động đã dùng trong tháng", "Mobile data budget used this month"),
            [target("data_budget", ("probe",))],
            description=w(
                "Phần trăm hạn mức dữ liệu hằng tháng đã dùng, theo thiết bị đo và giao "
                "diện mạng có tính cước.",
                "Share of the monthly data budget used, per probe and metered interface.",
            ),
            unit="percent",
            min_value=0,
            max_value=100,
            thresholds=[("green", None), ("orange", 80.0), ("red", 95.0)],
            options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/budget_used_pct/"}},
            width=12,
        ),
        panel(
            "timeseries",
            w("Lượt đo thất bại", "Failed runs"),
            [target("runs_failed", ())],
            description=w(
                "Số lượt đo thất bại mỗi khoảng thời gian, theo loại phép đo.",
                "Failed runs per interval, per measurement kind.",
            ),
            width=12,
        ),
    ]


def _collector_rows(w: Words) -> list[JSON]:
    return [
        row(w("Bộ thu thập", "Collector")),
        panel(
            "timeseries",
            w(
                "Bộ thu thập: đã nhận, đã lưu, bị từ chối, trùng lặp, số thứ tự bị mất",
                "Collector: received, stored, rejected, duplicates, seqs lost",
            ),
            [target("collector_flow", ())],
            description=w(
                "Mỗi khoảng, cộng trên các bộ thu thập (số liệu tự đo, bảng "
                "`collector`). Bị từ chối: bản tin bị từ chối (dead letters) ngay khi phân "
                "tích.",
                "Per bucket, summed over collectors (self-metrics, measurement "
                "collector). rejected = messages dead-lettered at parse time.",
            ),
            width=12,
        ),
        panel(
            "timeseries",
            w(
                "Bộ thu thập: độ trễ, thời gian ghi, hàng đợi, bộ đệm, khoảng trống",
                "Collector: lag, write latency, queue, spool, open gaps",
            ),
            [target("collector_levels", ())],
            description=w(
                "Độ trễ ghi: từ lúc đo tới lúc lưu bền; thời gian ghi: mỗi lần ghi vào "
                "InfluxDB; hàng đợi: đã nhận, chưa xác nhận.",
                "lag_max_s: from measured to durable; write_latency_max_ms: per "
                "InfluxDB write; queue_depth: received, not yet acknowledged.",
            ),
            width=12,
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": "^lag_max_s.*"},
                    "properties": [{"id": "unit", "value": "s"}],
                },
                {
                    "matcher": {"id": "byRegexp", "options": "^write_latency_max_ms.*"},
                    "properties": [
                        {"id": "unit", "value": "ms"},
                        {"id": "custom.axisPlacement", "value": "right"},
                    ],
                },
            ],
        ),
        panel(
            "timeseries",
            w(
                "Bộ thu thập chậm so với máy chủ MQTT: độ trễ và kết quả đang giữ",
                "Collector behind the broker: lag and results held",
            ),
            [target("collector_behind")],
            description=w(
                "Độ chậm so với hàng đợi của máy chủ MQTT (thời gian khứ hồi của một bản "
                "tin bộ thu thập tự gửi qua hàng đợi đó). Trên 120 giây cảnh báo "
                "collector_lag kích hoạt và probe_offline không báo cho các thiết bị đo chỉ "
                "im lặng. Kết quả đang giữ: trong bộ nhớ, chưa xử lý (tối đa receive_maximum).",
                "lag_s: how far behind the broker's queue the collector is (the "
                "round trip of a ping it sends itself through that queue). Above 120 s the "
                "collector_lag alert fires and probe_offline does not page for probes that "
                "are merely silent; presence adds this lag to offline_after. held: results "
                "in memory, not yet handled (at most its receive_maximum).",
            ),
            width=12,
            thresholds=[("green", None), ("orange", 60.0), ("red", 120.0)],
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": "^lag_s.*"},
                    "properties": [{"id": "unit", "value": "s"}],
                },
                {
                    "matcher": {"id": "byRegexp", "options": "^held.*"},
                    "properties": [{"id": "custom.axisPlacement", "value": "right"}],
                },
            ],
        ),
        panel(
            "stat",
            w("Bản tin bị từ chối trong kỳ", "Dead letters in the period"),
            [target("dead_letters", ())],
            thresholds=[("green", None), ("red", 1.0)],
            width=12,
            description=w(
                "Bản tin bị từ chối và điểm InfluxDB từ chối: lệnh `probe-collector "
                "deadletters` liệt kê chúng kèm lý do.",
                "Refused messages (rejected) and points InfluxDB refused "
                "(points_rejected): `probe-collector deadletters` lists them with the reason.",
            ),
            options={"reduceOptions": {"calcs": ["sum"]}, "colorMode": "background"},
        ),
    ]


def fleet_health(w: Words) -> JSON:
    return dashboard(
        w,
        UIDS["health"],
        w("probefleet — Tình trạng mạng lưới", "probefleet — Fleet health"),
        [*_health_rows(w), *_collector_rows(w)],
        description=w(
            "Bản thân mạng lưới có ổn không: lần cuối liên lạc, hàng đợi, nhiệt độ, hạn mức "
            "dữ liệu, số liệu tự đo của bộ thu thập và các bản tin bị từ chối.",
            "Is the fleet itself healthy: last seen, spool depth, temperature, data "
            "budgets, the collector's own metrics and its dead letters.",
        ),
        variables=place_variables(w),
        time_from="now-24h",
        links=links(w),
    )
