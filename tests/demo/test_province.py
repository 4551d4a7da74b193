"""Fast checks of the demo's generated files (through the real loaders), view and preflight."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from probefleet.agent.config import load_config as load_agent_config
from probefleet.collector.config import load_config as load_collector_config
from probefleet.collector.inventory import load_inventory, load_targets

from demo import preflight
from demo.links import LoopbackLinks, make_links
from demo.province import (
    COMMUNES,
    Services,
    agent_toml,
    alerts_toml,
    collector_toml,
    inventory_toml,
)
from demo.stack import ROOT, collector_commands
from demo.view import Row, Snapshot, Throughput, plain_line, render

SERVICES = Services("10.99.0.1", 1883, "10.99.0.1", "2001:db8:99::1", 8080)


def test_the_province_has_the_lines_the_issue_asks_for() -> None:
    by_kind = {(c.access, c.nominal_mbit, c.ipv6) for c in COMMUNES}
    assert ("mobile", 40, True) in by_kind
    assert ("fixed", 150, True) in by_kind
    assert ("fixed", 300, True) in by_kind
    assert any(not c.ipv6 for c in COMMUNES)
    assert sum(c.offline_after_s is not None for c in COMMUNES) == 1
    # Verdicts the e2e test expects: both answers appear, none is borderline (tbf overhead).
    assert {c.expected_met for c in COMMUNES} == {True, False}
    for c in COMMUNES:
        assert abs(c.nominal_mbit - c.target_mbit) >= 0.2 * c.target_mbit or (
            c.shaped_mbit >= 1.08 * c.target_mbit
        ), c


@pytest.mark.parametrize("commune", COMMUNES, ids=lambda c: c.probe)
def test_agent_configs_load_with_the_agents_own_loader(commune: object, tmp_path: Path) -> None:
    from demo.province import Commune

    assert isinstance(commune, Commune)
    path = tmp_path / "agent.toml"
    path.write_text(
        agent_toml(commune, SERVICES, state_dir=tmp_path / "state", interface=commune.interface),
        encoding="utf-8",
    )
    cfg = load_agent_config(path, env={})
    assert cfg.probe.id == commune.probe
    assert [(i.name, i.access) for i in cfg.interfaces] == [(commune.interface, commune.access)]
    m = cfg.measurements
    assert m.throughput.mode == "http"
    assert m.throughput.download_url.startswith("http://10.99.0.1:8080/")
    assert not m.dns.enabled
    assert not m.ookla.enabled
    assert m.latency.ip_versions == ([4, 6] if commune.ipv6 else [4])
    # Nothing but the demo's own addresses is ever contacted.
    hosts = {t.host for t in m.latency.targets}
    assert hosts <= {"10.99.0.1", "2001:db8:99::1"}


def test_inventory_and_collector_config_load(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        inventory_toml(COMMUNES, {c.probe: c.interface for c in COMMUNES}), encoding="utf-8"
    )
    probes = load_inventory(inventory).probes
    assert set(probes) == {c.probe for c in COMMUNES}
    for c in COMMUNES:
        info = probes[c.probe]
        assert (info.commune, info.province) == (c.commune, "Đồng Nai")
        iface = info.interfaces[c.interface]
        assert (iface.operator, iface.access) == (c.operator, c.access)
    targets = load_targets(ROOT / "config" / "targets.sample.toml")
    for c in COMMUNES:
        assert getattr(targets, c.access).download_mbps == c.target_mbit
    config = tmp_path / "collector.toml"
    config.write_text(
        collector_toml(
            mqtt_host="10.99.0.1",
            mqtt_port=1883,
            influx_url="http://127.0.0.1:8086",
            bucket="probefleet",
            inventory=inventory,
            targets=ROOT / "config" / "targets.sample.toml",
            state_dir=tmp_path / "state",
        ),
        encoding="utf-8",
    )
    cfg = load_collector_config(config, env={})
    assert cfg.influxdb.bucket == "probefleet"
    assert cfg.files.inventory == str(inventory)


def test_alert_rules_load_where_the_collector_alerts() -> None:
    if "alerts" not in collector_commands():
        pytest.skip("this checkout's probe-collector has no alerts yet")
    from probefleet.collector.alerts.rules import load_alerts  # type: ignore[import-not-found,unused-ignore]

    path = Path(__file__).parent / "_alerts.toml"
    try:
        path.write_text(alerts_toml(offline_for_s=20.0), encoding="utf-8")
        cfg = load_alerts(path, env={})
    finally:
        path.unlink(missing_ok=True)
    assert {"download_below_target", "probe_offline", "radio_fallback"} <= set(cfg.rules)
    assert cfg.rules["radio_fallback"].for_s == 30.0  # the simulated modem's 3G minute


def test_view_shows_verdicts_alerts_and_missing_seams() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    slow, fast, waiting = COMMUNES[0], COMMUNES[1], COMMUNES[2]
    rows = [
        Row(slow, 12, now, Throughput(now, 38.2, 38.0, 60.0, met=False)),
        Row(fast, 10, now, Throughput(now, 157.9, 157.5, 150.0, met=True)),
        Row(waiting),
    ]
    text = render(
        Snapshot(rows, None, "last result in InfluxDB"), color=False, header=["h"], footer=[]
    )
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "NOT MET" in lines[slow.commune.split()[0]]
    assert lines[fast.commune.split()[0]].rstrip().endswith("met")
    assert "waiting for the first test" in text
    assert "no `probe-collector alerts` yet" in text
    alerts = [{"text": "probe_offline dongnai-xuanhung-01", "severity": "critical"}]
    text = render(Snapshot(rows, alerts, "fleet"), color=False, header=["h"], footer=[])
    assert "alerts: 1 active" in text
    assert "probe_offline dongnai-xuanhung-01" in text
    assert plain_line(Snapshot(rows, [], ""), 5).endswith(f"{waiting.probe}:0:-:-")


def test_loopback_links_put_every_probe_on_lo() -> None:
    links = LoopbackLinks().start(COMMUNES)
    assert {link.interface for link in links.links.values()} == {"lo"}
    assert all(link.netns is None and link.shaped_mbit is None for link in links.links.values())
    assert links.links[COMMUNES[0].probe].wrap(["x"]) == ["x"]


def test_preflight_names_the_packages_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("demo.preflight.shutil.which", lambda *a, **k: None)
    assert preflight.main(["--check"]) == 2
    out = capsys.readouterr().out
    assert "apt-get install -y --no-install-recommends" in out
    for package in ("influxdb", "mosquitto", "nginx-light"):
        assert package in out


def test_without_root_the_demo_falls_back_to_loopback_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("demo.links.os.geteuid", lambda: 1000)
    links, why = make_links(force_loopback=False)
    assert isinstance(links, LoopbackLinks)
    assert why == "network namespaces need root"


def test_processes_left_finds_strays_but_not_the_demo_itself(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    stray = subprocess.Popen(["sh", "-c", f"sleep 60; : {workdir}"])
    try:
        code = (
            "from pathlib import Path; from demo.stack import Stack; from demo.links import "
            f"LoopbackLinks; print(Stack(Path({str(workdir)!r}), LoopbackLinks(), (), "
            "synced_hook=False).processes_left())"
        )
        # Run by a parent whose command line names the work dir, as `timeout 60 python -m
        # demo --workdir DIR` does: the demo's own ancestors are not strays.
        done = subprocess.run(
            ["sh", "-c", f'"$0" -c "$1"; : {workdir}', sys.executable, code],
            cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        assert f"pid {stray.pid}:" in done.stdout
        assert done.stdout.count("pid ") == 1, done.stdout
    finally:
        stray.kill()
        stray.wait(timeout=10)
