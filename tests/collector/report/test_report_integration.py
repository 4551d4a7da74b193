"""The report end to end: agent-built results -> real Mosquitto -> the real collector -> InfluxDB
1.6 -> `probe-collector report` -> JSON/CSV/HTML, every figure checked against InfluxQL written
here by hand (and against what the fleet published)."""

# Direct InfluxQL built from the test's own constants.
# ruff: noqa: S608
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector import queries
from probefleet.collector.service import Service, load_enrichment
from probefleet.core import wire

from tests.collector.helpers import BROKER_CONF, ROOT, TOPICS, StandInProbe, write_config
from tests.collector.report import fleet as fl
from tests.harness import InfluxDB, InfluxTarget, Mosquitto, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

START = fl.START_LOCAL.astimezone(dt.UTC)
END = fl.END_LOCAL.astimezone(dt.UTC)
PERIOD = f"time >= '{START:%Y-%m-%dT%H:%M:%SZ}' AND time < '{END:%Y-%m-%dT%H:%M:%SZ}'"
AREAS_FILE = ROOT / "config" / "areas" / "dongnai.sample.geojson"
SETTINGS = f"""
[report]
data_network_targets = ["{fl.DATA_NETWORK}"]
areas_file = "{AREAS_FILE}"
"""
POINTS = {"throughput": 1, "latency": 2, "service": 2, "ipv6": 1, "health": 1}


@dataclass
class Published:
    target: InfluxTarget
    config: Path
    settings: Path
    fleet: fl.Fleet
    workdir: Path

    def q(self, text: str) -> list[dict[str, Any]]:
        """Direct InfluxQL: one dict per row, GROUP BY tags merged in."""
        return self.target.server.query_points(text, db=self.target.db, epoch="s")

    def one(self, text: str) -> dict[str, Any]:
        rows = self.q(text)
        assert len(rows) == 1, (text, rows)
        return rows[0]

    def report(self, fmt: str, *args: str, lang: str = "en") -> tuple[Path, str]:
        out = self.workdir / f"report-{fmt}-{lang}-{len(list(self.workdir.iterdir()))}.{fmt}"
        proc = subprocess.run(
            [sys.executable, "-m", "probefleet.collector.cli", "report",
             "--config", str(self.config),
             "--settings", str(self.settings), "--format", fmt, "--lang", lang,
             "--out", str(out), *args],
            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return out, proc.stderr


@pytest.fixture(scope="module")
def published(influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """The fleet's week published through Mosquitto into the collector, plus two hostile
    messages (dead letters); the collector stopped once everything is stored."""
    tmp = tmp_path_factory.mktemp("report")
    broker = Mosquitto(tmp / "mosquitto", extra_conf=BROKER_CONF).start()
    db = "t_report_fleet"
    influxdb.create_database(db)
    target = InfluxTarget(influxdb, db)
    fleet = fl.build_fleet()
    try:
        path, cfg = write_config(tmp, broker, target, inventory=fl.INVENTORY)
        service = Service(cfg, load_enrichment(cfg))
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(service.run()), daemon=True)
        thread.start()
        assert service.link.wait_subscribed(10)
        probes = {m.probe_id for m in fleet.messages}
        stand_ins = {p: StandInProbe(broker, p).start() for p in sorted(probes)}
        try:
            for m in fleet.messages:
                stand_ins[m.probe_id].publish_raw(
                    TOPICS.result(m.probe_id, wire.kind_of(m)), wire.encode(m)
                )
            bad = stand_ins["dn-bienhoa-01"]
            bad.publish_raw(TOPICS.result("dn-bienhoa-01", "latency"), b"{not json")
            forged = wire.encode(next(m for m in fleet.messages if m.probe_id == "dn-tanphu-01"))
            bad.publish_raw(TOPICS.result("dn-bienhoa-01", "health"), forged)
            want = {k: 0 for k in POINTS}
            for m in fleet.messages:
                want[wire.kind_of(m)] += POINTS[wire.kind_of(m)]
            for kind, n in want.items():

                def all_written(k: str = kind, n: int = n) -> bool:
                    return _count(target, k) == n

                eventually(
                    all_written,
                    timeout_s=60,
                    message=f"{kind}: {n} points expected",
                )
            eventually(lambda: service.deadletters.count() == 2, message="dead letters")
        finally:
            for s in stand_ins.values():
                s.stop()
            service.request_stop()
            thread.join(30)
        assert codes == [0]
        settings = tmp / "report.toml"
        settings.write_text(SETTINGS, encoding="utf-8")
        out = tmp / "out"
        out.mkdir()
        yield Published(target, path, settings, fleet, out)
    finally:
        broker.stop()
        if influxdb.running:
            influxdb.drop_database(db)


def _count(target: InfluxTarget, measurement: str) -> int:
    rows = target.server.query(f'SELECT count("seq") FROM "{measurement}"', db=target.db)
    return int(rows[0]["values"][0][1]) if rows else 0


@pytest.fixture(scope="module")
def doc(published: Published) -> dict[str, Any]:
    path, stderr = published.report("json", "--from", "2025-03-03", "--to", "2025-03-09")
    # Progress: one line per statement, numbered, then the summary.
    assert "[1/" in stderr
    assert "3 communes (2 with data)" in stderr
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def _commune(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["communes"] if c["commune"] == name)


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


AREAS = [
    ("communes", "commune", "Tân Phú"),
    ("communes", "commune", "Phường Trấn Biên"),
    ("districts", "district", "Biên Hòa"),
    ("province", "province", "Đồng Nai"),
    ("operators", "operator", "VNPT"),
    ("operators", "operator", "Viettel"),
]


def _area(doc: dict[str, Any], section: str, tag: str, name: str) -> dict[str, Any]:
    return next(a for a in doc[section] if a[tag] == name)


@pytest.mark.parametrize(("section", "tag", "name"), AREAS)
def test_speeds_match_direct_influxql(
    published: Published, doc: dict[str, Any], section: str, tag: str, name: str
) -> None:
    area = _area(doc, section, tag, name)
    assert area["access"], f"{name}: no access figures"
    for access, figures in area["access"].items():
        where = f"\"{tag}\" = '{name}' AND \"access\" = '{access}' AND \"status\" = 'ok'"
        for direction in ("download", "upload"):
            row = published.one(
                f'SELECT median("{direction}_mbps") AS m, percentile("{direction}_mbps", 10) AS p,'
                f' count("{direction}_mbps") AS n FROM "throughput" WHERE {where} AND {PERIOD}'
            )
            got = figures[direction]
            assert _close(got["median_mbps"], row["m"]), (name, access, direction)
            assert _close(got["p10_mbps"], row["p"]), (name, access, direction)
            assert got["tests"] == row["n"]
        row = published.one(
            f'SELECT sum("meets_download_target") AS k, count("meets_download_target") AS n '
            f'FROM "throughput" WHERE {where} AND {PERIOD}'
        )
        assert figures["download"]["tests_at_target"] == row["k"]
        assert _close(figures["download"]["share_at_target"], row["k"] / row["n"])
        # Peak hours: raw values filtered here on the province's clock, InfluxDB's median.
        raw = published.q(f'SELECT "download_mbps" FROM "throughput" WHERE {where} AND {PERIOD}')
        peak = [
            r["download_mbps"]
            for r in raw
            if fl.PEAK[0] <= dt.datetime.fromtimestamp(r["time"], fl.VN).hour < fl.PEAK[1]
        ]
        assert figures["download"]["peak_tests"] == len(peak) > 0
        assert _close(figures["download"]["peak_median_mbps"], fl.influx_median(peak))
        runs = {
            r["status"]: r["n"]
            for r in published.q(
                f'SELECT count("seq") AS n FROM "throughput" WHERE "{tag}" = \'{name}\' '
                f'AND "access" = \'{access}\' AND {PERIOD} GROUP BY "status"'
            )
        }
        assert figures["runs_ok"] == runs.get("ok", 0)
        assert figures["runs_failed"] == runs.get("failed", 0)
        assert figures["runs_skipped"] == runs.get("skipped", 0)
        lat = (
            published.one(
                f'SELECT median("rtt_median_ms") AS m, median("jitter_ms") AS j, '
                f'sum("received") AS r, sum("sent") AS s FROM "latency" '
                f'WHERE "{tag}" = \'{name}\' AND "access" = '
                f"'{access}' AND \"target\" != '{fl.DATA_NETWORK}' AND {PERIOD}"
            )
            if (access == "fixed" and section != "operators") or name == "VNPT"
            else None
        )
        if lat is not None:
            assert _close(figures["latency"]["rtt_median_ms"], lat["m"])
            assert _close(figures["latency"]["jitter_ms"], lat["j"])
            assert _close(figures["latency"]["loss_pct"], 100 * (1 - lat["r"] / lat["s"]))


def test_speeds_match_what_the_fleet_sent(published: Published, doc: dict[str, Any]) -> None:
    fleet = published.fleet
    for (probe, iface), sent in fleet.speeds.items():
        if probe == "dn-unknown-01":
            continue
        commune = "Tân Phú" if probe == "dn-tanphu-01" else "Phường Trấn Biên"
        access = "mobile" if iface == "wwan0" else "fixed"
        got = _commune(doc, commune)["access"][access]["download"]
        downs = [d for _t, d, _u in sent]
        assert got["tests"] == len(downs)
        assert _close(got["median_mbps"], fl.influx_median(downs))
        assert _close(got["p10_mbps"], fl.influx_percentile(downs, 10))
        target = 60.0 if access == "mobile" else 150.0
        assert got["tests_at_target"] == sum(1 for d in downs if d >= target)
    # The probe missing from the inventory is in no commune, but in the province? No: it has
    # no province tag either. Its tests are in no area.
    province = doc["province"][0]
    fixed_sent = [
        d
        for (p, i), s in fleet.speeds.items()
        for _t, d, _u in s
        if i == "eth0" and p != "dn-unknown-01"
    ]
    assert province["access"]["fixed"]["download"]["tests"] == len(fixed_sent)


def test_uptime_ipv6_services_and_data_network(published: Published, doc: dict[str, Any]) -> None:
    hours = fl.DAYS * 24
    tanphu, bienhoa = _commune(doc, "Tân Phú"), _commune(doc, "Phường Trấn Biên")
    assert tanphu["hours_seen"] == published.fleet.health_hours["dn-tanphu-01"] == hours
    assert bienhoa["hours_seen"] == published.fleet.health_hours["dn-bienhoa-01"] == hours - 24
    assert bienhoa["hours_expected"] == hours
    assert _close(bienhoa["uptime_share"], (hours - 24) / hours)
    # Direct: hours with a health report, per probe.
    seen = published.q(
        'SELECT count("n") AS h FROM (SELECT count("uptime_s") AS n FROM "health" WHERE '
        f'{PERIOD} GROUP BY time(1h), "probe") GROUP BY "probe"'
    )
    assert {r["probe"]: r["h"] for r in seen} == {
        "dn-tanphu-01": hours,
        "dn-bienhoa-01": hours - 24,
    }
    for commune, name in ((tanphu, "Tân Phú"), (bienhoa, "Phường Trấn Biên")):
        works = published.one(
            f'SELECT mean("works_01") AS w, count("works_01") AS n FROM "ipv6" '
            f"WHERE \"commune\" = '{name}' AND {PERIOD}"
        )
        assert _close(commune["ipv6"]["works_share"], works["w"])
        assert commune["ipv6"]["runs"] == works["n"]
        net = published.one(
            f'SELECT count("rtt_min_ms") AS a, count("sent") AS n FROM "latency" '
            f"WHERE \"commune\" = '{name}' AND \"target\" = '{fl.DATA_NETWORK}' AND {PERIOD}"
        )
        assert commune["data_network"]["runs"] == net["n"]
        assert commune["data_network"]["runs_answered"] == net["a"]
        for service, figures in commune["services"].items():
            up = published.one(
                f'SELECT mean("up_01") AS u, count("up_01") AS n FROM "service" '
                f"WHERE \"commune\" = '{name}' AND \"service\" = '{service}' AND {PERIOD}"
            )
            assert _close(figures["availability"], up["u"])
            assert figures["checks"] == up["n"]
    assert tanphu["ipv6"]["probes_ready"] == 1
    assert bienhoa["ipv6"]["probes_ready"] == 0
    assert _close(bienhoa["data_network"]["reachable_share"], 0.75)


def test_verdicts_follow_the_plan(doc: dict[str, Any]) -> None:
    tanphu, bienhoa = _commune(doc, "Tân Phú"), _commune(doc, "Phường Trấn Biên")
    longthanh = _commune(doc, "Long Thành")
    v = tanphu["verdicts"]
    median_fixed = tanphu["access"]["fixed"]["download"]["median_mbps"]
    assert v["download_fixed"] == ("met" if median_fixed >= 150 else "not_met")
    assert v["download_mobile"] == "met"  # 45-110 Mbit/s (x0.8 at peak)
    assert tanphu["access"]["mobile"]["download"]["median_mbps"] >= 60
    # A probe at the commune office says nothing about hamlets: not measured, and why.
    assert v["coverage_fixed"] == v["coverage_mobile"] == "not_measured"
    assert tanphu["verdict_basis"]["coverage_fixed"]["rule"] == "no_hamlet_evidence"
    assert v["data_network"] == "met"
    assert v["ipv6"] == "met"
    assert v["services"] == "met"
    b = bienhoa["verdicts"]
    assert b["download_fixed"] == "met"  # 150-190 Mbit/s
    assert b["download_mobile"] == "not_measured"  # no mobile uplink
    assert b["coverage_mobile"] == "not_measured"
    assert b["data_network"] == "not_met"  # 75 % < 95 %
    assert b["ipv6"] == "not_met"
    assert b["services"] == "not_met"  # one check of 56 down: 98.2 % < 99 %
    assert set(longthanh["verdicts"].values()) == {"not_measured"}
    assert longthanh["has_data"] is False
    assert doc["communes_without_data"] == ["Long Thành"]
    province = doc["province"][0]["verdicts"]
    assert province["data_network"] == "not_met"
    assert province["coverage_fixed"] == "not_measured"
    assert province["ipv6"] == "not_met"  # 1 of 2 probes ready < 100 %
    basis = doc["province"][0]["verdict_basis"]
    fixed = doc["province"][0]["access"]["fixed"]["download"]
    assert basis["download_fixed"]["tests"] == fixed["tests"]
    assert basis["download_fixed"]["communes_tested"] == 2  # Long Thành has no data
    assert f"of {fixed['tests']:,} tests from 2 communes" in basis["download_fixed"]["text"]
    assert basis["ipv6"]["text"].startswith("1/2 probes IPv6-ready = 50.0 %")
    assert basis["services"]["worst_commune"] == "Phường Trấn Biên"
    assert "in Phường Trấn Biên" in basis["services"]["text"]


def test_methodology_counts_exclusions(published: Published, doc: dict[str, Any]) -> None:
    ex = doc["methodology"]["exclusions"]
    fleet = published.fleet
    skipped = published.one(
        f'SELECT count("seq") AS n FROM "throughput" WHERE "status" = \'skipped\' AND {PERIOD}'
    )
    # The unknown probe's runs count in the exclusions (they are runs of the fleet).
    assert ex["skipped"] == skipped["n"] == fleet.skipped
    assert ex["skipped_busy"] == fleet.skipped_busy
    assert ex["skipped_cross_traffic"] == fleet.skipped_cross_traffic == 3
    assert ex["failed"] == fleet.failed
    assert ex["rebased"] == ex["unsynced"] == fleet.rebased > 0
    rebased = published.one(
        f'SELECT count("seq") AS n FROM "throughput" WHERE "time_source" = \'rebased\' AND {PERIOD}'
    )
    assert ex["rebased"] == rebased["n"]
    assert ex["estimated"] == 0
    assert ex["deadletters"] == 0  # received today, not in March 2025
    assert ex["quarantined_now"] == 0
    servers = {s["server"]: s for s in doc["methodology"]["servers"]}
    assert set(servers) == {"VNPT Hồ Chí Minh", "Viettel IDC"}
    assert {s["download_streams"] for s in servers.values()} == {6.0}
    assert sum(s["tests"] for s in servers.values()) == sum(len(v) for v in fleet.speeds.values())


def test_charts_data_match_direct_influxql(published: Published, doc: dict[str, Any]) -> None:
    bands = doc["charts"]["download_bands"]["fixed"]
    for band in bands:
        high = f' AND "download_mbps" < {band["high_ratio"] * 150}' if band["high_ratio"] else ""
        row = published.q(
            f'SELECT count("download_mbps") AS n FROM "throughput" WHERE "access" = \'fixed\''
            f' AND "download_mbps" >= {band["low_ratio"] * 150}{high} AND {PERIOD}'
            " AND \"province\" = 'Đồng Nai'"
        )
        assert band["tests"] == (row[0]["n"] if row else 0), band
    at_target = sum(b["tests"] for b in bands if b["low_ratio"] >= 1.0)
    province_fixed = doc["province"][0]["access"]["fixed"]["download"]
    # The unknown probe (50-60 Mbit/s, fixed, no province) is in no band.
    assert at_target == province_fixed["tests_at_target"]
    assert sum(b["tests"] for b in bands) == province_fixed["tests"]
    hours = doc["charts"]["download_by_hour"]["mobile"]
    raw = published.q(
        f'SELECT "download_mbps" FROM "throughput" WHERE "access" = \'mobile\' AND {PERIOD}'
        " AND \"province\" = 'Đồng Nai'"
    )
    per_hour = [0] * 24
    for r in raw:
        per_hour[dt.datetime.fromtimestamp(r["time"], fl.VN).hour] += 1
    assert [h["tests"] for h in hours] == per_hour
    assert {h["hour"] for h in hours if h["tests"]} == set(fl.THROUGHPUT_HOURS)


def test_csv_parses_and_agrees_with_json(published: Published, doc: dict[str, Any]) -> None:
    path, _ = published.report("csv", "--from", "2025-03-03", "--to", "2025-03-09", "--quiet")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    by = {
        (
            r["level"],
            r["commune"] or r["district"] or r["province"] or r["operator"],
            r["access"],
        ): r
        for r in rows
    }
    tanphu = by[("commune", "Tân Phú", "fixed")]
    want = _commune(doc, "Tân Phú")["access"]["fixed"]["download"]
    assert float(tanphu["download_median_mbps"]) == pytest.approx(want["median_mbps"])
    assert int(tanphu["download_tests"]) == want["tests"]
    empty = by[("commune", "Long Thành", "")]
    assert empty["has_data"] == "0"
    assert empty["verdict_download_fixed"] == "not_measured"
    assert empty["basis_download_fixed"] == "no tests in the period"
    assert by[("commune", "Tân Phú", "fixed")]["verdict_coverage_fixed"] == "not_measured"
    province = by[("province", "Đồng Nai", "fixed")]
    assert (
        province["basis_download_fixed"]
        == doc["province"][0]["verdict_basis"]["download_fixed"]["text"]
    )
    areas = {"commune", "district", "province", "operator"}
    # Then the hamlet items' rows (the sample registry has hamlets; no survey here).
    hamlet_levels = {"hamlets_province", "hamlets_district", "hamlets_commune", "hamlet"}
    assert {r["level"] for r in rows} == areas | hamlet_levels
    hamlets = [r for r in rows if r["level"] == "hamlet"]
    assert len(hamlets) == len(doc["hamlet_coverage"]["hamlets"]) == 12
    assert {r["mobile_verdict"] for r in hamlets} == {"not_surveyed"}


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is not installed (make system-deps)")
    return found


def open_in_chromium(html: Path, workdir: Path) -> tuple[Path, list[str]]:
    """Open ``html`` headless; return the screenshot and the console lines it logged."""
    shot = workdir / f"{html.stem}.png"
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={workdir / 'chromium-profile'}",
         "--enable-logging=stderr", "--v=0", "--window-size=1400,2400",
         f"--screenshot={shot}", html.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return shot, console


def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    """The check below must be able to fail: a page with a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>missingFunction();</script></body></html>")
    _shot, console = open_in_chromium(bad, tmp_path)
    assert any("missingFunction" in line for line in console), console


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_html_opens_in_chromium_without_errors(published: Published, lang: str) -> None:
    path, _ = published.report("html", "--from", "2025-03-03", "--to", "2025-03-09", lang=lang)
    text = path.read_text(encoding="utf-8")
    # Standalone: no script, no external asset.
    for needle in ("<script", "src=", "href=", "@import"):
        assert needle not in text, needle
    assert re.search(r"url\((?!#)", text) is None  # url(#hatch-…): the SVG's own pattern
    assert text.count("<svg") >= 4 + 2  # bands fixed + mobile, operators, hours; 2 maps
    # The fleet's communes are all in the sample area file: on the map, none missing.
    # Two commune maps, and the hamlet coverage map.
    assert text.count('class="map"') == 3
    assert 'id="coverage-map"' in text
    assert 'id="map-missing"' not in text
    assert 'data-verdict="not_met"' in text.split('id="map"')[1].split("</section>")[0]
    if lang == "vi":
        for words in ("Báo cáo kết quả đo kiểm hạ tầng số", "Tốc độ tải xuống băng rộng cố định",
                      "Chưa đo được", "Không đạt", "Phường Trấn Biên", "Giờ cao điểm"):  # fmt: skip
            assert words in text, words
    else:
        assert "Not measured" in text
        assert "Download speeds against the target" in text
    assert "Long Thành" in text.split('id="communes-without-data"')[1][:200]
    shot, console = open_in_chromium(path, path.parent)
    assert console == []
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG")
    assert len(png) > 20_000


def test_an_area_file_problem_is_said_at_once_and_a_missing_polygon_named(
    published: Published, tmp_path: Path
) -> None:
    """A broken area file: exit 2 before any query, the feature and key named. A commune of
    the inventory without a polygon: a warning, the report written, the map names it."""
    doc = json.loads(AREAS_FILE.read_text(encoding="utf-8"))
    doc["features"] = [
        f
        for f in doc["features"]
        if (f["properties"]["level"], f["properties"]["name"]) != ("commune", "Long Thành")
    ]
    partial = tmp_path / "partial.geojson"
    partial.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    settings = tmp_path / "report.toml"
    settings.write_text(f'[report]\nareas_file = "{partial.name}"\n', encoding="utf-8")
    out = tmp_path / "r.html"
    argv = [sys.executable, "-m", "probefleet.collector.cli", "report",
            "--config", str(published.config), "--settings", str(settings),
            "--from", "2025-03-03", "--to", "2025-03-09", "--format", "html",
            "--out", str(out), "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"{partial}: no polygon for commune 'Long Thành' (district 'Long Thành')" in proc.stderr
    missing = out.read_text(encoding="utf-8").split('id="map-missing"')[1].split("</div>")[0]
    assert "Long Thành" in missing

    doc["features"][0]["properties"]["level"] = "ward"
    partial.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    out.unlink()
    loud = [a for a in argv if a != "--quiet"]  # progress on: no query may have run
    proc = subprocess.run(loud, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "features[0] (ward X731 'Tân Phú'): properties.level = \"ward\"" in proc.stderr
    assert "[1/" not in proc.stderr  # said before any query
    assert not out.exists()


def test_an_empty_period_is_said_so(published: Published) -> None:
    path, stderr = published.report("json", "--from", "2024-01-01", "--to", "2024-01-07")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["empty"] is True
    assert doc["notes"]
    assert "no measurements in this period" in stderr
    assert sorted(doc["communes_without_data"]) == ["Long Thành", "Phường Trấn Biên", "Tân Phú"]
    assert all(set(c["verdicts"].values()) == {"not_measured"} for c in doc["communes"])
    html, _ = published.report("html", "--from", "2024-01-01", "--to", "2024-01-07", lang="vi")
    assert 'id="empty-period"' in html.read_text(encoding="utf-8")
    _shot, console = open_in_chromium(html, html.parent)
    assert console == []
    csv_path, _ = published.report("csv", "--from", "2024-01-01", "--to", "2024-01-07")
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    assert rows
    assert {r["has_data"] for r in rows if not r["level"].startswith("hamlet")} == {"0"}


def test_dead_letters_of_the_period_are_counted(published: Published) -> None:
    today = dt.datetime.now(dt.UTC).date()
    path, _ = published.report(
        "json",
        "--from",
        str(today - dt.timedelta(days=1)),
        "--to",
        str(today + dt.timedelta(days=1)),
    )
    ex = json.loads(path.read_text(encoding="utf-8"))["methodology"]["exclusions"]
    assert ex["deadletters"] == 2
    reasons = " ".join(d["reason"] for d in ex["deadletter_reasons"])
    assert "not valid JSON" in reasons
    assert "claims probe" in reasons


def test_bad_periods_and_dead_influxdb_exit_with_a_clear_message(
    published: Published, tmp_path: Path
) -> None:
    def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "probefleet.collector.cli", "report", "--config", str(config),
             "--out", str(tmp_path / "r.html"), *args],
            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip

    backwards = run(published.config, "--from", "2025-03-09", "--to", "2025-03-01")
    assert backwards.returncode == 1
    assert "the period is empty" in backwards.stderr
    garbled = run(published.config, "--from", "March", "--to", "2025-03-01")
    assert garbled.returncode == 1
    assert "not a date" in garbled.stderr
    text = published.config.read_text().replace(published.target.server.url, "http://127.0.0.1:9")
    dead = tmp_path / "dead.toml"
    dead.write_text(text)
    down = run(dead, "--from", "2025-03-03", "--to", "2025-03-09")
    assert down.returncode == 1
    assert "cannot reach InfluxDB at http://127.0.0.1:9/query" in down.stderr
    assert "Traceback" not in down.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("name", sorted(queries.grafana_queries()))
def test_every_grafana_form_runs_on_what_the_collector_wrote(
    published: Published, name: str
) -> None:
    """Filled the way Grafana fills it ($timeFilter, regex variables with allValue .*)."""
    q = queries.CATALOGUE[name]
    text = q.grafana(("commune",))
    filled = {
        "$timeFilter": PERIOD,
        "$__interval": "1h",
        "$lowMbps": "100",
        "$highMbps": "200",
        "$timeSource": "rebased",
    }
    for key, value in filled.items():
        text = text.replace(key, value)
    for tag in ("district", "commune", "access", "operator", "probe", "service", "target"):
        text = text.replace(f"${tag}", ".*")
    assert "$" not in text.replace("$/", ""), text
    rows = published.q(text)
    assert rows, f"{name}: no rows on a week of data\n{text}"
    for row in rows:
        assert set(q.columns) <= set(row), (name, row)
