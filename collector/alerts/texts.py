"""Alert texts in the deployment's language (`[notify] language`, Vietnamese for the
province's own deployment): the built-in rules' Vietnamese summaries and the words of the
notification frame. One copy: Grafana's generated rules read the same summaries
(grafana/alerts.py). A rule in the rules file may give its own ``summary_vi``."""

from __future__ import annotations

from typing import Final, Literal

Language = Literal["vi", "en"]

# Per built-in rule (the rules file's `summary` is the English one; a rule missing here
# keeps it). {commune}, {operator} ...: filled from the alert's labels.
SUMMARIES_VI: Final[dict[str, str]] = {
    "download_below_target": "tốc độ tải xuống dưới mục tiêu của kế hoạch",
    "upload_below_target": "tốc độ tải lên dưới mục tiêu của kế hoạch",
    "latency_high": "độ trễ trung vị quá cao",
    "jitter_high": "biến động trễ quá cao",
    "loss_high": "mất gói quá cao",
    "ipv6_lost": "IPv6 không hoạt động đầu cuối",
    "service_down": "không truy cập được dịch vụ (ví dụ mạng truyền số liệu chuyên dùng)",
    "probe_offline": "thiết bị đo mất kết nối",
    "mobile_service_lost": "mất sóng di động tại {commune} ({operator})",
    "radio_fallback": "di động rơi xuống dưới 4G (2G/3G) tại {commune} ({operator})",
    "collector_lag": "bộ thu thập bị chậm: kết quả và trạng thái đang chờ trong hàng đợi "
    "của máy chủ MQTT",
    "spool_growing": "kết quả dồn lại trên thiết bị đo",
    "disk_full": "ổ đĩa của thiết bị đo đã đầy: kết quả đang chờ trong bộ nhớ",
    "data_budget_nearly_spent": "hạn mức dữ liệu tháng sắp hết",
    "temperature_high": "bo mạch quá nóng",
}

_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "firing": "FIRING",
        "below": "below",
        "above": "above",
        "resolved": "RESOLVED",
        "digest": "DIGEST",
        "info": "info",
        "warning": "warning",
        "critical": "critical",
        "incident_at": "incident at",
        "of": "of",
        "alerts_firing": "alert(s) firing",
        "all": "all",
        "alerts_resolved": "alert(s) resolved",
        "on": "on",
        "probes": "probe(s)",
        "digest_firing": "lasting condition(s) firing",
        "digest_resolved": "resolved since the last digest",
    },
    "vi": {
        "firing": "CẢNH BÁO",
        "below": "dưới",
        "above": "trên",
        "resolved": "ĐÃ HẾT",
        "digest": "TỔNG HỢP NGÀY",
        "info": "thông tin",
        "warning": "cảnh báo",
        "critical": "nghiêm trọng",
        "incident_at": "sự cố tại",
        "of": "trong số",
        "alerts_firing": "cảnh báo đang bật",
        "all": "cả",
        "alerts_resolved": "cảnh báo đã hết",
        "on": "ở",
        "probes": "thiết bị đo",
        "digest_firing": "tình trạng kéo dài đang bật",
        "digest_resolved": "đã hết từ bản tổng hợp trước",
    },
}


def word(lang: str, key: str) -> str:
    """A word of the notification frame in ``lang`` (English for an unknown language)."""
    return _WORDS.get(lang, _WORDS["en"]).get(key, key)
