"""Hamlet coverage end to end: a synthetic survey walk through the sample's hamlets, each point
built from the survey golden with the spec's names and given its hamlet by the collector's
own ingest (points_from with the registry), written to a real InfluxDB 1.6; then
`probe-collector report` (JSON, CSV, HTML) against verdicts computed here by hand — a
hamlet never visited, a track with no fix, a point on a boundary, points outside every
hamlet, too few points, weak signal, 3G, slow stop tests, declared FTTH."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector.hamlets import load_hamlets
from probefleet.collector.inventory import Enrichment, load_inventory, load_targets
from probefleet.collector.points import parse, points_from
from probefleet.core import wire
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import shape

from tests.collector.helpers import GOLDEN, ROOT
from tests.harness import InfluxDB

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

AREAS = ROOT / "config" / "areas" / "dongnai.sample.geojson"
DECLARED = ROOT / "config" / "areas" / "ftth-declared.sample.csv"
TOPICS = wire.Topics()
VIETTEL, MOBIFONE = "45204", "45201"
T0 = dt.datetime(2026, 12, 3, 1, 0, tzinfo=dt.UTC)  # 08:00 in the province


def _where(code: str) -> ShapelyPoint:
    doc = json.loads(AREAS.read_text(encoding="utf-8"))
    feature = next(f for f in doc["features"] if f["properties"]["code"] == code)
    return shape(feature["geometry"]).representative_point()


def _boundary(a: str, b: str) -> ShapelyPoint:
    on: ShapelyPoint = (
        _where_shape(a).intersection(_where_shape(b)).interpolate(0.5, normalized=True)
    )
    return on


def _where_shape(code: str) -> Any:
    doc = json.loads(AREAS.read_text(encoding="utf-8"))
    feature = next(f for f in doc["features"] if f["properties"]["code"] == code)
    return shape(feature["geometry"])


class Walk:
    """Survey results of one run, as the agent publishes them."""

    def __init__(self) -> None:
        self.golden = json.loads((GOLDEN / "result-survey.json").read_bytes())
        self.results: list[bytes] = []

    def add(
        self,
        at: ShapelyPoint,
        n: int,
        *,
        operator: str | None = VIETTEL,
        technology: str = "lte",
        rsrp_dbm: float = -95.0,
        snr_db: float | None = 8.0,
        fix_ok: bool = True,
        download_mbps: float | None = None,
    ) -> None:
        for _ in range(n):
            i = len(self.results) + 1
            doc = json.loads(json.dumps(self.golden))
            when = T0 + dt.timedelta(seconds=5 * i)
            doc["seq"] = i
            doc["measured_at"] = doc["sent_at"] = when.isoformat().replace("+00:00", "Z")
            data = doc["data"]
            data.update(point_n=i, lat_deg=at.y, lon_deg=at.x, fix_ok=fix_ok, fix_mode="3d")
            data["run_started_at"] = T0.isoformat().replace("+00:00", "Z")
            data.pop("gps_time", None)
            data["horizontal_accuracy_m"] = 4.0
            if fix_ok:
                data.pop("fix_reason", None)
            else:
                data["fix_reason"] = "accuracy 80 m is worse than max_accuracy_m = 50"
            if download_mbps is not None:
                data["download_mbps"] = download_mbps
            if operator is None:
                doc.pop("radio", None)
            else:
                start: dict[str, Any] = {
                    "technology": technology,
                    "registration": "home",
                    "operator_code": operator,
                    "rsrp_dbm": rsrp_dbm,
                }
                if snr_db is not None:
                    start["snr_db"] = snr_db
                doc["radio"] = {"start": start}
            self.results.append(json.dumps(doc).encode())


def _inventory(tmp: Path) -> Path:
    """The sample inventory plus a fixed line in Phú Lâm, inside hamlet X26102-04, of an
    operator that declares no FTTH there."""
    at = _where("X26102-04")
    path = tmp / "inventory.toml"
    path.write_text(
        (ROOT / "config/inventory.sample.toml").read_text(encoding="utf-8")
        + '\n[probes.dongnai-phulam-01]\ncommune = "Phú Lâm"\nprovince = "Đồng Nai"\n'
        f"lat = {at.y}\nlon = {at.x}\n"
        '[probes.dongnai-phulam-01.interfaces.eth0]\noperator = "FPT"\naccess = "fixed"\n',
        encoding="utf-8",
    )
    return path


def _fixed_tests() -> list[bytes]:
    """One completed FTTH test in the period from each of two office probes."""
    out = []
    for n, probe in enumerate(("dongnai-tanphu-01", "dongnai-phulam-01"), start=1):
        doc = json.loads((GOLDEN / "result-throughput.json").read_bytes())
        when = (T0 + dt.timedelta(minutes=n)).isoformat().replace("+00:00", "Z")
        doc.update(probe_id=probe, measured_at=when, sent_at=when)
        out.append(json.dumps(doc).encode())
    return out


def _walk() -> Walk:
    w = Walk()
    w.add(_where("X26102-01"), 19)
    w.add(_boundary("X26102-01", "X26102-02"), 1)  # on the edge: the smaller code's
    w.add(_where("X26102-02"), 17)
    w.add(_where("X26102-02"), 3, rsrp_dbm=-115.0)  # 85 % good: not covered
    w.add(_where("X26102-03"), 10)  # too few: not surveyed
    w.add(_where("X26102-04"), 30, fix_ok=False)  # no good fix: no hamlet, still kept
    w.add(_where("X26101-01"), 20, operator=MOBIFONE)
    w.add(_where("X26101-01"), 1, operator=MOBIFONE, download_mbps=30.0)
    w.add(_where("X26101-01"), 1, operator=MOBIFONE, download_mbps=40.0)  # median 35 < 60
    w.add(_where("X26101-01"), 20, snr_db=None)  # Viettel, SINR not reported: covered
    w.add(_where("X26101-02"), 20, technology="umts", rsrp_dbm=-80.0)  # 3G
    w.add(_where("X26101-02"), 5, operator=None)  # no radio context: no operator's
    w.add(_where("X26301"), 25)  # Biên Hòa: no hamlets there
    return w


@pytest.fixture(scope="module")
def reports(
    influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("hamlets")
    db = "t_hamlet_coverage"
    influxdb.create_database(db)
    inventory = _inventory(tmp)
    enrichment = Enrichment(
        load_inventory(inventory),
        load_targets(ROOT / "config/targets.sample.toml"),
        load_hamlets(AREAS),
    )
    lines = []
    for raw in _walk().results + _fixed_tests():
        doc = json.loads(raw)
        parsed = parse(TOPICS.result(doc["probe_id"], doc["kind"]), raw, TOPICS)
        lines += [p.line() for p in points_from(parsed.result, parsed.probe, enrichment)]
    influxdb.write_lines(db, lines)
    config = tmp / "collector.toml"
    config.write_text(
        f'[influxdb]\nurl = "{influxdb.v1_url}"\nbucket = "{db}"\n'
        f'[files]\ninventory = "{inventory}"\n'
        f'targets = "{ROOT / "config/targets.sample.toml"}"\n'
        f'state_dir = "{tmp / "state"}"\n'
    )
    settings = tmp / "report.toml"
    settings.write_text(
        f'[report]\nsource = "raw"\nareas_file = "{AREAS}"\nftth_declared_files = ["{DECLARED}"]\n'
    )
    out: dict[str, str] = {}
    try:
        for fmt in ("json", "csv", "html"):
            path = tmp / f"report.{fmt}"
            proc = subprocess.run(
                [sys.executable, "-m", "probefleet.collector.cli", "report",
                 "--config", str(config), "--settings", str(settings), "--format", fmt,
                 "--lang", "en", "--from", "2026-12-03", "--to", "2026-12-03",
                 "--out", str(path)],
                capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            out[fmt] = path.read_text(encoding="utf-8")
        out["influx_points"] = str(
            influxdb.query_points('SELECT count("point_n") FROM "survey"', db=db)[0]["count"]
        )
        yield out
    finally:
        influxdb.drop_database(db)


def _hamlet(doc: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = next(h for h in doc["hamlet_coverage"]["hamlets"] if h["code"] == code)
    return found


def test_every_point_is_kept_and_only_good_fixes_in_a_hamlet_are_counted(
    reports: dict[str, str],
) -> None:
    doc = json.loads(reports["json"])
    assert int(reports["influx_points"]) == len(_walk().results)  # none lost, none merged
    # In hamlets with a good fix: 20 + 20 + 10 + 22 + 20 + 20 + 5; not the 30 without a fix
    # nor the 25 in Biên Hòa.
    assert doc["hamlet_coverage"]["survey_points"] == 117


def test_hamlet_verdicts_per_operator_match_the_hand_computed_ones(
    reports: dict[str, str],
) -> None:
    doc = json.loads(reports["json"])
    verdicts = {
        h["code"]: (h["mobile_verdict"], {op: m["verdict"] for op, m in h["mobile"].items()})
        for h in doc["hamlet_coverage"]["hamlets"]
    }
    assert verdicts["X26102-01"] == ("covered", {VIETTEL: "covered"})
    assert _hamlet(doc, "X26102-01")["mobile"][VIETTEL]["points"] == 20  # the boundary point
    assert verdicts["X26102-02"] == ("not_covered", {VIETTEL: "not_covered"})
    assert _hamlet(doc, "X26102-02")["mobile"][VIETTEL]["good_share"] == pytest.approx(0.85)
    assert verdicts["X26102-03"] == ("not_surveyed", {VIETTEL: "not_surveyed"})
    assert verdicts["X26102-04"] == ("not_surveyed", {})  # only points without a fix
    assert verdicts["X26101-01"] == (
        "covered",
        {VIETTEL: "covered", MOBIFONE: "not_covered"},
    )
    mobifone = _hamlet(doc, "X26101-01")["mobile"][MOBIFONE]
    assert (mobifone["stop_tests"], mobifone["download_median_mbps"]) == (2, 35.0)
    assert verdicts["X26101-02"] == ("not_covered", {VIETTEL: "not_covered"})
    assert _hamlet(doc, "X26101-02")["points_without_radio"] == 5
    assert {c for c, v in verdicts.items() if v[0] == "not_surveyed"} == {
        "X26101-03", "X26101-04", "X26102-03", "X26102-04",
        "X26201-01", "X26201-02", "X26201-03", "X26201-04",
    }  # fmt: skip


def test_counts_per_area_and_the_province_kpi(reports: dict[str, str]) -> None:
    doc = json.loads(reports["json"])
    areas = {(a["level"], a["name"]): a for a in doc["hamlet_coverage"]["areas"]}
    province = areas[("province", None)]
    assert province["hamlets"] == 12
    assert province["mobile"]["covered"] == 2
    assert province["mobile"]["surveyed"] == 4
    assert province["mobile"]["covered_share"] == pytest.approx(2 / 12)
    assert province["mobile"]["by_operator"] == {
        MOBIFONE: {"covered": 0, "surveyed": 1},
        VIETTEL: {"covered": 2, "surveyed": 4},
    }
    # FTTH declared before the period's end: 7 of the sample file's 7 rows.
    assert province["ftth"] == {"covered": 7, "covered_share": pytest.approx(7 / 12)}
    tan_phu = areas[("commune", "Tân Phú")]
    assert (tan_phu["hamlets"], tan_phu["mobile"]["covered"], tan_phu["mobile"]["surveyed"]) == (
        4,
        1,
        2,
    )
    assert tan_phu["ftth"]["covered"] == 3
    la_nga = areas[("commune", "La Ngà")]
    assert (
        la_nga["mobile"]["covered"],
        la_nga["mobile"]["surveyed"],
        la_nga["ftth"]["covered"],
    ) == (
        0,
        0,
        1,
    )
    # The report's plan items: real verdicts where there is evidence, else not measured.
    communes = {c["commune"]: c for c in doc["communes"]}
    tan_phu_area = communes["Tân Phú"]
    assert tan_phu_area["verdicts"]["coverage_mobile"] == "not_met"
    assert tan_phu_area["verdicts"]["coverage_fixed"] == "not_met"
    assert communes["Biên Hòa"]["verdicts"]["coverage_mobile"] == "not_measured"
    assert doc["province"][0]["verdicts"]["coverage_mobile"] == "not_met"
    basis = doc["province"][0]["verdict_basis"]
    assert basis["coverage_mobile"]["text"] == (
        "2/12 hamlets covered = 16.7 % (target 100 %); surveyed 4"
    )
    assert basis["coverage_fixed"]["rule"] == "hamlets_ftth"
    assert (basis["coverage_fixed"]["part"], basis["coverage_fixed"]["whole"]) == (7, 12)


def test_the_ftth_cross_check_says_what_a_fixed_probe_can(reports: dict[str, str]) -> None:
    doc = json.loads(reports["json"])
    checks = {(c["probe"], c["operator"]): c for c in doc["hamlet_coverage"]["ftth_checks"]}
    # Tân Phú's office is in no hamlet of the registry: its commune, where VNPT declares two.
    tan_phu = checks[("dongnai-tanphu-01", "VNPT")]
    assert (tan_phu["outcome"], tan_phu["hamlet_code"], tan_phu["tests"]) == ("agrees", "", 1)
    # Phú Lâm's line is FPT's, in hamlet X26102-04, where FPT declares nothing.
    phu_lam = checks[("dongnai-phulam-01", "FPT")]
    assert (phu_lam["outcome"], phu_lam["hamlet_code"]) == ("disagrees", "X26102-04")
    # Biên Hòa has no hamlets in the registry: nothing to compare with, no row.
    assert not [c for c in checks if c[0] == "dongnai-bienhoa-01"]


def test_csv_and_html_carry_the_same_rows(reports: dict[str, str]) -> None:
    rows = list(csv.DictReader(io.StringIO(reports["csv"])))
    province = next(
        r for r in rows if r["level"] == "hamlets_province" and not r["mobile_operator"]
    )
    assert (province["hamlets"], province["hamlets_mobile_covered"]) == ("12", "2")
    assert province["hamlets_mobile_surveyed"] == "4"
    assert province["hamlets_ftth_covered"] == "7"
    hamlet = [r for r in rows if r["level"] == "hamlet" and r["hamlet_code"] == "X26101-01"]
    assert {r["mobile_operator"]: r["mobile_verdict"] for r in hamlet} == {
        "": "covered",
        VIETTEL: "covered",
        MOBIFONE: "not_covered",
    }
    html = reports["html"]
    assert 'id="coverage-areas"' in html
    assert 'id="coverage-map"' in html
    assert 'data-code="X26102-02" data-verdict="not_met"' in html  # the map's fill
    assert 'data-code="X26102-04" data-verdict="not_measured"' in html
    assert html.count('<tr data-code="X') == 12
    # The walk's one run as a track over the hamlets (the Biên Hòa part is off this map).
    assert html.count('class="track"') >= 1
