"""deploy/central/enrol.py without a broker: its password hashes against mosquitto_passwd's,
the inventory row and agent config against the loaders the collector and agent use, the
names it refuses, and revoke --forget leaving the other probes' rows intact."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from probefleet.agent.config import load_config
from probefleet.collector.inventory import load_inventory

from tests.deploy.central import ENROL, ROOT, copy_acls


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("enrol", ENROL)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["enrol"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


enrol = _module()


@pytest.fixture
def central(tmp_path: Path) -> Path:
    copy_acls(tmp_path / "mosquitto")
    (tmp_path / "etc").mkdir()
    shutil.copyfile(ROOT / "config/inventory.sample.toml", tmp_path / "etc" / "inventory.toml")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return tmp_path


def run(central: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ENROL), "--central", str(central), "--reload", "", *args],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


ENROL_ARGS = [
    "--commune", 'Xuân "Lộc"', "--province", "Đồng Nai", "--district", "Xuân Lộc",
    "--lat", "10.93", "--lon", "107.24", "--interface", "eth0:fixed:VNPT",
    "--interface", "wwan0:mobile:MobiFone:20000", "--broker", "mqtt.example.vn",
]  # fmt: skip


@pytest.mark.integration  # runs Debian's mosquitto_passwd
def test_hashes_are_mosquitto_passwds(tmp_path: Path) -> None:
    binary = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    passwd = tmp_path / "passwd"
    subprocess.run([binary, "-c", "-b", str(passwd), "alice", "s3cret"], check=True)
    theirs = enrol.read_users(passwd)["alice"]
    assert enrol.check_password(theirs, "s3cret")
    assert not enrol.check_password(theirs, "s3cret!")
    ours = enrol.hash_password("s3cret")
    assert ours.startswith("$7$")
    assert enrol.check_password(ours, "s3cret")
    assert ours != enrol.hash_password("s3cret")  # salted


def test_enrol_writes_login_inventory_and_bundle(central: Path) -> None:
    done = run(central, "enrol", "dongnai-xuanloc-01", *ENROL_ARGS)
    assert done.returncode == 0, done.stderr
    users = enrol.read_users(central / "mosquitto" / "probes.passwd")
    bundle = central / "probes" / "dongnai-xuanloc-01"
    password = (bundle / "dongnai-xuanloc-01.pw").read_text().strip()
    assert len(password) >= 32
    assert enrol.check_password(users["dongnai-xuanloc-01"], password)
    assert (central / "mosquitto" / "probes.passwd").stat().st_mode & 0o077 == 0

    inventory = load_inventory(central / "etc" / "inventory.toml")
    probe = inventory.probes["dongnai-xuanloc-01"]
    assert (probe.commune, probe.district, probe.lat, probe.lon) == (
        'Xuân "Lộc"', "Xuân Lộc", 10.93, 107.24)  # fmt: skip
    assert {n: (i.operator, i.access) for n, i in probe.interfaces.items()} == {
        "eth0": ("VNPT", "fixed"), "wwan0": ("MobiFone", "mobile")}  # fmt: skip
    assert "dongnai-tanphu-01" in inventory.probes  # the sample's rows are kept

    cfg = load_config(bundle / "agent.toml", env={"PROBEFLEET_MQTT_PASSWORD": "x"})
    assert cfg.probe.id == "dongnai-xuanloc-01"
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("mqtt.example.vn", 8883, True)
    assert cfg.mqtt.username == "dongnai-xuanloc-01"
    assert [(i.name, i.access, i.monthly_budget_mb) for i in cfg.interfaces] == [
        ("eth0", "fixed", 0), ("wwan0", "mobile", 20000)]  # fmt: skip
    install = (bundle / "install.txt").read_text()
    assert "--interface wwan0:mobile:20000" in install
    assert "--ca ca.pem" in install

    listing = run(central, "list").stdout
    assert "dongnai-xuanloc-01" in listing
    assert "NOT in inventory" not in listing.split("\n")[1]


def test_enrol_refuses_service_accounts_duplicates_and_bad_input(central: Path) -> None:
    for name in ("collector", "healthcheck", "fleet-admin"):
        done = run(central, "enrol", name, *ENROL_ARGS)
        assert done.returncode == 2
        assert "service account" in done.stderr
    assert run(central, "enrol", "probe-x", *ENROL_ARGS).returncode == 0
    again = run(central, "enrol", "probe-x", *ENROL_ARGS)
    assert again.returncode == 2
    assert "already" in again.stderr
    in_sample = run(central, "enrol", "dongnai-tanphu-01", *ENROL_ARGS)
    assert in_sample.returncode == 2
    assert "inventory" in in_sample.stderr
    bad_id = run(central, "enrol", "Probe_X", *ENROL_ARGS)
    assert bad_id.returncode == 2
    assert "a-z, 0-9" in bad_id.stderr
    bad_iface = run(central, "enrol", "probe-y", *ENROL_ARGS, "--interface", "eth1:adsl:X")
    assert bad_iface.returncode == 2
    assert "fixed or mobile" in bad_iface.stderr
    half = [a for a in ENROL_ARGS if a not in ("--lon", "107.24")]
    only_lat = run(central, "enrol", "probe-z", *half)
    assert only_lat.returncode == 2
    assert "--lat and --lon" in only_lat.stderr
    assert "probe-y" not in enrol.read_users(central / "mosquitto" / "probes.passwd")


def test_revoke_forget_keeps_the_other_rows(central: Path) -> None:
    assert run(central, "enrol", "probe-x", *ENROL_ARGS).returncode == 0
    assert run(central, "enrol", "probe-y", *ENROL_ARGS).returncode == 0
    done = run(central, "revoke", "probe-x", "--forget")
    assert done.returncode == 0, done.stderr
    assert set(enrol.read_users(central / "mosquitto" / "probes.passwd")) == {"probe-y"}
    probes = load_inventory(central / "etc" / "inventory.toml").probes
    assert set(probes) == {"dongnai-tanphu-01", "dongnai-bienhoa-01", "probe-y"}
    assert probes["probe-y"].interfaces["wwan0"].operator == "MobiFone"
    assert not (central / "probes" / "probe-x").exists()
    assert run(central, "revoke", "probe-x").returncode == 1  # nothing left to revoke


def test_service_passwords_go_to_their_listeners_file(central: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("a-service-password-of-32-chars!!\n")
    mosquitto = central / "mosquitto"
    for name, role in (("collector", "services"), ("healthcheck", "services"),
                       ("fleet-admin", "admin")):  # fmt: skip
        done = run(central, "service", name, "--password-file", str(secret))
        assert done.returncode == 0, done.stderr
        assert f"{role}.passwd" in done.stdout
        users = enrol.read_users(mosquitto / f"{role}.passwd")
        assert enrol.check_password(users[name], "a-service-password-of-32-chars!!")
    assert set(enrol.read_users(mosquitto / "services.passwd")) == {"collector", "healthcheck"}
    assert set(enrol.read_users(mosquitto / "admin.passwd")) == {"fleet-admin"}
    assert not (mosquitto / "probes.passwd").exists()  # no service login on the probes' port
    assert (
        "unchanged" in run(central, "service", "collector", "--password-file", str(secret)).stdout
    )
    unknown = run(central, "service", "probe-x", "--password-file", str(secret))
    assert unknown.returncode == 2
    assert "not a service account" in unknown.stderr
    listing = run(central, "list").stdout
    assert "collector" not in listing
    assert "fleet-admin" not in listing


def test_a_pattern_in_a_service_acl_is_refused(central: Path) -> None:
    """A pattern line in services.acl would give every service login a probe's rights."""
    acl = central / "mosquitto" / "services.acl"
    acl.write_text(acl.read_text() + "pattern write probefleet/v1/%u/results/latency\n")
    done = run(central, "enrol", "probe-x", *ENROL_ARGS)
    assert done.returncode == 2
    assert "'pattern' lines do not belong here" in done.stderr
    probes = central / "mosquitto" / "probes.acl"
    acl.write_text(acl.read_text().replace("pattern write", "# was"))
    probes.write_text(probes.read_text() + "user collector\ntopic readwrite #\n")
    done = run(central, "enrol", "probe-x", *ENROL_ARGS)
    assert done.returncode == 2
    assert "a 'user' line" in done.stderr
