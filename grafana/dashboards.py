"""The per-commune dashboards (Commune, Compliance, IPv6 readiness) and the list of all of
them, each with a stable uid (links and bookmarks rely on it; grafana/common.py), in the
language of a :class:`~grafana.i18n.Words`.

Every panel's query is a named entry of :data:`grafana.panel_queries.PANEL_QUERIES` — the
catalogue the annual report also runs — grouped by the tags the panel needs."""

from __future__ import annotations

from probefleet.collector.inventory import TargetsFile

from grafana.common import SHARE_BANDS, UIDS, links, place_variables, share_stat
from grafana.fleet_boards import disk_full_column, fleet_health, fleet_overview
from grafana.i18n import Words
from grafana.model import (
    JSON,
    alert_annotations,
    dashboard,
    panel,
    peak_hours_region,
    row,
    target,
    threshold_line,
)
from grafana.radio_board import radio
from grafana.survey_board import survey
from grafana.year_board import year

_HIDE = {"id": "custom.hideFrom", "value": {"viz": True, "legend": True, "tooltip": False}}


def commune(w: Words) -> JSON:
    speed = {"custom": {"drawStyle": "points", "pointSize": 5}}
    down = panel(
        "timeseries",
        w(
            "Tải xuống từng lần đo so với mục tiêu (thấp nhất và cao nhất mỗi khoảng)",
            "Download per test against the target (lowest and highest per interval)",
        ),
        [target("download_tests", ("probe", "access"))],
        unit="Mbits",
        description=w(
            "Mỗi điểm: lần tải xuống thành công thấp nhất hoặc cao nhất trong khoảng thời "
            "gian của nó (vài ngày: mỗi điểm một lần đo; cả năm: độ phân tán của mỗi "
            "khoảng). Đường kẻ: mục tiêu của kế hoạch cho loại truy nhập của thiết bị đo.",
            "Each point: the lowest or the highest completed download in its time "
            "interval (one test per point over a few days; over a year the spread per "
            "interval). The line: the plan's target for the probe's access type.",
        ),
        overrides=[
            threshold_line("target_download_mbps"),
            {"matcher": {"id": "byRegexp", "options": "^tests.*"}, "properties": [_HIDE]},
        ],
        options={"legend": {"displayMode": "table", "placement": "bottom"}},
        width=24,
    )
    down["fieldConfig"]["defaults"].update(speed)
    return dashboard(
        w,
        UIDS["commune"],
        w("probefleet — Xã/phường", "probefleet — Commune"),
        [
            row(w("Tốc độ", "Speed")),
            down,
            panel(
                "timeseries",
                w(
                    "Tải xuống: trung vị và tỷ lệ đạt mục tiêu",
                    "Download: median and share at target",
                ),
                [target("download_over_time", ("access",))],
                unit="Mbits",
                description=w(
                    "Trung vị tải xuống mỗi khoảng thời gian (trục trái) và tỷ lệ lần đo "
                    "đạt mục tiêu (trục phải), theo loại truy nhập.",
                    "Median download per interval (left axis) and the share of tests at "
                    "target (right axis), per access type.",
                ),
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": ".*share_at_target.*"},
                        "properties": [
                            {"id": "unit", "value": "percentunit"},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    },
                    {"matcher": {"id": "byRegexp", "options": ".*tests.*"}, "properties": [_HIDE]},
                ],
            ),
            panel(
                "timeseries",
                w("Tải lên (trung vị)", "Upload (median)"),
                [target("upload_over_time", ("access",))],
                unit="Mbits",
                description=w(
                    "Trung vị tải lên mỗi khoảng thời gian, theo loại truy nhập.",
                    "Median upload per interval, per access type.",
                ),
            ),
            row(w("Độ trễ", "Latency")),
            panel(
                "timeseries",
                w("Độ trễ, biến động trễ và mất gói", "Latency, jitter and loss"),
                [target("latency_over_time", ("target",))],
                unit="ms",
                description=w(
                    "Theo từng đích đo: độ trễ trung vị, biến động trễ (ms) và mất gói "
                    "(%, trục phải) mỗi khoảng thời gian.",
                    "Per target: median round trip, jitter (ms) and loss (%, right axis) "
                    "per interval.",
                ),
                overrides=[
                    {
                        "matcher": {"id": "byRegexp", "options": ".*loss_pct.*"},
                        "properties": [
                            {"id": "unit", "value": "percent"},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    }
                ],
            ),
            panel(
                "table",
                w("Phân giải tên miền (DNS)", "DNS resolution"),
                [target("dns_time", ("probe",), table=True)],
                unit="ms",
                description=w(
                    "Theo thiết bị đo, máy chủ DNS và loại bản ghi: thời gian phân giải "
                    "trung vị, số truy vấn có trả lời và tổng số truy vấn.",
                    "Per probe, resolver and record type: median resolution time, queries "
                    "answered and queries made.",
                ),
            ),
            row(w("IPv6, dịch vụ, tình trạng thiết bị", "IPv6, services, health")),
            panel(
                "timeseries",
                w("IPv6 hoạt động (tỷ lệ lượt đo)", "IPv6 works (share of runs)"),
                [target("ipv6_over_time", ("probe",))],
                unit="percentunit",
                min_value=0,
                max_value=1,
                width=8,
                description=w(
                    "Tỷ lệ lượt đo có địa chỉ và định tuyến IPv6 toàn cầu, và tỷ lệ lượt "
                    "đo IPv6 hoạt động đầu cuối, theo thiết bị đo.",
                    "Share of runs with a global IPv6 address and route (capable) and "
                    "working end to end (works), per probe.",
                ),
            ),
            panel(
                "table",
                w("Dịch vụ của tỉnh", "Provincial services"),
                [target("service_availability", (), table=True)],
                unit="percentunit",
                width=8,
                description=w(
                    "Khả dụng của từng dịch vụ dùng chung của tỉnh trong kỳ: tỷ lệ lượt "
                    "kiểm tra thành công.",
                    "Availability of each shared provincial service in the period: the "
                    "share of checks that succeeded.",
                ),
            ),
            panel(
                "timeseries",
                w(
                    "Dịch vụ của tỉnh: khả dụng theo thời gian",
                    "Provincial services: availability over time",
                ),
                [target("service_over_time", ("commune",))],
                unit="percentunit",
                min_value=0,
                max_value=1,
                width=24,
                description=w(
                    "Khả dụng dịch vụ mỗi khoảng thời gian, theo dịch vụ và xã/phường.",
                    "Service availability per interval, per service and commune.",
                ),
            ),
            panel(
                "table",
                w("Tình trạng thiết bị đo", "Probe health"),
                [target("probe_health", ("probe",), table=True)],
                width=8,
                overrides=[disk_full_column(w)],
                description=w(
                    "Báo cáo tình trạng mới nhất của mỗi thiết bị đo: nhiệt độ, CPU, ổ "
                    "đĩa, kết quả chờ gửi và bị mất.",
                    "Each probe's latest health report: temperature, CPU, disk, results "
                    "waiting and lost.",
                ),
            ),
        ],
        description=w(
            "Chi tiết một (hoặc vài) xã/phường: từng lần đo so với mục tiêu, độ trễ, DNS, "
            "IPv6, các dịch vụ của tỉnh và tình trạng thiết bị đo.",
            "One commune (or several) in detail: every test against the target line, "
            "latency, DNS, IPv6, the provincial services and the probe's health.",
        ),
        variables=place_variables(w, "service", "target"),
        annotations=[peak_hours_region(w), alert_annotations(w)],
        time_from="now-2d",
        links=links(w),
    )


def _share_column() -> JSON:
    return {
        "matcher": {"id": "byName", "options": "share_at_target"},
        "properties": [
            {"id": "unit", "value": "percentunit"},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            {
                "id": "thresholds",
                "value": {
                    "mode": "absolute",
                    "steps": [{"color": c, "value": v} for c, v in SHARE_BANDS],
                },
            },
        ],
    }


def compliance(w: Words, targets: TargetsFile) -> JSON:
    fixed, mobile = targets.fixed.download_mbps, targets.mobile.download_mbps
    table_opts = {"cellHeight": "sm", "showHeader": True}
    by: list[JSON] = []
    for tag in ("district", "operator", "access"):
        by.append(
            panel(
                "table",
                w(
                    f"Tải xuống theo {w.column(tag).lower()}: trung vị, phân vị 10, "
                    "tỷ lệ đạt mục tiêu",
                    f"Download by {tag}: median, 10th percentile, share at target",
                ),
                [
                    target(
                        "download_summary",
                        (tag, "access") if tag != "access" else ("access",),
                        table=True,
                    )
                ],
                description=w(
                    "Các lần tải xuống thành công trong kỳ: trung vị, phân vị 10 (giá trị "
                    "mà 10 % lần đo thấp hơn), số lần đo và tỷ lệ lần đo đạt mục tiêu.",
                    "Completed downloads in the period: median, 10th percentile (the speed "
                    "10 % of tests fell below), tests and the share of tests at target.",
                ),
                options=table_opts,
                overrides=[
                    _share_column(),
                    {
                        "matcher": {"id": "byRegexp", "options": "^(median|p10)_mbps$"},
                        "properties": [{"id": "unit", "value": "Mbits"}],
                    },
                ],
                transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
                width=12 if tag != "access" else 24,
            )
        )
    return dashboard(
        w,
        UIDS["compliance"],
        w(
            "probefleet — Mức độ đạt chỉ tiêu của kế hoạch",
            "probefleet — Compliance with the plan's targets",
        ),
        [
            share_stat(
                w,
                w("Tỷ lệ lần đo đạt mục tiêu", "Share of tests at target"),
                "download_summary",
                ("access",),
                w(
                    f"Các lần tải xuống thành công đạt hoặc vượt {w.num(fixed)} Mbit/s (cố "
                    f"định) hoặc {w.num(mobile)} Mbit/s (di động), như FCC/Ofcom công bố.",
                    f"Completed downloads at or above {fixed:g} Mbit/s (fixed) or "
                    f"{mobile:g} Mbit/s (mobile), as FCC/Ofcom report it.",
                ),
            ),
            panel(
                "stat",
                w("Trung vị tải xuống", "Median download"),
                [target("download_summary", ("access",))],
                unit="Mbits",
                description=w(
                    "Số liệu i-Speed công bố: trung vị.",
                    "The figure i-Speed publishes: the median.",
                ),
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/median_mbps/"}},
                width=8,
                height=5,
            ),
            panel(
                "stat",
                w("Trung vị tải lên", "Median upload"),
                [target("upload_summary", ("access",))],
                unit="Mbits",
                description=w(
                    "Trung vị tải lên của các lần đo thành công, theo loại truy nhập.",
                    "Median upload of the completed tests, per access type.",
                ),
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/median_mbps/"}},
                width=8,
                height=5,
            ),
            *by,
            panel(
                "timeseries",
                w(
                    "Tải xuống theo giờ trong ngày (giờ Việt Nam): trung vị và số lần đo đạt "
                    "mục tiêu; 19:00-23:00 là giờ cao điểm",
                    "Download by hour of day (province time): median and tests "
                    "at target; 19:00-23:00 is the peak",
                ),
                [target("download_by_hour", ("access",))],
                unit="Mbits",
                width=24,
                description=w(
                    "Trung vị theo giờ qua thời gian. Báo cáo năm gộp chúng thành 24 giờ "
                    "trong ngày và báo cáo riêng giờ cao điểm.",
                    "Hourly medians over time. The report folds them into the 24 "
                    "hours of the day and reports the peak apart (download_peak).",
                ),
            ),
            panel(
                "table",
                w(
                    "Cách đo (phương thức, máy chủ đo, phiên bản IP)",
                    "How the tests were made (method, server, IP version)",
                ),
                [target("throughput_method", (), table=True)],
                width=12,
                description=w(
                    "Số lần đo theo phương thức, máy chủ đo và phiên bản IP.",
                    "Tests per method, test server and IP version.",
                ),
            ),
            panel(
                "table",
                w(
                    "Lượt đo theo trạng thái (thành công, thất bại, hoãn)",
                    "Runs by status (ok, failed, skipped)",
                ),
                [target("throughput_runs", ("access",), table=True)],
                width=12,
                description=w(
                    "Lượt đo tốc độ trong kỳ theo trạng thái: thất bại không có kết quả, "
                    "hoãn khi đường truyền bận.",
                    "Throughput runs in the period by status: failed ones have no result, "
                    "skipped ones met a busy line.",
                ),
            ),
        ],
        description=w(
            "Trung vị và tỷ lệ lần đo đạt hoặc vượt mục tiêu của kế hoạch, theo huyện, nhà "
            "mạng, loại truy nhập và giờ trong ngày — như i-Speed và FCC công bố.",
            "Medians and the share of tests at or above the plan's targets, by "
            "district, operator, access type and hour of day — the way i-Speed and the FCC "
            "report.",
        ),
        variables=place_variables(w),
        annotations=[peak_hours_region(w)],
        time_from="now-30d",
        links=links(w),
    )


def ipv6(w: Words, targets: TargetsFile) -> JSON:
    expected = targets.ipv6.works_pct
    bands = [("red", None), ("green", expected / 100)] if expected else SHARE_BANDS
    return dashboard(
        w,
        UIDS["ipv6"],
        w("probefleet — Sẵn sàng IPv6", "probefleet — IPv6 readiness"),
        [
            panel(
                "stat",
                w(
                    "Có IPv6 / IPv6 hoạt động (tỷ lệ lượt đo)",
                    "IPv6 capable / works (share of runs)",
                ),
                [target("ipv6_readiness", ())],
                unit="percentunit",
                thresholds=bands,
                min_value=0,
                max_value=1,
                width=8,
                height=6,
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/_share$/"}},
                description=w(
                    "Có IPv6: địa chỉ và định tuyến IPv6 toàn cầu. Hoạt động: kết nối IPv6 "
                    "đầu cuối thành công.",
                    "Capable: a global IPv6 address and route. Works: end-to-end IPv6 "
                    "reachability.",
                ),
            ),
            panel(
                "table",
                w("Theo xã/phường", "By commune"),
                [target("ipv6_readiness", ("commune", "operator"), table=True)],
                unit="percentunit",
                width=16,
                height=10,
                transformations=[
                    {"id": "sortBy", "options": {"sort": [{"field": "works_share", "desc": False}]}}
                ],
                description=w(
                    "Tỷ lệ có IPv6 và IPv6 hoạt động theo xã/phường và nhà mạng, thấp nhất trước.",
                    "IPv6 capable and works shares per commune and operator, lowest first.",
                ),
            ),
            panel(
                "bargauge",
                w(
                    "Các phép kiểm tra đạt (địa chỉ toàn cầu, định tuyến, AAAA, TCP, HTTP)",
                    "Checks passed (global address, route, AAAA, TCP, HTTP)",
                ),
                [target("ipv6_checks", ())],
                unit="percentunit",
                min_value=0,
                max_value=1,
                thresholds=SHARE_BANDS,
                width=12,
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/pass_share/"}},
                description=w(
                    "Tỷ lệ đạt của từng phép kiểm tra IPv6 trong kỳ.",
                    "The share of runs passing each IPv6 check in the period.",
                ),
            ),
            panel(
                "table",
                w("Thời gian kết nối TCP, IPv6 so với IPv4", "TCP connect time, IPv6 against IPv4"),
                [target("ipv6_checks", ("operator",), table=True)],
                unit="ms",
                width=12,
                description=w(
                    "Thời gian kết nối TCP trung vị qua IPv6 và qua IPv4, theo nhà mạng.",
                    "Median TCP connect time over IPv6 and over IPv4, per operator.",
                ),
            ),
            panel(
                "timeseries",
                w(
                    "IPv6 hoạt động theo thời gian, theo xã/phường",
                    "IPv6 works over time, per commune",
                ),
                [target("ipv6_over_time", ("commune",))],
                unit="percentunit",
                width=24,
                min_value=0,
                max_value=1,
                description=w(
                    "Tỷ lệ lượt đo IPv6 hoạt động mỗi khoảng thời gian, theo xã/phường.",
                    "Share of runs where IPv6 works, per interval and commune.",
                ),
            ),
        ],
        description=w(
            "Lộ trình chuyển đổi IPv6 của kế hoạch (mục IV.1), theo từng xã/phường: địa chỉ "
            "và định tuyến toàn cầu (có IPv6), kết nối đầu cuối (hoạt động), các phép kiểm "
            "tra.",
            "The plan's IPv6 transition (section IV.1), commune by commune: global "
            "address and route (capable), end-to-end reachability (works), checks.",
        ),
        variables=place_variables(w),
        time_from="now-30d",
        links=links(w),
    )


def all_dashboards(targets: TargetsFile, w: Words) -> dict[str, JSON]:
    """File stem -> dashboard JSON, in ``w``'s language."""
    return {
        "fleet-overview": fleet_overview(w, targets),
        "commune": commune(w),
        "compliance": compliance(w, targets),
        "ipv6-readiness": ipv6(w, targets),
        "fleet-health": fleet_health(w),
        "year": year(w),
        "radio": radio(w),
        "survey": survey(w, targets),
    }
