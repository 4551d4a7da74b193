"""The dashboards' and alert rules' words in Vietnamese and English, from the same code.

Every human-readable text a board shows is written once as a pair at its place of use,
``w("Tải xuống", "Download")``, and :class:`Words` picks the board's language. The terms are
the annual report's (collector/report/i18n.py): "Tải xuống", "Trung vị", "Tỷ lệ lần đo đạt
mục tiêu", "Xã/phường", "Nhà mạng", "Thiết bị đo" ... Column names of the queries
(``median_mbps``) get a label per language here (:data:`COLUMNS`), shown through field
overrides, so the query texts stay the catalogue's.

Usage::

    w = Words("vi")
    w("Tải xuống theo giờ", "Download by hour")     # -> "Tải xuống theo giờ"
    w.column("median_mbps")                          # -> "Trung vị (Mbit/s)"
"""

from __future__ import annotations

import unicodedata
from typing import Final, Literal

Lang = Literal["vi", "en"]
LANGS: Final[tuple[Lang, ...]] = ("vi", "en")

# Query columns and tags -> (vi, en) label. A column missing here keeps its own name (a test
# lists every column of every panel query and checks it is here).
COLUMNS: Final[dict[str, tuple[str, str]]] = {
    # tags
    "province": ("Tỉnh", "Province"),
    "district": ("Huyện", "District"),
    "commune": ("Xã/phường", "Commune"),
    "probe": ("Thiết bị đo", "Probe"),
    "operator": ("Nhà mạng", "Operator"),
    "access": ("Loại truy nhập", "Access"),
    "service": ("Dịch vụ", "Service"),
    "target": ("Đích đo", "Target"),
    "status": ("Trạng thái", "Status"),
    "method": ("Phương thức", "Method"),
    "server": ("Máy chủ đo", "Test server"),
    "ip_version": ("Phiên bản IP", "IP version"),
    "resolver": ("Máy chủ DNS", "DNS resolver"),
    "rrtype": ("Loại bản ghi", "Record type"),
    "check": ("Phép kiểm tra", "Check"),
    "interface": ("Giao diện mạng", "Interface"),
    "collector": ("Bộ thu thập", "Collector"),
    "radio_technology": ("Công nghệ", "Technology"),
    "radio_operator": ("Nhà mạng di động (MCC+MNC)", "Mobile operator (MCC+MNC)"),
    "technology": ("Công nghệ", "Technology"),  # the variable over radio_technology
    # speeds
    "median_mbps": ("Trung vị (Mbit/s)", "Median (Mbit/s)"),
    "p10_mbps": ("Phân vị 10 (Mbit/s)", "10th percentile (Mbit/s)"),
    "mean_mbps": ("Trung bình (Mbit/s)", "Mean (Mbit/s)"),
    "download_mbps": ("Tải xuống (Mbit/s)", "Download (Mbit/s)"),
    "download_min_mbps": ("Tải xuống thấp nhất (Mbit/s)", "Lowest download (Mbit/s)"),
    "download_max_mbps": ("Tải xuống cao nhất (Mbit/s)", "Highest download (Mbit/s)"),
    "target_download_mbps": ("Mục tiêu (Mbit/s)", "Target (Mbit/s)"),
    "tests": ("Số lần đo", "Tests"),
    "download_streams": ("Luồng tải xuống", "Download streams"),
    "upload_streams": ("Luồng tải lên", "Upload streams"),
    "download_duration_s": ("Thời lượng tải xuống (giây)", "Download duration (s)"),
    "upload_duration_s": ("Thời lượng tải lên (giây)", "Upload duration (s)"),
    "runs_answered": ("Số lượt đo có phản hồi", "Runs answered"),
    "tests_with_target": ("Số lần đo có mục tiêu", "Tests with a target"),
    "tests_at_target": ("Số lần đo đạt mục tiêu", "Tests at target"),
    "share_at_target": ("Tỷ lệ lần đo đạt mục tiêu", "Share of tests at target"),
    "communes": ("Số xã/phường", "Communes"),
    "runs": ("Số lượt đo", "Runs"),
    # latency, DNS, IPv6, services
    "rtt_median_ms": ("Độ trễ trung vị (ms)", "Median round trip (ms)"),
    "rtt_mean_ms": ("Độ trễ trung bình (ms)", "Mean round trip (ms)"),
    "jitter_ms": ("Biến động trễ (ms)", "Jitter (ms)"),
    "jitter_median_ms": ("Biến động trễ trung vị (ms)", "Median jitter (ms)"),
    "loss_pct": ("Mất gói (%)", "Loss (%)"),
    "time_median_ms": ("Thời gian phân giải trung vị (ms)", "Median resolution time (ms)"),
    "answered": ("Số truy vấn có trả lời", "Answered"),
    "queries": ("Số truy vấn", "Queries"),
    "capable_share": ("Tỷ lệ có IPv6", "IPv6 capable (share)"),
    "works_share": ("Tỷ lệ IPv6 hoạt động", "IPv6 works (share)"),
    "pass_share": ("Tỷ lệ đạt", "Passed (share)"),
    "rtt_v6_ms": ("Kết nối TCP qua IPv6 (ms)", "TCP connect over IPv6 (ms)"),
    "rtt_v4_ms": ("Kết nối TCP qua IPv4 (ms)", "TCP connect over IPv4 (ms)"),
    "checks": ("Số lượt kiểm tra", "Checks"),
    "availability": ("Khả dụng dịch vụ", "Service availability"),
    "total_median_ms": ("Thời gian phản hồi trung vị (ms)", "Median response time (ms)"),
    # the probes' health and the collector
    "lat": ("Vĩ độ", "Latitude"),
    "lon": ("Kinh độ", "Longitude"),
    "probes": ("Số thiết bị đo", "Probes"),
    "online": ("Trực tuyến", "Online"),
    "offline": ("Mất kết nối", "Offline"),
    "probes_online": ("Thiết bị trực tuyến", "Probes online"),
    "state": ("Trạng thái", "State"),
    "online_01": ("Trực tuyến (0/1)", "Online (0/1)"),
    "last_seen_age_s": ("Lần cuối liên lạc (giây trước)", "Last seen (s ago)"),
    "line_up_01": ("Đường truyền hoạt động (0/1)", "Line up (0/1)"),
    "last_test_ok_01": ("Lần đo cuối thành công (0/1)", "Last test ok (0/1)"),
    "uptime_s": ("Thời gian chạy liên tục", "Uptime"),
    "uptime_share": ("Thời gian hoạt động", "Probe uptime"),
    "temperature_c": ("Nhiệt độ (°C)", "Temperature (°C)"),
    "cpu_pct": ("CPU (%)", "CPU (%)"),
    "disk_used_pct": ("Ổ đĩa đã dùng (%)", "Disk used (%)"),
    "disk_full_01": ("Ổ đĩa", "Disk"),
    "spool_depth": ("Kết quả chờ gửi", "Results waiting (spool)"),
    "spool_dropped": ("Kết quả bị mất", "Results lost"),
    "spool_held": ("Kết quả giữ trong bộ nhớ", "Results held in memory"),
    "dropped_disk_full": ("Mất do ổ đĩa đầy", "Lost: disk full"),
    "dropped_spool_budget": ("Mất do vượt hạn mức hàng đợi", "Lost: spool budget"),
    "dropped_unspoolable": ("Mất do không ghi được", "Lost: unspoolable"),
    "budget_used_pct": ("Hạn mức dữ liệu đã dùng (%)", "Data budget used (%)"),
    "budget_used_bytes": ("Dữ liệu đã dùng", "Data used"),
    "budget_limit_bytes": ("Hạn mức dữ liệu", "Data budget"),
    "received": ("Đã nhận", "Received"),
    "stored": ("Đã lưu", "Stored"),
    "rejected": ("Bị từ chối", "Rejected"),
    "duplicates": ("Trùng lặp", "Duplicates"),
    "seqs_lost": ("Số thứ tự bị mất", "Seqs lost"),
    "lag_max_s": ("Độ trễ ghi lớn nhất (giây)", "Lag, max (s)"),
    "write_latency_max_ms": ("Thời gian ghi lớn nhất (ms)", "Write latency, max (ms)"),
    "queue_depth": ("Hàng đợi", "Queue depth"),
    "spool_points": ("Điểm trong bộ đệm", "Spooled points"),
    "gaps_open": ("Khoảng trống đang chờ", "Open gaps"),
    "lag_s": ("Chậm so với máy chủ MQTT (giây)", "Behind the broker (s)"),
    "held": ("Kết quả đang giữ", "Results held"),
    "points_rejected": ("Điểm bị InfluxDB từ chối", "Points InfluxDB refused"),
    # radio (issue 21)
    "radio_rsrp_dbm": ("RSRP (dBm)", "RSRP (dBm)"),
    "radio_snr_db": ("SINR (dB)", "SINR (dB)"),
    "radio_rsrp_min_dbm": ("RSRP thấp nhất (dBm)", "Weakest RSRP (dBm)"),
    "radio_rsrq_db": ("RSRQ (dB)", "RSRQ (dB)"),
    "radio_nr_rsrp_dbm": ("RSRP 5G (dBm)", "5G RSRP (dBm)"),
    "radio_signal_quality_pct": ("Chất lượng tín hiệu (%)", "Signal quality (%)"),
    "reads": ("Số lần đọc", "Reads"),
    "share_5g": ("Tỷ lệ thời gian 5G", "Share of time on 5G"),
    "share_4g": ("Tỷ lệ thời gian 4G", "Share of time on 4G"),
    "share_3g": ("Tỷ lệ thời gian 3G", "Share of time on 3G"),
    "share_2g": ("Tỷ lệ thời gian 2G", "Share of time on 2G"),
    "share_none": ("Tỷ lệ thời gian mất sóng", "Share of time without service"),
    # survey and hamlet coverage (issue 22)
    "run_id": ("Lượt khảo sát", "Survey run"),
    "hamlet": ("Ấp/khu phố", "Hamlet"),
    "hamlet_commune": ("Xã/phường của ấp", "Hamlet's commune"),
    "lat_deg": ("Vĩ độ", "Latitude"),
    "lon_deg": ("Kinh độ", "Longitude"),
    "point_n": ("Số thứ tự điểm", "Point number"),
    "points": ("Số điểm", "Points"),
    "good_fix_share": ("Tỷ lệ điểm định vị tốt", "Share with a good fix"),
    "first_point_n": ("Điểm đầu tiên (số thứ tự)", "First point (number)"),
    "last_point_n": ("Điểm cuối cùng (số thứ tự)", "Last point (number)"),
    "share_4g5g": ("Tỷ lệ điểm trên 4G/5G", "Share on 4G/5G"),
    "radio_rsrp_median_dbm": ("RSRP trung vị (dBm)", "Median RSRP (dBm)"),
}

# Grafana unit -> axis label, per language.
AXIS_LABELS: Final[dict[str, tuple[str, str]]] = {
    "Mbits": ("Tốc độ (Mbit/s)", "Speed (Mbit/s)"),
    "ms": ("Thời gian (ms)", "Time (ms)"),
    "percentunit": ("Tỷ lệ", "Share"),
    "percent": ("Phần trăm", "Percent"),
    "dBm": ("Cường độ tín hiệu (dBm)", "Signal strength (dBm)"),
    "dB": ("Tỷ số (dB)", "Ratio (dB)"),
}


class Words:
    """One board's language: ``w(vi, en)`` picks the text, ``w.column(name)`` a label.
    ``primary``: the deployment's own language, whose boards keep the stable uids; the
    other language's uids end in ``-<lang>``."""

    def __init__(self, lang: Lang, *, primary: bool = True) -> None:
        if lang not in LANGS:
            raise ValueError(f"language {lang!r}: use one of {', '.join(LANGS)}")
        self.lang: Lang = lang
        self._i = LANGS.index(lang)
        self.uid_suffix = "" if primary else f"-{lang}"
        self.time = self("Thời điểm", "Time")  # a table's time column

    def __call__(self, vi: str, en: str) -> str:
        # NFC: Vietnamese diacritics as one code point each, as the report writes them.
        return unicodedata.normalize("NFC", (vi, en)[self._i])

    def column(self, name: str) -> str:
        pair = COLUMNS.get(name)
        return name if pair is None else self(*pair)

    def axis(self, unit: str) -> str:
        pair = AXIS_LABELS.get(unit)
        return "" if pair is None else self(*pair)

    def num(self, value: float) -> str:
        """A figure in a text: Vietnamese writes 1.234,5, English 1,234.5 (as the report)."""
        text = f"{value:,g}" if value == int(value) else f"{value:,.1f}"
        if self.lang == "vi":
            text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return text
