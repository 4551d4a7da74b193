"""The report's words in Vietnamese and English; numbers and dates formatted per language.

Usage::

    t = Strings("vi")
    t("title"), t.num(150.25, 1), t.pct(0.953), t.verdict("met")
    t.basis(area.bases["download_fixed"], area.level)
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal

from probefleet.collector.report.model import Basis

Lang = Literal["vi", "en"]
LANGS: Final = ("vi", "en")

# key: (vi, en)
TEXT: Final[dict[str, tuple[str, str]]] = {
    "title": (
        "Báo cáo kết quả đo kiểm hạ tầng số",
        "Digital infrastructure measurement report",
    ),
    "subtitle": (
        "Kế hoạch phát triển hạ tầng số tỉnh Đồng Nai giai đoạn 2023–2025: "
        "mức độ đạt chỉ tiêu theo từng xã",
        "Đồng Nai digital infrastructure plan 2023–2025: compliance per commune",
    ),
    "period": ("Kỳ báo cáo", "Period"),
    "generated": ("Lập lúc", "Generated"),
    "province": ("Tỉnh", "Province"),
    "district": ("Huyện", "District"),
    "commune": ("Xã/phường", "Commune"),
    "operator": ("Nhà mạng", "Operator"),
    "access": ("Loại truy nhập", "Access"),
    "fixed": ("Cố định (FTTH)", "Fixed (FTTH)"),
    "mobile": ("Di động (4G/5G)", "Mobile (4G/5G)"),
    "summary": ("Tóm tắt", "Summary"),
    "verdicts": ("Đánh giá theo chỉ tiêu", "Verdicts per target"),
    "plan_item": ("Chỉ tiêu", "Plan item"),
    "target": ("Mục tiêu", "Target"),
    "verdict": ("Kết luận", "Verdict"),
    "met": ("Đạt", "Met"),
    "not_met": ("Không đạt", "Not met"),
    "not_measured": ("Chưa đo được", "Not measured"),
    "download_mobile": (
        "Tốc độ tải xuống băng rộng di động (theo i-Speed)",
        "Mobile broadband download speed (per i-Speed)",
    ),
    "download_fixed": (
        "Tốc độ tải xuống băng rộng cố định (theo i-Speed)",
        "Fixed broadband download speed (per i-Speed)",
    ),
    "coverage_mobile": (
        "Thôn, ấp, khu phố có băng rộng di động",
        "Hamlets covered by mobile broadband",
    ),
    "coverage_fixed": ("Thôn, ấp, khu phố có cáp quang (FTTH)", "Hamlets covered by FTTH"),
    "data_network": (
        "UBND xã kết nối mạng truyền số liệu chuyên dùng",
        "Commune committees connected to the specialised data network",
    ),
    "ipv6": ("Chuyển đổi sang IPv6", "Transition to IPv6"),
    "services": (
        "Truy cập các nền tảng dùng chung của tỉnh",
        "Reach of the province's shared platforms",
    ),
    "probes": ("Thiết bị đo", "Probes"),
    "probes_seen": ("Thiết bị hoạt động", "Probes reporting"),
    "tests": ("Số lần đo", "Tests"),
    "uptime": ("Thời gian hoạt động", "Probe uptime"),
    "download": ("Tải xuống", "Download"),
    "download_median": ("Tải xuống: trung vị", "Download median"),
    "download_p10": ("Tải xuống: phân vị 10", "Download 10th percentile"),
    "upload_median": ("Tải lên: trung vị", "Upload median"),
    "upload_p10": ("Tải lên: phân vị 10", "Upload 10th percentile"),
    "upload": ("Tải lên", "Upload"),
    "median": ("Trung vị", "Median"),
    "p10": ("Phân vị 10", "10th percentile"),
    "share_at_target": ("Tỷ lệ lần đo đạt mục tiêu", "Share of tests at target"),
    "peak_median": ("Trung vị giờ cao điểm", "Peak-hour median"),
    "latency": ("Độ trễ", "Latency"),
    "jitter": ("Biến động trễ", "Jitter"),
    "loss": ("Mất gói", "Loss"),
    "ipv6_ready": ("Thiết bị sẵn sàng IPv6", "IPv6-ready probes"),
    "data_network_reach": ("Kết nối mạng chuyên dùng", "Data network reachability"),
    "service_availability": ("Khả dụng dịch vụ", "Service availability"),
    "communes_table": ("Kết quả theo xã/phường", "Results per commune"),
    "districts_table": ("Kết quả theo huyện", "Results per district"),
    "province_table": ("Kết quả toàn tỉnh", "Province-wide results"),
    "operators_table": ("Kết quả theo nhà mạng", "Results per operator"),
    "charts": ("Biểu đồ", "Charts"),
    "chart_bands": (
        "Phân bố tốc độ tải xuống so với mục tiêu",
        "Download speeds against the target",
    ),
    "chart_bands_note": (
        "Số lần đo theo khoảng tốc độ, tính bằng bội số của mục tiêu; vạch đỏ là mục tiêu.",
        "Tests per speed band, in multiples of the target; the red line is the target.",
    ),
    "chart_operators": ("Trung vị tải xuống theo nhà mạng", "Median download by operator"),
    "chart_hours": ("Tốc độ tải xuống theo giờ trong ngày", "Download speed by hour of day"),
    "chart_hours_note": (
        "Cột: tỷ lệ lần đo đạt mục tiêu trong giờ đó; đường: trung vị của các trung vị "
        "theo giờ; vùng tô: giờ cao điểm; số dưới mỗi giờ: số lần đo trong giờ đó.",
        "Bars: share of tests at target in that hour; line: median of the hourly medians; "
        "shaded: peak hours; the numbers under the hours: tests in that hour.",
    ),
    "hour": ("Giờ", "Hour"),
    "methodology": ("Phương pháp đo", "Methodology"),
    "method_text": (
        "Mỗi thiết bị đo đặt tại trụ sở UBND xã đo tốc độ tải xuống và tải lên qua nhiều luồng TCP "
        "song song tới máy chủ đo trong nước (giao thức LibreSpeed/HTTP, phương pháp của i-Speed), "
        "bỏ qua giai đoạn khởi động chậm, và báo cáo thông lượng thực (goodput) tính bằng Mbit/s, "
        "không nhân hệ số bù. Số liệu chính là trung vị, tách riêng cố định và di động, "
        "như i-Speed của VNNIC công bố. Phân vị 10 là giá trị mà 10 % lần đo thấp hơn "
        "(xếp hạng gần nhất; cần ít nhất 5 lần đo). Phép đo bị hoãn khi đường truyền đang "
        "có lưu lượng của người dùng.",
        "Each probe, at a commune People's Committee office, measures download and upload over "
        "several parallel TCP streams to test servers inside Vietnam (LibreSpeed/HTTP, the method "
        "i-Speed uses), excludes slow start, and reports goodput in Mbit/s without an overhead "
        "factor. The headline figures are medians, fixed and mobile apart, as VNNIC's i-Speed "
        "publishes them. The 10th percentile is the speed 10 % of tests fell below (nearest rank; "
        "needs at least 5 tests). Tests are deferred while the line carries users' traffic.",
    ),
    "peak_hours": ("Giờ cao điểm", "Peak hours"),
    "timezone": ("Múi giờ", "Time zone"),
    "targets_file": ("Chỉ tiêu", "Targets"),
    "servers": ("Máy chủ đo", "Test servers"),
    "method": ("Phương thức", "Method"),
    "server": ("Máy chủ", "Server"),
    "ip_version": ("IP", "IP"),
    "streams": ("Luồng (xuống/lên)", "Streams (down/up)"),
    "durations": ("Thời lượng, s (xuống/lên)", "Duration, s (down/up)"),
    "exclusions": ("Loại trừ và lý do", "Exclusions and why"),
    "runs_total": ("Lượt đo tốc độ trong kỳ", "Throughput runs in the period"),
    "failed": ("Thất bại (không có kết quả)", "Failed (no result)"),
    "skipped": ("Hoãn", "Skipped"),
    "skipped_busy": (
        "Hoãn vì đường truyền bận (lưu lượng khác hoặc CPU)",
        "Skipped, line busy (cross-traffic or CPU)",
    ),
    "skipped_cross_traffic": (
        "trong đó vì lưu lượng khác vượt ngưỡng",
        "of which cross-traffic above the limit",
    ),
    "unsynced": (
        "Đo khi đồng hồ thiết bị chưa đồng bộ",
        "Measured with an unsynchronised clock",
    ),
    "rebased": (
        "giữ lại, thời điểm tính lại theo lần khởi động",
        "kept, time re-based on the boot",
    ),
    "estimated": (
        "loại khỏi thống kê, thời điểm chỉ ước lượng",
        "excluded from the statistics, time only estimated",
    ),
    "quarantined": (
        "Đang chờ đồng bộ đồng hồ (chưa ghi)",
        "Waiting for a clock (not yet written)",
    ),
    "deadletters": ("Bản tin bị từ chối (dead letters)", "Rejected messages (dead letters)"),
    "deadletters_unknown": ("không đọc được", "could not be read"),
    "stage": ("Giai đoạn", "Stage"),
    "reason": ("Lý do", "Reason"),
    "count": ("Số lượng", "Count"),
    "no_data": ("Không có dữ liệu", "No data"),
    "empty_period": (
        "Không có kết quả đo nào trong kỳ báo cáo này. Mọi chỉ tiêu đều là “chưa đo được”.",
        "There are no measurements in this period. Every item is “not measured”.",
    ),
    "communes_without_data": (
        "Xã/phường không có dữ liệu trong kỳ",
        "Communes without data in the period",
    ),
    "none": ("Không có", "None"),
    "unknown_probes_note": (
        "Thiết bị chưa có trong danh mục (inventory) không được tính theo xã.",
        "Probes missing from the inventory are not counted under any commune.",
    ),
    "verdict_rules": (
        "Tốc độ: trung vị tải xuống của khu vực so với mục tiêu; với huyện và tỉnh là một "
        "trung vị của mọi lần đo, không phải số xã đạt. Phủ sóng thôn, ấp: chưa đo được "
        "cho đến khi có số liệu đo ở cấp thôn, ấp (thiết bị tại trụ sở UBND xã không đo "
        "được). Mạng chuyên dùng: tỷ lệ lượt đo có phản hồi đạt ngưỡng. "
        "IPv6: tỷ lệ thiết bị sẵn sàng IPv6 đạt chỉ tiêu. Dịch vụ: mọi dịch vụ đạt ngưỡng "
        "khả dụng. "
        "Huyện và tỉnh đạt chỉ tiêu mạng chuyên dùng và dịch vụ khi mọi xã đã đo đều đạt.",
        "Speeds: the area's median download against the target; for a district or the "
        "province one median over all its tests, not a count of communes. Hamlet coverage: "
        "not measured until hamlet-level evidence exists (a probe at the commune office "
        "cannot measure it). Data network: the share of runs answered reaches "
        "the threshold. IPv6: the share of IPv6-ready probes reaches the target. Services: every "
        "service reaches the availability threshold. A district or the province meets the "
        "data network and services items when every commune measured meets them.",
    ),
    "basis": ("Căn cứ", "Basis"),
    "basis_median_province": ("trung vị toàn tỉnh", "province median"),
    "basis_median_district": ("trung vị của huyện", "district median"),
    "basis_median_commune": ("trung vị của xã", "commune median"),
    "basis_of_tests": ("của {tests} lần đo", "of {tests} tests"),
    "basis_from_communes": ("từ {communes} xã", "from {communes} communes"),
    "basis_no_tests": ("không có lần đo nào trong kỳ", "no tests in the period"),
    "basis_communes": (
        "số xã đạt / không đạt / chưa đo được: {met} / {not_met} / {not_measured}",
        "communes met / not met / not measured: {met} / {not_met} / {not_measured}",
    ),
    "basis_no_hamlet_evidence": (
        "chưa có số liệu đo ở cấp thôn, ấp; thiết bị đặt tại trụ sở UBND xã không đo được "
        "độ phủ của thôn, ấp",
        "no hamlet-level evidence; commune office probes do not measure hamlet coverage",
    ),
    "basis_hamlets": (
        "{covered}/{hamlets} thôn, ấp được phủ = {share} (chỉ tiêu 100 %); đã khảo sát {surveyed}",
        "{covered}/{hamlets} hamlets covered = {share} (target 100 %); surveyed {surveyed}",
    ),
    "basis_hamlets_ftth": (
        "{covered}/{hamlets} thôn, ấp có FTTH theo công bố của nhà mạng = {share} (chỉ tiêu 100 %)",
        "{covered}/{hamlets} hamlets with FTTH as the operators declare = {share} (target 100 %)",
    ),
    "covered": ("Được phủ", "Covered"),
    "not_covered": ("Chưa được phủ", "Not covered"),
    "not_surveyed": ("Chưa khảo sát", "Not surveyed"),
    "coverage_title": ("Độ phủ thôn, ấp, khu phố", "Hamlet coverage"),
    "coverage_none": (
        "Không có danh mục thôn, ấp (report.areas_file không có ranh giới cấp thôn): hai "
        "chỉ tiêu độ phủ là “chưa đo”.",
        "No hamlet registry (report.areas_file has no hamlet boundaries): both coverage "
        "items are “not measured”.",
    ),
    "coverage_rule": (
        "Di động: một thôn, ấp được phủ bởi một nhà mạng khi có ít nhất {min_points} điểm "
        "khảo sát (GPS tốt) trong thôn và ít nhất {share_pct} % số điểm ở {technologies} với "
        "RSRP ≥ {rsrp} dBm và SINR ≥ {snr} dB (nếu modem báo), và trung vị tốc độ tải xuống "
        "của các lần đo tại điểm dừng (nếu có) đạt {target} Mbit/s; ít điểm hơn là “chưa "
        "khảo sát”, không bao giờ là “được phủ”. Một thôn được phủ khi ít nhất một nhà mạng "
        "phủ. FTTH: theo danh sách nhà mạng công bố (ngày bắt đầu trước cuối kỳ).",
        "Mobile: a hamlet is covered by an operator when at least {min_points} survey points "
        "(good GPS fix) lie in it and at least {share_pct} % of them are on {technologies} "
        "with RSRP ≥ {rsrp} dBm and SINR ≥ {snr} dB (where the modem reports it), and the "
        "median download of the stop tests there (where run) meets {target} Mbit/s; fewer "
        "points is “not surveyed”, never “covered”. A hamlet is covered when at least one "
        "operator covers it. FTTH: as the operators declare (available since before the "
        "period's end).",
    ),
    "coverage_area": ("Khu vực", "Area"),
    "coverage_hamlets": ("Số thôn, ấp", "Hamlets"),
    "coverage_mobile_any": ("Di động: phủ / đã khảo sát", "Mobile: covered / surveyed"),
    "coverage_ftth": ("FTTH: có / tổng", "FTTH: covered / total"),
    "coverage_kpi": ("Tỉ lệ phủ (chỉ tiêu 100 %)", "Covered share (target 100 %)"),
    "coverage_hamlet": ("Thôn, ấp", "Hamlet"),
    "coverage_points": ("Điểm (đạt)", "Points (good)"),
    "coverage_stop": ("Trung vị tải xuống tại điểm dừng", "Stop-test median download"),
    "coverage_ftth_by": ("FTTH công bố", "FTTH declared"),
    "coverage_map": ("Bản đồ độ phủ di động theo thôn, ấp", "Mobile coverage by hamlet"),
    "coverage_checks": ("Đối chiếu FTTH với thiết bị đo cố định", "FTTH against fixed probes"),
    "coverage_checks_note": (
        "Một thiết bị đo cố định chỉ cho biết đường FTTH của nhà mạng đến được nơi đặt thiết "
        "bị (thôn của nó nếu danh mục có toạ độ, nếu không thì cả xã): khớp là nhà mạng có "
        "công bố FTTH ở đó; không khớp là thiết bị đo được FTTH của nhà mạng nhưng nhà mạng "
        "không công bố ở đó. Không nói gì về các thôn khác.",
        "A fixed probe only shows that its operator's FTTH reaches where it stands (its "
        "hamlet when the inventory gives its coordinates, else its commune): agrees = the "
        "operator declares FTTH there; disagrees = the probe measured that operator's FTTH "
        "but the operator declares none there. It says nothing about any other hamlet.",
    ),
    "coverage_probe": ("Thiết bị đo", "Probe"),
    "coverage_check": ("Đối chiếu", "Cross-check"),
    "coverage_fixed_tests": ("Lần đo cố định của xã", "The commune's fixed tests"),
    "agrees": ("Khớp", "Agrees"),
    "disagrees": ("Không khớp", "Disagrees"),
    "no_tests": ("Không có lần đo", "No tests"),
    "basis_data_network": (
        "có phản hồi {share} của {runs} lượt đo (ngưỡng {threshold})",
        "answered {share} of {runs} runs (threshold {threshold})",
    ),
    "basis_no_runs": ("không có lượt đo nào trong kỳ", "no runs in the period"),
    "basis_ipv6": (
        "{ready}/{probes} thiết bị sẵn sàng IPv6 = {share} (chỉ tiêu {threshold})",
        "{ready}/{probes} probes IPv6-ready = {share} (target {threshold})",
    ),
    "basis_worst_service": (
        "thấp nhất: {service} {share} của {checks} lượt kiểm tra (ngưỡng {threshold})",
        "worst: {service} {share} of {checks} checks (threshold {threshold})",
    ),
    "basis_worst_service_in": (
        "thấp nhất: {service} tại {commune}, {share} của {checks} lượt kiểm tra "
        "(ngưỡng {threshold})",
        "worst: {service} in {commune}, {share} of {checks} checks (threshold {threshold})",
    ),
    "basis_no_checks": ("không có lượt kiểm tra nào trong kỳ", "no checks in the period"),
    "short_download_mobile": ("Tải xuống di động", "Mobile download"),
    "short_download_fixed": ("Tải xuống cố định", "Fixed download"),
    "short_coverage_mobile": ("Thôn, ấp có di động", "Hamlets: mobile"),
    "short_coverage_fixed": ("Thôn, ấp có FTTH", "Hamlets: FTTH"),
    "short_data_network": ("Mạng chuyên dùng", "Data network"),
    "short_ipv6": ("IPv6", "IPv6"),
    "short_services": ("Nền tảng dùng chung", "Shared platforms"),
    "commune_verdicts": ("Kết luận", "Verdicts"),
    "map": ("Bản đồ xã/phường theo kết luận", "Communes on the map, by verdict"),
    "map_of": ("Bản đồ: {item}", "Map: {item}"),
    "map_note": (
        "Mỗi xã/phường tô theo kết luận của chính xã đó (trung vị tải xuống so với mục "
        "tiêu); đường đậm: ranh giới huyện. Xanh đậm: đạt; cam: không đạt; gạch chéo: chưa "
        "đo được (không có thiết bị đo hoặc không có lần đo).",
        "Each commune filled by its own verdict (its median download against the target); "
        "bold lines: district boundaries. Dark blue: met; orange: not met; hatched: not "
        "measured (no probe, or no tests).",
    ),
    "map_none": (
        "Không có bản đồ: chưa khai báo tệp ranh giới ([report] areas_file).",
        "No map: no boundary file is configured ([report] areas_file).",
    ),
    "map_synthetic": (
        "Ranh giới trong tệp này là giả lập (tệp mẫu), không phải ranh giới thật.",
        "The boundaries in this file are synthetic (a sample), not the real ones.",
    ),
    "map_source": ("Nguồn ranh giới", "Boundaries from"),
    "map_missing": (
        "Xã/phường trong danh mục không có trên bản đồ (không tìm thấy ranh giới)",
        "Communes of the inventory missing from the map (no boundary found)",
    ),
    "map_why_no_name": (
        "không có xã/phường tên này trong tệp ranh giới",
        "no commune of that name in the area file",
    ),
    "map_why_other_district": (
        "trong tệp ranh giới, xã/phường này thuộc huyện khác ({detail})",
        "the area file has it in another district ({detail})",
    ),
    "map_why_ambiguous": (
        "{detail} xã/phường cùng tên: ghi huyện trong danh mục (inventory)",
        "{detail} communes of that name: give the inventory's district",
    ),
    "radio_table": (
        "Di động theo công nghệ và nhà mạng",
        "Mobile by radio technology and operator",
    ),
    "radio_by_technology": ("Theo công nghệ", "By technology"),
    "radio_by_operator": ("Theo nhà mạng phục vụ", "By serving operator"),
    "radio_by_both": ("Theo nhà mạng và công nghệ", "By operator and technology"),
    "technology": ("Công nghệ", "Technology"),
    "share_of_tests": ("Tỷ lệ số lần đo", "Share of tests"),
    "share_of_operator_tests": (
        "Tỷ lệ trong số lần đo của nhà mạng",
        "Share of the operator's tests",
    ),
    "no_radio_context": (
        "không có thông tin vô tuyến",
        "no radio context",
    ),
    "radio_note": (
        "Công nghệ và nhà mạng (MCC+MNC) do modem báo lúc bắt đầu mỗi lần đo. “Không có "
        "thông tin vô tuyến”: kết quả từ phiên bản phần mềm đo cũ hoặc khi không đọc được "
        "modem; vẫn được tính. Số liệu lấy từ từng lần đo (không qua số liệu tổng hợp).",
        "Technology and operator (MCC+MNC) as the modem reported them at the start of each "
        "test. “No radio context”: results from older agents, or when the modem could not "
        "be read; they are counted. From every test's raw point (not the rollups).",
    ),
    "radio_none": (
        "Không có lần đo di động nào trong kỳ.",
        "No mobile tests in the period.",
    ),
    "method_where": (
        "Nơi đo: mọi thiết bị đặt tại trụ sở UBND xã. Cố định: đường cáp quang (FTTH) của "
        "trụ sở qua cổng Ethernet. Di động: modem USB hoặc HAT gắn trên thiết bị đo tại trụ "
        "sở, với SIM của nhà mạng ghi trong danh mục; số liệu di động là của vị trí trụ sở, "
        "không phải của toàn xã. Thông tin vô tuyến (công nghệ 2G/3G/4G/5G NSA/5G SA, nhà "
        "mạng phục vụ, cường độ và chất lượng tín hiệu, cell, băng tần) đọc từ modem qua "
        "ModemManager lúc bắt đầu và lúc kết thúc mỗi lần đo; việc đọc không dùng dữ liệu di "
        "động.",
        "Where: every probe stands at a commune People's Committee office. Fixed: the "
        "office's FTTH line, on Ethernet. Mobile: a USB or HAT modem on the probe at the "
        "office, with a SIM of the operator the inventory names; mobile figures describe the "
        "office's location, not the whole commune. The radio context (technology 2G/3G/4G/"
        "5G NSA/5G SA, serving operator, signal strength and quality, cell, band) is read "
        "from the modem through ModemManager at the start and at the end of each test; the "
        "read uses no mobile data.",
    ),
    "chart_tests_row": ("lần đo", "tests"),
    "queries_note": ("Truy vấn", "Queries"),
    "mbps": ("Mbit/s", "Mbit/s"),
    "ms": ("ms", "ms"),
}


class Strings:
    def __init__(self, lang: Lang) -> None:
        if lang not in LANGS:
            raise ValueError(f"language {lang!r}: use one of {', '.join(LANGS)}")
        self.lang = lang
        self._i = LANGS.index(lang)

    def __call__(self, key: str) -> str:
        return TEXT[key][self._i]

    def verdict(self, verdict: str) -> str:
        return self(verdict)

    def basis(self, basis: Basis, level: str) -> str:
        """What a verdict was computed from, in words, e.g. "province median 154.7 Mbit/s of
        1,234 tests from 25 communes; communes met / not met / not measured: 13 / 12 / 0"."""
        b = basis
        rollup = level in ("district", "province")
        counts = self("basis_communes").format(
            met=b.communes_met, not_met=b.communes_not_met, not_measured=b.communes_not_measured
        )
        if b.rule == "no_hamlet_evidence":
            return self("basis_no_hamlet_evidence")
        if b.rule in ("hamlets", "hamlets_ftth"):
            # Mobile: tests = hamlets surveyed; FTTH is declared, not surveyed.
            return self(f"basis_{b.rule}").format(
                covered=self.num(b.part, 0),
                hamlets=self.num(b.whole, 0),
                share=self.pct(b.share),
                surveyed=self.num(b.tests, 0),
            )
        if b.rule == "median":
            if not b.tests or b.median_mbps is None:
                text = self("basis_no_tests")
            else:
                text = f"{self(f'basis_median_{level}')} {self.num(b.median_mbps)} Mbit/s " + self(
                    "basis_of_tests"
                ).format(tests=self.num(b.tests, 0))
                if rollup:
                    text += " " + self("basis_from_communes").format(communes=b.communes_tested)
        elif b.rule == "data_network":
            text = (
                self("basis_data_network").format(
                    share=self.pct(b.share),
                    runs=self.num(b.whole, 0),
                    threshold=self.pct(b.threshold),
                )
                if b.whole
                else self("basis_no_runs")
            )
        elif b.rule == "ipv6":
            text = (
                self("basis_ipv6").format(
                    ready=b.part,
                    probes=b.whole,
                    share=self.pct(b.share),
                    threshold=self.pct(b.threshold),
                )
                if b.whole
                else self("basis_no_runs")
            )
        elif not b.worst_service:
            text = self("basis_no_checks")
        else:
            key = "basis_worst_service_in" if rollup else "basis_worst_service"
            text = self(key).format(
                service=b.worst_service,
                commune=b.worst_commune,
                share=self.pct(b.share),
                checks=self.num(b.tests, 0),
                threshold=self.pct(b.threshold),
            )
        return f"{text}; {counts}" if rollup else text

    def num(self, value: float | None, digits: int = 1) -> str:
        """Vietnamese writes 1.234,5; English 1,234.5. None is a dash."""
        if value is None:
            return "–"
        text = f"{value:,.{digits}f}"
        if self.lang == "vi":
            text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return text

    def pct(self, share: float | None, digits: int = 1) -> str:
        return "–" if share is None else f"{self.num(100.0 * share, digits)} %"

    def day(self, when: dt.datetime) -> str:
        return when.strftime("%d/%m/%Y") if self.lang == "vi" else when.strftime("%Y-%m-%d")

    def date(self, when: dt.datetime) -> str:
        return (
            when.strftime("%d/%m/%Y %H:%M")
            if self.lang == "vi"
            else when.strftime("%Y-%m-%d %H:%M")
        )
