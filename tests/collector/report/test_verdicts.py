"""Every verdict says its basis in HTML, CSV and JSON, in both languages; hamlet coverage is
not measured from commune offices; the worst service is named; settings errors all at once."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
from probefleet.collector.report.html import render_html
from probefleet.collector.report.i18n import TEXT, Strings
from probefleet.collector.report.model import (
    AccessFigures,
    Area,
    Methodology,
    Report,
    ServiceFigures,
    Speed,
)
from probefleet.collector.report.settings import ReportSettings, load_settings
from probefleet.collector.report.tables import render_csv, render_json
from probefleet.collector.report.verdicts import apply_verdicts
from probefleet.core import configkit

START = dt.datetime(2025, 3, 2, 17, tzinfo=dt.UTC)


def _fixed(median: float, tests: int) -> dict[str, AccessFigures]:
    return {
        "fixed": AccessFigures(
            "fixed", 150.0, download=Speed(median_mbps=median, tests=tests), runs_ok=tests
        )
    }


def _commune(name: str, median: float | None, dvc: float | None, tests: int = 10) -> Area:
    area = Area("commune", province="Đồng Nai", district="Nhơn Trạch", commune=name, probes=1)
    if median is not None:
        area.probes_seen = 1
        area.access = _fixed(median, tests)
    if dvc is not None:
        area.services = {
            "dvc": ServiceFigures(availability=dvc, checks=100),
            "email": ServiceFigures(availability=1.0, checks=100),
        }
    return area


def _report() -> Report:
    communes = [
        _commune("Phú Hội", 160.0, 1.0, tests=30),
        _commune("Long Tân", 140.0, 0.0, tests=20),
        _commune("Đại Phước", None, None),
    ]
    province = Area("province", province="Đồng Nai", probes=3, probes_seen=2)
    province.access = _fixed(154.7, 50)
    district = Area("district", province="Đồng Nai", district="Nhơn Trạch", probes=3)
    district.probes_seen = 2
    district.access = _fixed(154.7, 50)
    report = Report(
        start=START,
        end=START + dt.timedelta(days=7),
        generated_at=START,
        targets_mbps={"fixed": 150.0, "mobile": 60.0},
        province=[province],
        districts=[district],
        communes=communes,
        operators=[],
        methodology=Methodology("Asia/Ho_Chi_Minh", 19, 23, 2025, "targets.toml"),
    )
    apply_verdicts(report, ReportSettings(), None)
    return report


PROVINCE_FIXED = {
    "en": "province median 154.7 Mbit/s of 50 tests from 2 communes; "
    "communes met / not met / not measured: 1 / 1 / 1",
    "vi": "trung vị toàn tỉnh 154,7 Mbit/s của 50 lần đo từ 2 xã; "
    "số xã đạt / không đạt / chưa đo được: 1 / 1 / 1",
}
HAMLETS = {
    "en": "no hamlet-level evidence; commune office probes do not measure hamlet coverage",
    "vi": TEXT["basis_no_hamlet_evidence"][0],
}
WORST = {
    "en": "worst: dvc in Long Tân, 0.0 % of 100 checks (threshold 99.0 %)",
    "vi": "thấp nhất: dvc tại Long Tân, 0,0 % của 100 lượt kiểm tra (ngưỡng 99,0 %)",
}


def test_a_province_verdict_says_it_is_one_median_and_how_many_communes_carry_it() -> None:
    report = _report()
    province = report.province[0]
    assert province.verdicts["download_fixed"] == "met"
    b = province.bases["download_fixed"]
    assert (b.median_mbps, b.tests, b.communes_tested) == (154.7, 50, 2)
    assert (b.communes_met, b.communes_not_met, b.communes_not_measured) == (1, 1, 1)
    assert Strings("en").basis(report.communes[0].bases["download_fixed"], "commune") == (
        "commune median 160.0 Mbit/s of 30 tests"
    )
    assert Strings("en").basis(report.communes[2].bases["download_fixed"], "commune") == (
        "no tests in the period"
    )


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_format_carries_the_basis_beside_the_verdict(lang: str) -> None:
    t = Strings(lang)  # type: ignore[arg-type]
    report = _report()
    raw = render_html(report, t)
    # A number and its unit never part at a line end (print): a no-break space between.
    assert re.search(r"\d %", raw) is None
    assert re.search(r"\d Mbit/s", raw) is None
    assert "\u00a0%" in raw
    assert "\u00a0Mbit/s" in raw
    html = raw.replace("\u00a0", " ")
    summary = html.split('data-item="download_fixed"')[1].split("</tr>")[0]
    assert f">{t('met')}<" in summary
    assert PROVINCE_FIXED[lang] in summary
    coverage = html.split('data-item="coverage_fixed"')[1].split("</tr>")[0]
    assert 'class="v not_measured"' in coverage
    assert HAMLETS[lang] in coverage
    assert WORST[lang] in html.split('data-item="services"')[1].split("</tr>")[0]
    # the per-area verdict tables too: every verdict cell has its basis under it
    assert html.count('<span class="basis">') == 7 * (1 + 1 + 3)

    doc = json.loads(render_json(report, t))
    prov = doc["province"][0]
    assert prov["verdicts"]["download_fixed"] == "met"
    assert prov["verdict_basis"]["download_fixed"]["text"] == PROVINCE_FIXED[lang]
    assert prov["verdict_basis"]["download_fixed"]["communes_tested"] == 2
    assert prov["verdicts"]["coverage_mobile"] == "not_measured"
    assert prov["verdict_basis"]["coverage_mobile"]["rule"] == "no_hamlet_evidence"
    assert prov["verdict_basis"]["services"]["worst_service"] == "dvc"
    assert prov["verdict_basis"]["services"]["worst_commune"] == "Long Tân"

    rows = {
        (r["level"], r["commune"]): r for r in csv.DictReader(io.StringIO(render_csv(report, t)))
    }
    row = rows[("province", "")]
    assert row["verdict_download_fixed"] == "met"
    assert row["basis_download_fixed"] == PROVINCE_FIXED[lang]
    assert row["verdict_coverage_fixed"] == "not_measured"
    assert row["basis_coverage_fixed"] == HAMLETS[lang]
    assert row["basis_services"].startswith(WORST[lang])
    assert (row["services_worst_service"], row["services_worst_commune"]) == ("dvc", "Long Tân")
    assert float(row["services_worst_availability"]) == 0.0


def test_hamlet_coverage_is_not_measured_whatever_the_office_probes_did() -> None:
    report = _report()
    for area in [*report.communes, *report.districts, *report.province]:
        assert area.verdicts["coverage_mobile"] == area.verdicts["coverage_fixed"] == "not_measured"
        assert area.bases["coverage_fixed"].rule == "no_hamlet_evidence"
    assert report.communes[0].access["fixed"].download.tests == 30  # tests there: still no


def test_service_availability_names_the_worst_service_and_commune() -> None:
    report = _report()
    en = render_html(report, Strings("en")).replace("\u00a0", " ")
    table = en.split("Province-wide results")[1].split("</table>")[0]
    assert "0.0 % (dvc, Long Tân)" in table
    communes = en.split("Results per commune")[1].split("</table>")[0]
    assert "0.0 % (dvc)" in communes  # a commune's own row: the service alone
    assert "100.0 % (dvc)" in communes
    assert report.communes[0].bases["services"].worst_service in {"dvc", "email"}


def test_every_basis_string_has_the_same_fields_in_both_languages() -> None:
    import string

    for key, (vi, en) in TEXT.items():
        if key.startswith("basis_"):
            fields = [{f for _, f, _, _ in string.Formatter().parse(s) if f} for s in (vi, en)]
            assert fields[0] == fields[1], key


def test_report_settings_list_every_problem_at_once_with_key_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "report.toml"
    bad.write_text(
        "[report]\npeak_start_hour = 23\npeak_end_hour = 19\n"
        'timezone = "Mars/Olympus"\nservices = 3\ndata_network_min_share = 1.5\nsorce = "raw"\n'
    )
    with pytest.raises(configkit.ConfigError) as info:
        load_settings(bad)
    problems = info.value.problems
    assert info.value.path == str(bad)
    assert len(problems) == 5, problems
    for key in (
        "report.peak_start_hour = 23",
        "report.timezone = 'Mars/Olympus'",
        "report.services = 3",
        "report.data_network_min_share = 1.5",
        "report.sorce",
    ):
        assert any(p.startswith(key) for p in problems), (key, problems)
    assert "did you mean 'source'" in str(info.value)
    # the cross-key rules alone, and on settings built in code
    bad.write_text('[report]\npeak_start_hour = 23\npeak_end_hour = 19\ntimezone = "X/Y"\n')
    with pytest.raises(configkit.ConfigError) as info:
        load_settings(bad)
    assert len(info.value.problems) == 2
    assert ReportSettings(peak_start_hour=5, peak_end_hour=5).problems() == [
        "report.peak_start_hour = 5: must be before report.peak_end_hour (5)"
    ]
    assert ReportSettings().problems() == []
