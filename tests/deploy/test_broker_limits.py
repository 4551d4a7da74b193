"""deploy/central/broker_limits.py: the broker's limits from the fleet size and the outage,
the shipped mosquitto.conf as its output for 10,000 probes, and setup.sh --probes writing a
site's values that the real broker then enforces."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from probefleet import kinds
from probefleet.agent.config import load_config
from probefleet.agent.scheduler import job_specs

from tests.deploy.central import CENTRAL, CONF, ROOT, conf_settings
from tests.deploy.conftest import start_site
from tests.deploy.test_broker_attacks import _flood_while_away

SAMPLE = ROOT / "config" / "agent.sample.toml"
LIMITS_FILE = CENTRAL / "mosquitto-limits.conf"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("broker_limits", CENTRAL / "broker_limits.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["broker_limits"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bl = _module()


def _values(text: str) -> dict[str, int]:
    settings = conf_settings(text)
    general = {o: v for listener, o, v in settings if listener is None}
    probes = {o: v for listener, o, v in settings if listener == "8883"}
    return {
        "max_queued_messages": int(general["max_queued_messages"]),
        "max_queued_bytes": int(general["max_queued_bytes"]),
        "max_connections": int(probes["max_connections"]),
    }


def test_the_rate_is_the_agents_own_schedule() -> None:
    """broker_limits.py reads the sample with tomllib (a site's host has no probefleet);
    the agent's scheduler must run exactly that many jobs an hour."""
    cfg = load_config(SAMPLE, env={"PROBEFLEET_MQTT_PASSWORD": "x"})
    scheduled = sum(3600 / spec.interval_s for spec in job_specs(cfg) if not spec.cron)
    assert bl.results_per_probe_hour(SAMPLE) == pytest.approx(scheduled)
    assert scheduled == pytest.approx(90)


def test_a_probe_with_a_mobile_link_adds_its_radio_reads(tmp_path: Path) -> None:
    """The radio kind runs on a declared mobile link only, in the scheduler and here."""
    mobile = tmp_path / "agent.toml"
    text = SAMPLE.read_text()
    mobile.write_text(text + '\n[[interfaces]]\nname = "wwan0"\naccess = "mobile"\n')
    cfg = load_config(mobile, env={"PROBEFLEET_MQTT_PASSWORD": "x"})
    scheduled = sum(3600 / spec.interval_s for spec in job_specs(cfg) if not spec.cron)
    assert bl.results_per_probe_hour(mobile) == pytest.approx(scheduled)
    assert scheduled == pytest.approx(90 + 3600 / 300)  # radio every 5 minutes
    mobile_only = {
        name for name in kinds.names()
        if getattr(kinds.spec(name).measurement(), "mobile_only", False)
    }  # fmt: skip
    assert mobile_only == bl.MOBILE_ONLY


def test_the_shipped_config_is_the_formula_for_10000_probes() -> None:
    limits = bl.compute(bl.SHIPPED_PROBES, bl.SHIPPED_OUTAGE_H, bl.results_per_probe_hour(SAMPLE))
    assert bl.rewrite_conf(CONF.read_text(), limits) == CONF.read_text()
    assert bl.rewrite_limits_file(LIMITS_FILE.read_text(), limits) == LIMITS_FILE.read_text()
    assert _values(CONF.read_text()) == {
        "max_queued_messages": 2_000_000,
        "max_queued_bytes": 3_000_000_000,
        "max_connections": 12_500,
    }
    assert limits.limit_nofile == 16_384
    assert limits.queue_ram_b == 3_800_000_000  # README.md: ~3.8 GB of RAM at the bound


def test_the_formula() -> None:
    assert [bl.up2(x) for x in (1_980_000, 653_400, 19_800, 99.0, 7.2, 120_000)] == [
        2_000_000, 660_000, 20_000, 99, 8, 120_000,
    ]  # fmt: skip
    day = bl.compute(3300, 24, 90)
    assert (day.max_queued_messages, day.max_queued_bytes) == (7_900_000, 11_850_000_000)
    assert (day.max_connections, day.limit_nofile, day.capped) == (4125, 8192, False)
    assert day.covered_h >= 24
    # A week of 10,000 probes needs ~323 GB: with 16 GB for the queue it holds ~8.5 h.
    week = bl.compute(10_000, 7 * 24, 90, queue_ram_gb=16)
    assert week.capped
    assert week.max_queued_messages == 8_400_000
    assert week.queue_ram_b <= 16e9
    assert 8 < week.covered_h < 9
    assert "spools" in bl.summary(week)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--probes", "0"], "--probes = 0"),
        (["--outage-hours", "0"], "--outage-hours = 0.0"),
        (["--queue-ram-gb", "-1"], "--queue-ram-gb = -1.0"),
        (["--agent-config", "/nonexistent.toml"], "--agent-config = '/nonexistent.toml'"),
    ],
)
def test_bad_inputs_are_named(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bl.main(args) == 2
    assert named in capsys.readouterr().err


def test_readme_has_the_formulas_table() -> None:
    """The fleet-size table in README.md, Capacity, is what the formula prints."""
    readme = (CENTRAL / "README.md").read_text()
    assert bl.table(90.0) in readme
    assert "| 10,000 | 900,000 | a week | 170,000,000 | 323 GB | **no**" in readme


def _setup(central: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(central / "setup.sh"), *args],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    shutil.copytree(CENTRAL, tmp_path / "repo" / "deploy" / "central")
    shutil.copytree(ROOT / "config", tmp_path / "repo" / "config")
    return tmp_path / "repo" / "deploy" / "central"


@pytest.mark.slow  # runs setup.sh (certificates, logins): seconds
def test_setup_writes_the_limits_for_the_fleet(site_copy: Path) -> None:
    conf = site_copy / "mosquitto" / "mosquitto.conf"
    done = _setup(
        site_copy, "--name", "mqtt.example.vn", "--probes", "3300", "--outage-hours", "24"
    )
    assert done.returncode == 0, done.stderr
    assert _values(conf.read_text()) == {
        "max_queued_messages": 7_900_000,
        "max_queued_bytes": 11_850_000_000,
        "max_connections": 4125,
    }
    assert "# limits: probes=3300 outage_hours=24 " in conf.read_text()
    assert "LimitNOFILE=8192\n" in (site_copy / "mosquitto-limits.conf").read_text()
    # Only those lines changed.
    changed = set(conf.read_text().splitlines()) ^ set(CONF.read_text().splitlines())
    assert len(changed) == 8, changed
    # Run again without --probes: the site's limits are kept.
    again = _setup(site_copy)
    assert again.returncode == 0, again.stderr
    assert _values(conf.read_text())["max_queued_messages"] == 7_900_000
    # A week with 8 GB for the queue: capped, and setup says what holds the rest.
    capped = _setup(site_copy, "--probes", "3300", "--outage-hours", "168", "--queue-ram-gb", "8")
    assert capped.returncode == 0, capped.stderr
    assert "the probes' spools" in capped.stdout
    assert _values(conf.read_text())["max_queued_messages"] == 4_200_000


@pytest.mark.slow  # runs setup.sh (certificates, logins): seconds
def test_setup_refuses_bad_limits_before_making_anything(site_copy: Path) -> None:
    before = (site_copy / "mosquitto" / "mosquitto.conf").read_text()
    for args in (["--probes", "0"], ["--outage-hours", "3"], ["--probes", "x"]):
        done = _setup(site_copy, "--name", "mqtt.example.vn", *args)
        assert done.returncode == 2, (args, done.stdout)
        assert not (site_copy / "certs").exists(), args
    assert (site_copy / "mosquitto" / "mosquitto.conf").read_text() == before
    big = _setup(site_copy, "--name", "mqtt.example.vn", "--probes", "20000")
    assert big.returncode == 0, big.stderr
    assert "raise compose.yaml's mosquitto ulimits nofile to 32768" in big.stderr


@pytest.mark.integration
def test_the_broker_enforces_what_setup_wrote(tmp_path: Path, site_copy: Path, certs: Path) -> None:
    """A one-probe site for a 1-hour outage: 90 x 1.1 = 99 messages. The real broker on the
    config setup.sh wrote holds exactly that many for the collector while it is away."""
    done = _setup(site_copy, "--name", "mqtt.example.vn", "--probes", "1", "--outage-hours", "1")
    assert done.returncode == 0, done.stderr
    written = (site_copy / "mosquitto" / "mosquitto.conf").read_text().splitlines()
    shipped = CONF.read_text().splitlines()
    replace = [(a, b) for a, b in zip(shipped, written, strict=True) if a != b]
    assert len(replace) == 4, replace  # the marker, two queue bounds, max_connections
    site = start_site(tmp_path, certs, replace=replace)
    try:
        assert _flood_while_away(site, 150, 1500) == 99
    finally:
        for client in site.made:
            client.close()
        site.broker.stop()
