"""Hamlet coverage verdicts (collector/coverage.py), the targets file's [coverage.mobile],
and the declared-FTTH CSV (collector/report/ftth.py): thresholds at their edges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from probefleet.collector.coverage import (
    MobileCoverageRule,
    SurveySample,
    any_operator,
    is_good,
    mobile_verdict,
)
from probefleet.collector.inventory import load_targets
from probefleet.collector.report.areas import load_areas
from probefleet.collector.report.ftth import load_declared, parse_declared
from probefleet.core import configkit

from tests.collector.helpers import ROOT

RULE = MobileCoverageRule()
GOOD = SurveySample("45204", "lte", rsrp_dbm=-95.0, snr_db=8.0)
WEAK = SurveySample("45204", "lte", rsrp_dbm=-111.0, snr_db=8.0)
AREAS = ROOT / "config" / "areas" / "dongnai.sample.geojson"


def test_the_defaults_are_the_issue_s() -> None:
    assert (RULE.min_points, RULE.share_pct, RULE.rsrp_min_dbm, RULE.snr_min_db) == (
        20,
        90.0,
        -110.0,
        0.0,
    )
    assert RULE.technologies == ["lte", "nr5g_nsa", "nr5g_sa"]
    assert load_targets(ROOT / "config/targets.sample.toml").coverage.mobile == RULE


@pytest.mark.parametrize(
    ("point", "good"),
    [
        (SurveySample("x", "lte", rsrp_dbm=-110.0, snr_db=0.0), True),  # both at threshold
        (SurveySample("x", "lte", rsrp_dbm=-110.5, snr_db=10.0), False),
        (SurveySample("x", "lte", rsrp_dbm=-90.0, snr_db=-0.5), False),
        (SurveySample("x", "lte", rsrp_dbm=-90.0), True),  # SINR not reported: not held
        (SurveySample("x", "lte", snr_db=10.0), False),  # no RSRP: no evidence of signal
        (SurveySample("x", "umts", rsrp_dbm=-80.0, snr_db=10.0), False),  # 3G
        (SurveySample("x", "", rsrp_dbm=-80.0), False),  # no radio context
        (SurveySample("x", "nr5g_nsa", rsrp_dbm=-100.0, nr_rsrp_dbm=-120.0), True),
        (SurveySample("x", "nr5g_sa", rsrp_dbm=-100.0, nr_rsrp_dbm=-120.0), False),  # NR's
        (SurveySample("x", "nr5g_sa", nr_rsrp_dbm=-100.0, nr_snr_db=3.0), True),
    ],
)
def test_a_good_point(point: SurveySample, good: bool) -> None:
    assert is_good(point, RULE) is good


def test_too_few_points_is_not_surveyed_never_covered() -> None:
    found = mobile_verdict([GOOD] * 19, RULE, 60.0)
    assert found.verdict == "not_surveyed"
    assert (found.points, found.good_points) == (19, 19)
    assert mobile_verdict([], RULE, 60.0).verdict == "not_surveyed"


def test_the_share_of_good_points_at_its_edge() -> None:
    assert mobile_verdict([GOOD] * 18 + [WEAK] * 2, RULE, 60.0).verdict == "covered"  # 90 %
    found = mobile_verdict([GOOD] * 17 + [WEAK] * 3, RULE, 60.0)  # 85 %
    assert found.verdict == "not_covered"
    assert found.good_share == pytest.approx(0.85)


def test_stop_tests_median_must_meet_the_mobile_target_where_run() -> None:
    def stop(mbps: float) -> SurveySample:
        return SurveySample("45204", "lte", rsrp_dbm=-90.0, download_mbps=mbps)

    # Median of 40, 59, 61 = 59 < 60: not covered, however good the signal.
    slow = mobile_verdict([GOOD] * 20 + [stop(40), stop(59), stop(61)], RULE, 60.0)
    assert (slow.verdict, slow.stop_tests, slow.download_median_mbps) == ("not_covered", 3, 59.0)
    # Median of 59, 61 = 60 (mean of the two middle values, as InfluxDB): covered.
    ok = mobile_verdict([GOOD] * 20 + [stop(59), stop(61)], RULE, 60.0)
    assert (ok.verdict, ok.download_median_mbps) == ("covered", 60.0)
    # No stop test: signal alone decides.
    assert mobile_verdict([GOOD] * 20, RULE, 60.0).download_median_mbps is None


def test_a_hamlet_is_covered_when_one_operator_covers_it() -> None:
    covered = mobile_verdict([GOOD] * 20, RULE, None)
    weak = mobile_verdict([WEAK] * 20, RULE, None)
    few = mobile_verdict([GOOD] * 3, RULE, None)
    assert any_operator([weak, covered]) == "covered"
    assert any_operator([weak, few]) == "not_covered"
    assert any_operator([few]) == "not_surveyed"
    assert any_operator([]) == "not_surveyed"


def test_the_targets_file_s_coverage_rule_is_validated_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(
        "year = 2025\n[fixed]\ndownload_mbps = 150.0\n[mobile]\ndownload_mbps = 60.0\n"
        '[coverage.mobile]\nmin_points = 0\nshare_pct = 120.0\ntechnologies = ["6g"]\n'
    )
    with pytest.raises(configkit.ConfigError) as info:
        load_targets(path)
    said = "\n".join(info.value.problems)
    assert "coverage.mobile.min_points = 0" in said
    assert "coverage.mobile.share_pct = 120.0" in said
    assert "coverage.mobile.technologies" in said


def test_declared_ftth_names_every_problem_with_file_and_line() -> None:
    hamlets = {"X26101-01", "X26101-02"}
    text = (
        "hamlet_code,operator,ftth_since\n"
        "X26101-01,VNPT,2024-01-15\n"
        "X99,VNPT,2024-01-15\n"
        "X26101-02,,2024-01-15\n"
        "X26101-02,Viettel,15/01/2024\n"
        "X26101-01,vnpt,2025-01-01\n"
        "X26101-02,FPT\n"
    )
    rows, problems = parse_declared(text, "vnpt.csv", hamlets)
    assert [(r.hamlet_code, r.operator, r.where) for r in rows] == [
        ("X26101-01", "VNPT", "vnpt.csv:2")
    ]
    assert problems == [
        "vnpt.csv:3: hamlet_code = 'X99': no hamlet with that code",
        "vnpt.csv:4: operator = '': 1-100 characters",
        "vnpt.csv:5: ftth_since = '15/01/2024': not a date (YYYY-MM-DD)",
        "vnpt.csv:6: hamlet X26101-01 and operator 'vnpt' already on line 2",
        "vnpt.csv:7: 2 columns, expected 3",
    ]
    _, bad_header = parse_declared("code,op,since\n", "x.csv", hamlets)
    assert bad_header[0].startswith("x.csv:1: the header must be hamlet_code,operator,ftth_since")


def test_the_sample_declared_file_loads_against_the_sample_registry() -> None:
    declared = load_declared([ROOT / "config/areas/ftth-declared.sample.csv"], load_areas(AREAS))
    assert len(declared) == 7
    assert {d.hamlet_code.split("-")[0] for d in declared} == {"X26101", "X26102", "X26201"}


@pytest.mark.slow
def test_check_names_an_unknown_hamlet_in_a_declared_file(tmp_path: Path) -> None:
    (tmp_path / "inventory.toml").write_text("")
    config = tmp_path / "collector.toml"
    config.write_text(
        f'[files]\ninventory = "{tmp_path / "inventory.toml"}"\n'
        f'targets = "{ROOT / "config/targets.sample.toml"}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
    )
    (tmp_path / "viettel.csv").write_text(
        "hamlet_code,operator,ftth_since\nX26102-01,Viettel,2024-01-01\nX404,Viettel,2024-01-01\n"
    )
    settings = tmp_path / "report.toml"
    settings.write_text(
        f'[report]\nareas_file = "{AREAS}"\nftth_declared_files = ["viettel.csv"]\n'
    )  # relative to the settings file
    proc = subprocess.run(
        [sys.executable, "-m", "probefleet.collector.cli", "check", "--config", str(config),
         "--settings", str(settings)],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    assert f"{tmp_path / 'viettel.csv'}:3: hamlet_code = 'X404': no hamlet with that code" in (
        proc.stderr
    )
