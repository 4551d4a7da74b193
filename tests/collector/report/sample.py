"""A year's report of a province, built as figures (no InfluxDB): the print tests' input.

The communes of config/areas/dongnai.sample.geojson plus some it lacks (the map must name
them), long Vietnamese names and service names (the widest cells a real report has), every
verdict present, and the mobile radio split. The verdicts are the product's own
(apply_verdicts), not set by hand.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Final

from probefleet.collector.report.areas import load_areas
from probefleet.collector.report.model import (
    AccessFigures,
    Area,
    Band,
    Hour,
    Latency,
    Methodology,
    MobileRadio,
    RadioRow,
    Report,
    ServerRow,
    ServiceFigures,
    Speed,
)
from probefleet.collector.report.run import attach_map
from probefleet.collector.report.settings import ReportSettings
from probefleet.collector.report.verdicts import apply_verdicts

from tests.collector.helpers import ROOT

AREAS_FILE: Final = ROOT / "config" / "areas" / "dongnai.sample.geojson"
START: Final = dt.datetime(2024, 12, 31, 17, tzinfo=dt.UTC)
PROVINCE: Final = "Đồng Nai"
# (district, commune, fixed median or None, mobile median or None); None: no such line.
COMMUNES: Final = [
    ("Tân Phú", "Tân Phú", 162.0, 71.0),
    ("Tân Phú", "Phú Lâm", 141.0, 38.0),
    ("Tân Phú", "Phú Sơn", None, None),
    ("Định Quán", "La Ngà", 98.0, 52.0),
    ("Định Quán", "Phú Ngọc", 175.0, 64.0),
    ("Biên Hòa", "Biên Hòa", 230.0, 88.0),
    ("Biên Hòa", "Phường Trấn Biên", 151.5, 61.0),
    ("Biên Hòa", "Tân Hiệp", 149.0, None),
    ("Long Thành", "Long Thành", 188.0, 59.9),
    ("Long Thành", "An Phước", 305.0, 77.0),
    ("Xuân Lộc", "Xuân Hưng", None, 80.0),
    ("Xuân Lộc", "Xuân Định", None, None),
    # Not in the area file: the map must say so (and the report still renders).
    ("Nhơn Trạch", "Phường Long Hưng (khu công nghiệp Nhơn Trạch)", 120.0, 45.0),
    ("Nhơn Trạch", "Đại Phước", 156.0, None),
]
OPERATOR_LINES: Final = (
    ("VNPT", "fixed", 171.0),
    ("Viettel", "fixed", 158.0),
    ("FPT", "fixed", 212.0),
    ("Viettel", "mobile", 66.0),
    ("VinaPhone", "mobile", 52.0),
    ("MobiFone", "mobile", 61.0),
)
SERVICES: Final = ("dichvucong.dongnai.gov.vn", "egov-mail", "qlvb.dongnai.gov.vn")


def _speed(median: float, tests: int, target: float, rng: random.Random) -> Speed:
    at = int(tests * min(0.98, max(0.05, median / target - 0.45)))
    return Speed(
        median_mbps=median,
        p10_mbps=round(median * rng.uniform(0.45, 0.8), 1),
        tests=tests,
        tests_with_target=tests,
        tests_at_target=at,
        peak_median_mbps=round(median * rng.uniform(0.7, 0.95), 1),
        peak_tests=tests // 4,
        peak_tests_at_target=at // 5,
    )


def _access(access: str, median: float, tests: int, rng: random.Random) -> AccessFigures:
    target = 150.0 if access == "fixed" else 60.0
    return AccessFigures(
        access,
        target,
        download=_speed(median, tests, target, rng),
        upload=_speed(round(median * 0.6, 1), tests, target, rng),
        runs_ok=tests,
        runs_failed=tests // 40,
        runs_skipped=tests // 25,
        latency=Latency(
            rtt_median_ms=round(rng.uniform(8, 45), 1),
            jitter_ms=round(rng.uniform(0.5, 9), 1),
            loss_pct=round(rng.uniform(0, 1.5), 2),
            runs=tests * 6,
        ),
    )


def _area(  # noqa: PLR0917 - one row of COMMUNES
    level: str,
    district: str,
    commune: str,
    fixed: float | None,
    mobile: float | None,
    rng: random.Random,
    tests: int = 2_920,
) -> Area:
    area = Area(level, province=PROVINCE, district=district, commune=commune, probes=1)  # type: ignore[arg-type]
    if fixed is None and mobile is None:
        return area
    area.probes_seen = 1
    area.hours_expected = 8_760
    area.hours_seen = 8_760 - rng.randrange(0, 400)
    if fixed is not None:
        area.access["fixed"] = _access("fixed", fixed, tests, rng)
    if mobile is not None:
        area.access["mobile"] = _access("mobile", mobile, tests // 2, rng)
    area.ipv6_probes_measured = 1
    area.ipv6_probes_ready = int(rng.random() < 0.7)
    area.ipv6_runs = 8_000
    area.data_network_runs = 35_040
    area.data_network_answered = int(35_040 * rng.choice([1.0, 0.999, 0.93]))
    for name in SERVICES:
        area.services[name] = ServiceFigures(rng.choice([1.0, 0.997, 0.962]), 35_040, 180.0)
    return area


def _rollup(level: str, members: list[Area], district: str, rng: random.Random) -> Area:
    area = Area(level, province=PROVINCE, district=district)  # type: ignore[arg-type]
    area.probes = len(members)
    area.probes_seen = sum(m.probes_seen for m in members)
    area.hours_seen = sum(m.hours_seen for m in members)
    area.hours_expected = sum(m.hours_expected for m in members)
    for access in ("fixed", "mobile"):
        medians = [m.access[access].download.median_mbps for m in members if access in m.access]
        known = sorted(v for v in medians if v is not None)
        if known:
            tests = sum(m.access[access].download.tests for m in members if access in m.access)
            area.access[access] = _access(access, known[len(known) // 2], tests, rng)
    area.ipv6_probes_measured = sum(m.ipv6_probes_measured for m in members)
    area.ipv6_probes_ready = sum(m.ipv6_probes_ready for m in members)
    area.ipv6_runs = sum(m.ipv6_runs for m in members)
    area.data_network_runs = sum(m.data_network_runs for m in members)
    area.data_network_answered = sum(m.data_network_answered for m in members)
    for name in SERVICES:
        values = [m.services[name].availability or 0.0 for m in members if name in m.services]
        if values:
            area.services[name] = ServiceFigures(min(values), 35_040 * len(values), 180.0)
    return area


def radio_split() -> MobileRadio:
    def row(tech: str, op: str, median: float, tests: int) -> RadioRow:
        return RadioRow(tech, op, median, round(median * 0.5, 1), tests, int(tests * 0.5))

    return MobileRadio(
        PROVINCE,
        by_technology=[
            row("nr5g_nsa", "", 142.0, 1_210),
            row("lte", "", 58.2, 12_044),
            row("umts", "", 6.1, 512),
            row("", "", 49.0, 2_300),
        ],
        by_operator=[
            row("", "45204", 66.0, 8_100),
            row("", "45202", 52.0, 3_900),
            row("", "45201", 61.0, 1_766),
            row("", "", 49.0, 2_300),
        ],
        by_operator_technology=[
            row("nr5g_nsa", "45204", 150.0, 1_010),
            row("lte", "45204", 60.1, 6_800),
            row("umts", "45204", 5.2, 290),
            row("nr5g_nsa", "45202", 101.0, 200),
            row("lte", "45202", 52.2, 3_478),
            row("umts", "45202", 7.0, 222),
            row("lte", "45201", 61.0, 1_766),
            row("", "", 49.0, 2_300),
        ],
    )


def build_report(*, areas: Path | None = AREAS_FILE, seed: int = 7) -> Report:
    rng = random.Random(seed)  # noqa: S311 - test figures, not secrets
    communes = [_area("commune", d, c, f, m, rng) for d, c, f, m in COMMUNES]
    districts = [
        _rollup("district", [c for c in communes if c.district == d], d, rng)
        for d in sorted({c.district for c in communes})
    ]
    province = _rollup("province", communes, "", rng)
    operators: list[Area] = []
    for name, access, median in OPERATOR_LINES:
        op = next((o for o in operators if o.operator == name), None)
        if op is None:
            op = Area("operator", operator=name)
            operators.append(op)
        op.access[access] = _access(access, median, 9_000, rng)
    hours = {
        access: [
            Hour(
                h,
                round(base * (0.7 if 19 <= h < 23 else 1.0) + h % 5, 1),
                tests=120 + 40 * (h % 7),
                tests_at_target=60 + 10 * (h % 7),
            )
            for h in range(24)
        ]
        for access, base in (("fixed", 165.0), ("mobile", 63.0))
    }
    bands = {
        access: [
            Band(0.0, 0.5, 300),
            Band(0.5, 0.8, 1_200),
            Band(0.8, 0.95, 2_500),
            Band(0.95, 1.0, 3_100),
            Band(1.0, 1.5, 12_000),
            Band(1.5, None, 4_200),
        ]
        for access in ("fixed", "mobile")
    }
    report = Report(
        start=START,
        end=START + dt.timedelta(days=365),
        generated_at=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
        targets_mbps={"fixed": 150.0, "mobile": 60.0},
        province=[province],
        districts=districts,
        communes=communes,
        operators=operators,
        methodology=Methodology(
            "Asia/Ho_Chi_Minh",
            19,
            23,
            2025,
            "Kế hoạch 2023–2025, mục VII.5",
            servers=[
                ServerRow("librespeed", "speedtest-hcm.vnpt.vn", "4", 20_000, 8, 4, 10.0, 10.0),
                ServerRow("librespeed", "speedtest.viettel.vn", "6", 9_000, 8, 4, 10.0, 10.0),
            ],
            data_network_targets=["10.10.0.1"],
        ),
        bands=bands,
        hours=hours,
        statements=61,
        query_seconds=3.2,
        mobile_radio=[radio_split()],
    )
    apply_verdicts(report, ReportSettings(data_network_targets=["10.10.0.1"]), None)
    if areas is not None:
        attach_map(report, load_areas(areas))
    return report
