"""The Year board: every panel on the daily rollups, for ranges of weeks to years (the other
boards read raw points and are meant for up to a month)."""

from __future__ import annotations

from grafana.common import SHARE_BANDS, UIDS, links, place_variables
from grafana.i18n import Words
from grafana.model import JSON, dashboard, panel, row, target

_SHARE_RIGHT = {
    "matcher": {"id": "byRegexp", "options": ".*share.*"},
    "properties": [
        {"id": "unit", "value": "percentunit"},
        {"id": "custom.axisPlacement", "value": "right"},
    ],
}
_HIDE_COUNTS = {
    "matcher": {"id": "byRegexp", "options": ".*(tests|runs|checks|probes).*"},
    "properties": [
        {"id": "custom.hideFrom", "value": {"viz": True, "legend": True, "tooltip": False}}
    ],
}


def year(w: Words) -> JSON:
    return dashboard(
        w,
        UIDS["year"],
        w("probefleet — Cả năm", "probefleet — Year"),
        [
            row(w("Tốc độ (số liệu tổng hợp theo ngày)", "Speed (daily rollups)")),
            panel(
                "timeseries",
                w(
                    "Tải xuống theo ngày: trung bình và tỷ lệ đạt mục tiêu",
                    "Download per day: mean and share at target",
                ),
                [target("year_download", ("access",))],
                unit="Mbits",
                description=w(
                    "Mỗi ngày: tải xuống trung bình của các lần đo và tỷ lệ lần đo đạt mục "
                    "tiêu (trục phải), theo loại truy nhập.",
                    "Per day: the mean download of the tests and the share of tests at "
                    "target (right axis), per access type.",
                ),
                overrides=[_SHARE_RIGHT, _HIDE_COUNTS],
            ),
            panel(
                "timeseries",
                w("Tải lên theo ngày (trung bình)", "Upload per day (mean)"),
                [target("year_upload", ("access",))],
                unit="Mbits",
                description=w(
                    "Mỗi ngày: tải lên trung bình của các lần đo, theo loại truy nhập.",
                    "Per day: the mean upload of the tests, per access type.",
                ),
                overrides=[_HIDE_COUNTS],
            ),
            panel(
                "timeseries",
                w("Lượt đo tốc độ theo ngày và trạng thái", "Throughput runs per day by status"),
                [target("year_runs", ())],
                description=w(
                    "Số lượt đo tốc độ mỗi ngày: thành công, thất bại, hoãn.",
                    "Throughput runs per day: ok, failed, skipped.",
                ),
                width=24,
            ),
            row(
                w(
                    "Độ trễ, dịch vụ, IPv6, thời gian hoạt động",
                    "Latency, services, IPv6, uptime",
                )
            ),
            panel(
                "timeseries",
                w(
                    "Độ trễ theo ngày: trung bình các trung vị, mất gói",
                    "Latency per day: mean of the runs' medians, loss",
                ),
                [target("year_latency", ("target",))],
                unit="ms",
                description=w(
                    "Mỗi ngày và đích đo: trung bình độ trễ trung vị của các lượt đo (ms) và "
                    "mất gói (%, trục phải).",
                    "Per day and target: the mean of the runs' median round trips (ms) and "
                    "loss (%, right axis).",
                ),
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": ".*loss_pct.*"},
                        "properties": [
                            {"id": "unit", "value": "percent"},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    },
                    _HIDE_COUNTS,
                ],
            ),
            panel(
                "timeseries",
                w("Khả dụng dịch vụ theo ngày", "Service availability per day"),
                [target("year_service", ())],
                unit="percentunit",
                min_value=0,
                max_value=1,
                thresholds=SHARE_BANDS,
                description=w(
                    "Mỗi ngày và dịch vụ: tỷ lệ lượt kiểm tra thành công.",
                    "Per day and service: the share of checks that succeeded.",
                ),
                overrides=[_HIDE_COUNTS],
            ),
            panel(
                "timeseries",
                w("IPv6 hoạt động theo ngày (tỷ lệ lượt đo)", "IPv6 works per day (share of runs)"),
                [target("year_ipv6", ())],
                unit="percentunit",
                min_value=0,
                max_value=1,
                description=w(
                    "Mỗi ngày: tỷ lệ lượt đo IPv6 hoạt động đầu cuối.",
                    "Per day: the share of runs where IPv6 works end to end.",
                ),
                overrides=[_HIDE_COUNTS],
            ),
            panel(
                "timeseries",
                w(
                    "Thời gian hoạt động của thiết bị đo theo ngày (số giờ có báo cáo / 24)",
                    "Probe uptime per day (hours reporting / 24)",
                ),
                [target("year_uptime", ())],
                unit="percentunit",
                min_value=0,
                max_value=1,
                description=w(
                    "Mỗi ngày: số giờ có báo cáo tình trạng chia 24, trung bình trên các "
                    "thiết bị đo đã gửi trong ngày.",
                    "Per day: hours with a health report / 24, the mean over the probes "
                    "that reported that day.",
                ),
                overrides=[_HIDE_COUNTS],
            ),
        ],
        description=w(
            "Cả năm trong một trang từ số liệu tổng hợp theo ngày (mỗi thiết bị đo một điểm "
            "mỗi ngày): trung bình và tỷ lệ; báo cáo năm cho trung vị. Với một ngày hoặc "
            "một tuần, dùng trang Xã/phường và Mức độ đạt chỉ tiêu (số liệu gốc).",
            "A year at a glance from the daily rollups (one point per probe and day): "
            "means and shares; the annual report gives medians. For a day or a week, use the "
            "Commune and Compliance boards (raw points).",
        ),
        variables=place_variables(w, "service", "target"),
        time_from="now-1y",
        links=links(w),
    )
