"""The Radio board (issue 21): mobile download against signal (RSRP, SINR), the share of
time on each generation per commune and serving network, and signal over time, filtered
by technology and operator. Names: /tmp/shared/radio-spec.md, collector/README.md."""

from __future__ import annotations

from grafana.common import SHARE_BANDS, UIDS, links, radio_variables
from grafana.i18n import Words
from grafana.model import JSON, dashboard, panel, row, target

_SHARES = ("share_5g", "share_4g", "share_3g", "share_2g", "share_none")


def _scatter(w: Words, x: str, unit: str, title: str, description: str) -> JSON:
    p = panel(
        "xychart",
        title,
        [target("radio_download", (), table=True)],
        description=description,
        unit="Mbits",
        options={
            "mapping": "manual",
            "series": [
                {
                    "frame": {"matcher": {"id": "byIndex", "options": 0}},
                    "x": {"matcher": {"id": "byName", "options": x}},
                    "y": {"matcher": {"id": "byName", "options": "download_mbps"}},
                }
            ],
            "legend": {"showLegend": False},
            "tooltip": {"mode": "single"},
        },
        overrides=[
            {
                "matcher": {"id": "byName", "options": x},
                "properties": [
                    {"id": "unit", "value": unit},
                    {"id": "custom.axisLabel", "value": w.column(x)},
                ],
            },
            {
                "matcher": {"id": "byName", "options": "download_mbps"},
                "properties": [{"id": "custom.axisLabel", "value": w.column("download_mbps")}],
            },
        ],
        width=12,
        height=10,
    )
    p["fieldConfig"]["defaults"]["custom"] = {"show": "points", "pointSize": {"fixed": 5}}
    return p


def radio(w: Words) -> JSON:
    per_test = w(
        "Mỗi điểm: một lần tải xuống di động thành công với tín hiệu đọc từ modem lúc bắt "
        "đầu đo (vài ngày: mỗi điểm một lần đo; kỳ dài: trung bình mỗi khoảng thời gian "
        "của từng thiết bị đo và công nghệ).",
        "Each point: one completed mobile download with the signal the modem reported at "
        "its start (over a few days one test per point; over long ranges the mean per "
        "interval, probe and technology).",
    )
    shares = panel(
        "table",
        w(
            "Tỷ lệ thời gian trên 5G/4G/3G/2G theo xã/phường và nhà mạng",
            "Share of time on 5G/4G/3G/2G per commune and operator",
        ),
        [target("radio_technology_share", (), table=True)],
        description=w(
            "Theo xã/phường và mạng phục vụ (MCC+MNC): tỷ lệ số lần đọc tín hiệu trên mỗi "
            "thế hệ công nghệ trong kỳ; các lần đọc cách đều nhau nên đó là tỷ lệ thời "
            "gian. Mất sóng: modem chưa đăng ký mạng. Kế hoạch: 4G/5G ở mọi nơi, tắt 2G/3G.",
            "Per commune and serving network (MCC+MNC): the share of the radio reads in the "
            "period on each generation; reads are evenly spaced, so it is the share of "
            "time. Without service: the modem was not registered. The plan: 4G/5G "
            "everywhere, 2G/3G switched off.",
        ),
        unit="percentunit",
        min_value=0,
        max_value=1,
        overrides=[
            {
                "matcher": {"id": "byRegexp", "options": "^share_(5g|4g)$"},
                "properties": [
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    {
                        "id": "thresholds",
                        "value": {
                            "mode": "absolute",
                            "steps": [{"color": c, "value": v} for c, v in SHARE_BANDS],
                        },
                    },
                ],
            },
            {
                "matcher": {"id": "byName", "options": "reads"},
                "properties": [{"id": "unit", "value": "none"}],
            },
            # No read on a generation: InfluxDB answers null; the share is 0.
            *(
                {
                    "matcher": {"id": "byName", "options": name},
                    "properties": [
                        {
                            "id": "mappings",
                            "value": [
                                {
                                    "type": "special",
                                    "options": {
                                        "match": "null",
                                        "result": {"text": "0 %", "index": 0},
                                    },
                                }
                            ],
                        }
                    ],
                }
                for name in _SHARES
            ),
        ],
        transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
        width=24,
    )
    signal = panel(
        "timeseries",
        w("Tín hiệu theo thời gian: RSRP và SINR", "Signal over time: RSRP and SINR"),
        [target("radio_signal", ())],
        description=w(
            "Theo thiết bị đo: RSRP trung bình và thấp nhất (dBm, trục trái) và SINR trung "
            "bình (dB, trục phải) của các lần đọc tín hiệu mỗi khoảng thời gian. RSRP dưới "
            "-110 dBm là tín hiệu yếu.",
            "Per probe: mean and weakest RSRP (dBm, left axis) and mean SINR (dB, right "
            "axis) of the radio reads per interval. RSRP below -110 dBm is a weak signal.",
        ),
        unit="dBm",
        overrides=[
            {
                "matcher": {"id": "byRegexp", "options": "^radio_snr_db.*"},
                "properties": [
                    {"id": "unit", "value": "dB"},
                    {"id": "custom.axisPlacement", "value": "right"},
                    {"id": "custom.axisLabel", "value": w.axis("dB")},
                ],
            }
        ],
        width=24,
    )
    return dashboard(
        w,
        UIDS["radio"],
        w("probefleet — Vô tuyến di động", "probefleet — Mobile radio"),
        [
            row(w("Tốc độ và tín hiệu", "Speed and signal")),
            _scatter(
                w,
                "radio_rsrp_dbm",
                "dBm",
                w("Tải xuống di động theo RSRP", "Mobile download against RSRP"),
                per_test,
            ),
            _scatter(
                w,
                "radio_snr_db",
                "dB",
                w("Tải xuống di động theo SINR", "Mobile download against SINR"),
                per_test,
            ),
            row(w("Công nghệ và tín hiệu", "Technology and signal")),
            shares,
            signal,
        ],
        description=w(
            "Bối cảnh vô tuyến của các phép đo di động: tốc độ so với tín hiệu, thời gian "
            "trên từng thế hệ công nghệ theo xã/phường và nhà mạng, tín hiệu theo thời gian. "
            "Lọc theo công nghệ và nhà mạng.",
            "The radio context of the mobile measurements: speed against signal, time on "
            "each generation per commune and operator, signal over time. Filter by "
            "technology and operator.",
        ),
        variables=radio_variables(w),
        time_from="now-7d",
        links=links(w),
    )
