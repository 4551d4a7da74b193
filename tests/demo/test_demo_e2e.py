"""End to end: `python -m demo` as a newcomer runs it, stopped with Ctrl-C (SIGINT).

Checks straight in its InfluxDB (not through the demo's view) that every simulated commune's
results landed with the plan's verdict its line deserves, that the offline commune is taken
down, that the compliance report is written, and that afterwards nothing the demo started
is left: no process, namespace, bridge or listening port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from demo.links import BRIDGE, NS_PREFIX
from demo.province import COMMUNES
from demo.stack import collector_commands
from tests.harness import eventually
from tests.harness.netns import netns_unavailable

ROOT = Path(__file__).resolve().parents[2]
DB = "probefleet"

pytestmark = pytest.mark.integration


def _listening_ports() -> set[int]:
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                if fields[3] == "0A":  # TCP_LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.startswith(NS_PREFIX)]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class DemoExited(AssertionError):
    """The demo ended while we waited for it: no point waiting on."""


class Demo:
    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.log_path = workdir.parent / "demo.out"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "demo", "--plain", "--workdir", str(workdir), *args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def endpoints(self) -> dict[str, Any]:
        path = self.workdir / "demo.json"

        def ready() -> dict[str, Any]:
            self.check_alive()
            doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
            return doc

        found: dict[str, Any] = eventually(
            ready, timeout_s=90, interval_s=0.5, message="demo.json", abort_on=(DemoExited,)
        )
        return found

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise DemoExited(f"demo exited {self.proc.returncode}:\n{self.output()}")

    def ctrl_c(self, timeout_s: float = 120) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


class Influx:
    """Reads influxd's own HTTP API, as a newcomer's curl would (no proxy)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._open = urllib.request.build_opener(urllib.request.ProxyHandler({})).open

    def query_points(self, influxql: str, db: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"q": influxql, "db": db, "epoch": "ns"})
        with self._open(f"{self.url}/query?{params}", timeout=10) as response:
            answer = json.loads(response.read())
        points: list[dict[str, Any]] = []
        for result in answer["results"]:
            assert "error" not in result, (influxql, result)
            for serie in result.get("series", []):
                for row in serie["values"]:
                    point = dict(serie.get("tags", {}))
                    point.update(zip(serie["columns"], row, strict=True))
                    points.append(point)
        return points


def _processes_under(workdir: Path) -> list[str]:
    """Command lines of running processes that name the demo's work dir (every service
    and agent it starts is given a config file there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(workdir) in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _latest_throughput(influx: Influx) -> dict[str, dict[str, Any]]:
    query = (
        'SELECT "download_mbps", "upload_mbps", "target_download_mbps", '
        '"meets_download_target", "access", "commune" FROM "throughput" '
        'WHERE "status" = \'ok\' GROUP BY "probe"'
    )
    latest: dict[str, dict[str, Any]] = {}
    for point in influx.query_points(query, DB):
        latest.setdefault(point["probe"], point)
    return latest


def _counts(influx: Influx, kind: str) -> dict[str, int]:
    points = influx.query_points(f'SELECT count("seq") FROM "{kind}" GROUP BY "probe"', DB)  # noqa: S608
    return {p["probe"]: int(p["count"]) for p in points}


def _radio_reads(influx: Influx, probe: str) -> list[dict[str, Any]]:
    # The demo's own probe id, not input.
    where = f"WHERE \"probe\" = '{probe}' AND \"status\" = 'ok'"
    query = f'SELECT "radio_rsrp_dbm", "registered", "radio_technology" FROM "radio" {where}'  # noqa: S608
    return influx.query_points(query, DB)


def _check_radio(influx: Influx) -> None:
    """The 4G commune's results carry the simulated modem's radio context; its `radio`
    reads show the signal moving; no other commune has any radio (no modem, no bus)."""
    (modem,) = [c for c in COMMUNES if c.modem]
    query = (
        'SELECT "download_mbps", "radio_rsrp_dbm", "radio_technology", "radio_operator" '
        'FROM "throughput" WHERE "status" = \'ok\' GROUP BY "probe"'
    )
    by_probe: dict[str, list[dict[str, Any]]] = {}
    for point in influx.query_points(query, DB):
        by_probe.setdefault(point["probe"], []).append(point)
    mobile = by_probe[modem.probe]
    assert all(p["radio_technology"] in {"lte", "umts"} for p in mobile), mobile
    assert all(p["radio_operator"] == "45204" for p in mobile), mobile
    assert any(p["radio_technology"] == "lte" and p["radio_rsrp_dbm"] for p in mobile), mobile
    for probe, points in by_probe.items():
        if probe != modem.probe:
            assert not any(p.get("radio_technology") for p in points), (probe, points)

    def moving() -> list[dict[str, Any]]:
        reads = _radio_reads(influx, modem.probe)
        return reads if len({r["radio_rsrp_dbm"] for r in reads}) >= 2 else []

    reads = eventually(moving, timeout_s=90, interval_s=3, message="the signal moving")
    assert all(r["registered"] is True for r in reads if r["radio_technology"]), reads
    assert all(-125 <= r["radio_rsrp_dbm"] <= -80 for r in reads if r["radio_rsrp_dbm"]), reads
    assert set(_counts(influx, "radio")) == {modem.probe}


def _collector_cli(config: Path, *args: str) -> Any:
    argv = [sys.executable, "-m", "probefleet.collector.cli", *args, "--config", str(config)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def _check_fleet_and_alerts(config: Path) -> None:
    """Presence and alerts as the collector sees them, where this checkout has them."""
    commands = collector_commands()
    offline = {c.probe for c in COMMUNES if c.offline_after_s is not None}
    if "fleet" in commands:

        def states() -> dict[str, str]:
            rows = _collector_cli(config, "fleet", "--format", "json")
            found = {row["probe"]: row["state"] for row in rows}
            return found if all(found.get(p) == "offline" for p in offline) else {}

        found = eventually(states, timeout_s=60, interval_s=2, message="offline in the fleet")
        assert {p: s for p, s in found.items() if p not in offline} == {
            c.probe: "online" for c in COMMUNES if c.probe not in offline
        }
    if "alerts" in commands:
        below = {c.probe for c in COMMUNES if not c.expected_met}
        want = {("download_below_target", p) for p in below}
        want |= {("probe_offline", p) for p in offline}

        def firing() -> set[tuple[str, str]]:
            docs = _collector_cli(config, "alerts", "--json")
            active = {(d["rule"], d["labels"].get("probe", "")) for d in docs}
            return active if active >= want else set()

        active = eventually(firing, timeout_s=60, interval_s=2, message="alerts firing")
        fine = {c.probe for c in COMMUNES if c.expected_met}
        assert not {a for a in active if a[0] == "download_below_target" and a[1] in fine}


@pytest.mark.netns
@pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))
@pytest.mark.timeout(300)
def test_demo_runs_the_province_and_leaves_nothing_behind(tmp_path: Path) -> None:
    demo = Demo(tmp_path / "run", "--offline-after", "20")
    endpoints: dict[str, Any] = {}
    try:
        endpoints = demo.endpoints()
        assert endpoints["links"] == "netns"
        influx = Influx(endpoints["influxdb_url"])
        probes = {c.probe for c in COMMUNES}

        def every_commune_measured() -> dict[str, dict[str, Any]]:
            demo.check_alive()
            latest = _latest_throughput(influx)
            return latest if set(latest) >= probes else {}

        latest = eventually(
            every_commune_measured,
            timeout_s=120,
            interval_s=2,
            message="a throughput result from every commune",
            abort_on=(DemoExited,),
        )
        for commune in COMMUNES:
            point = latest[commune.probe]
            where = f"{commune.commune} ({commune.nominal_mbit:g} Mbit/s {commune.access})"
            assert point["access"] == commune.access, where
            assert point["commune"] == commune.commune, where
            assert point["target_download_mbps"] == commune.target_mbit, where
            assert point["meets_download_target"] == int(commune.expected_met), (where, point)
            # Shaped links measure what they were shaped to (tbf counts headers: a bit less).
            low, high = 0.8 * commune.nominal_mbit, 1.05 * commune.shaped_mbit
            for direction in ("download_mbps", "upload_mbps"):
                assert low <= point[direction] <= high, (where, direction, point)
        for kind in ("latency", "service", "health", "ipv6"):
            counts = _counts(influx, kind)
            assert set(counts) >= probes, (kind, counts)
        ipv6 = influx.query_points('SELECT last("works_01") FROM "ipv6" GROUP BY "probe"', DB)
        works = {p["probe"]: p["last"] for p in ipv6}
        for commune in COMMUNES:
            assert works[commune.probe] == int(commune.ipv6), (commune.probe, works)
        _check_radio(influx)

        eventually(
            lambda: "lost power" in demo.output(),
            timeout_s=60,
            message="the offline commune's agent was not killed",
        )
        _check_fleet_and_alerts(Path(endpoints["collector_config"]))
        assert demo.ctrl_c() == 0, demo.output()
    finally:
        demo.kill()
        leftovers = _namespaces()
        for name in leftovers:
            subprocess.run(["ip", "netns", "del", name], check=False)

    out = demo.output()
    assert "compliance report: " in out, out
    report = Path(out.split("compliance report: ", 1)[1].split()[0])
    html = report.read_text(encoding="utf-8")
    for commune in COMMUNES:
        assert commune.commune in html, commune.commune
    assert 'class="map"' in html  # the sample boundary file has every demo commune
    # Nothing left: processes (whole groups), namespaces, the bridge, listening ports.
    assert leftovers == [], leftovers
    bridge = subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True, check=False)
    assert bridge.returncode != 0, "the bridge is still there"
    alive = {n: g for n, g in endpoints["process_groups"].items() if _group_alive(int(g))}
    assert alive == {}, alive
    assert _processes_under(tmp_path / "run") == []
    ours = {int(port) for _, port in endpoints["listening"]}
    time.sleep(0.1)
    assert ours & _listening_ports() == set(), ours & _listening_ports()
    assert "nothing is left running" in out


@pytest.mark.timeout(180)
def test_loopback_fallback_says_so_measures_and_cleans_up(tmp_path: Path) -> None:
    """Where namespaces cannot be had (forced here with --loopback): every probe on lo."""
    workdir = tmp_path / "run"
    demo = Demo(workdir, "--loopback", "--duration", "30", "--offline-after", "600")
    try:
        endpoints = demo.endpoints()
        assert endpoints["links"] == "loopback"
        influx = Influx(endpoints["influxdb_url"])
        probes = {c.probe for c in COMMUNES}
        eventually(
            lambda: set(_counts(influx, "health")) >= probes,
            timeout_s=30,
            interval_s=1,
            message="a health result from every commune over loopback",
        )
        assert demo.proc.wait(timeout=120) == 0, demo.output()
    finally:
        demo.kill()
    out = demo.output()
    assert "falling back to loopback (--loopback given)" in out
    assert "unshaped" in out
    assert "nothing is left running" in out
    assert _processes_under(workdir) == []
    assert _namespaces() == []
    ours = {int(port) for _, port in endpoints["listening"]}
    assert ours & _listening_ports() == set()
