"""deploy/central without Docker: compose.yaml's wiring (images, health checks, volumes,
secrets, the files setup.sh makes), setup.sh run for real and its result started on the real
broker, the collector's config and systemd unit, InfluxDB's init script."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from probefleet.collector.config import load_config
from probefleet.collector.inventory import load_inventory, load_targets

from tests.deploy.central import CENTRAL, ROOT, CentralBroker, Client, conf_settings
from tests.deploy.test_agent_deploy import parse_unit

COMPOSE = CENTRAL / "compose.yaml"
SERVICES = {"mosquitto", "influxdb", "collector", "grafana", "grafana-tls"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def test_compose_has_the_five_services_with_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    assert services["mosquitto"]["image"].startswith("${MOSQUITTO_IMAGE:-eclipse-mosquitto:2.")
    assert services["influxdb"]["image"] == "${INFLUXDB_IMAGE:-influxdb:2.7}"
    assert services["grafana-tls"]["image"].startswith("${NGINX_IMAGE:-nginx:")
    assert services["grafana"]["image"].startswith("${GRAFANA_IMAGE:-grafana/grafana:")
    assert services["collector"]["build"]["dockerfile"] == "deploy/central/Dockerfile"
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
        assert service["restart"] == "unless-stopped", name
    # Start order: the collector and Grafana wait for healthy dependencies.
    assert services["collector"]["depends_on"] == {
        "mosquitto": {"condition": "service_healthy"},
        "influxdb": {"condition": "service_healthy"},
    }
    # Only the probes' TLS port is open to the world; InfluxDB on loopback only; the
    # collector's listener (8884) nowhere.
    assert services["mosquitto"]["ports"] == ["8883:8883"]
    assert services["influxdb"]["ports"] == ["127.0.0.1:8086:8086"]
    assert "8884" not in str(services["mosquitto"]["ports"])
    assert "ports" not in services["collector"]


def test_compose_keeps_state_in_volumes_and_the_ca_key_out(compose: dict[str, Any]) -> None:
    services = compose["services"]
    named = set(compose["volumes"])
    mounts = {name: s.get("volumes", []) for name, s in services.items()}
    for name, volumes in mounts.items():
        for volume in volumes:
            source = volume.split(":")[0]
            if source.startswith("."):
                continue
            assert source in named, (name, volume)
    assert "mosquitto-data:/mosquitto/data" in mounts["mosquitto"]
    assert "influxdb-data:/var/lib/influxdb2" in mounts["influxdb"]
    assert "collector-state:/var/lib/probefleet-collector" in mounts["collector"]
    assert "grafana-data:/var/lib/grafana" in mounts["grafana"]
    assert not [
        v for vs in mounts.values() for v in vs if "ca.key" in v or v.startswith("./certs:")
    ]
    # The tokens: written by InfluxDB's init script, one read-only volume per consumer.
    for name in ("collector", "grafana"):
        assert f"influx-token-{name}:/var/lib/probefleet-tokens/{name}" in mounts["influxdb"]
        assert f"influx-token-{name}:/var/lib/probefleet-tokens:ro" in mounts[name]


@pytest.mark.integration  # starts Debian's mosquitto itself
def test_setup_makes_every_file_compose_mounts_and_a_broker_that_works(
    tmp_path: Path, compose: dict[str, Any]
) -> None:
    site = tmp_path / "repo"
    shutil.copytree(CENTRAL, site / "deploy" / "central")
    shutil.copytree(ROOT / "config", site / "config")
    central = site / "deploy" / "central"
    done = subprocess.run(
        ["bash", str(central / "setup.sh"), "--name", "mqtt.example.vn"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    again = subprocess.run(
        ["bash", str(central / "setup.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr  # idempotent: nothing replaced
    assert "password unchanged" in again.stdout

    # Every host file compose mounts or reads as a secret now exists.
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (central / source).exists(), (name, source)
            elif source.startswith("../../"):
                assert (site / source[6:]).exists() or (ROOT / source[6:]).exists(), source
    for name, secret in compose["secrets"].items():
        path = central / secret["file"]
        if name == "smtp-password":  # the operator's to fill in
            assert path.exists(), path
            continue
        assert path.stat().st_size >= 32, path
    group = (central / "secrets" / "mqtt-share-group").read_text()
    assert re.fullmatch(r"pf[0-9a-f]{32}", group), group  # collector.toml's share_group pattern
    assert (central / "secrets").stat().st_mode & 0o077 == 0
    assert load_inventory(central / "etc" / "inventory.toml").probes == {}
    assert load_targets(central / "etc" / "targets.toml").fixed.download_mbps == 150.0

    # The compose collector config loads with the files it names, as mounted in compose.
    mounted = {
        v.split(":")[1]: central / v.split(":")[0]
        for v in compose["services"]["collector"]["volumes"]
        if v.startswith("./")
    }
    cfg_text = (CENTRAL / "collector" / "collector.toml").read_text()
    for inside, outside in mounted.items():
        cfg_text = cfg_text.replace(f'"{inside}"', f'"{outside}"')
    cfg_text = cfg_text.replace(
        "/run/secrets/mqtt-collector-password", str(central / "secrets" / "mqtt-collector-password")
    )
    (tmp_path / "collector.toml").write_text(cfg_text)
    cfg = load_config(tmp_path / "collector.toml", env={"PROBEFLEET_INFLUXDB_TOKEN": "t"})
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("mosquitto", 8884, True)

    # Mosquitto with setup's password files and certificates: every service logs in with
    # setup's secrets on its own listener; the health check runs compose's command, its login
    # from the options file compose mounts (no password on the command line).
    broker = CentralBroker(tmp_path / "broker", central / "certs")
    for role in ("probes", "services", "admin"):
        shutil.copyfile(central / "mosquitto" / f"{role}.passwd", broker.passwd(role))
    broker.start()
    try:
        secret = (central / "secrets" / "mqtt-collector-password").read_text()
        collector = Client(broker, "collector", secret, listener="services").connect()
        collector.close()
        admin_pw = (central / "secrets" / "mqtt-fleet-admin-password").read_text()
        Client(broker, "fleet-admin", admin_pw, listener="admin").connect().close()
        options = mounted_options(compose, central, tmp_path)
        command = compose["services"]["mosquitto"]["healthcheck"]["test"][1]
        command = command.replace("$$", "$").replace("-p 8884", f"-p {broker.internal_port}")
        command = command.replace("/mosquitto/certs/", f"{central}/certs/")
        command = command.replace("/run/secrets/", f"{options}/")
        assert "-P" not in command.split()
        probe = subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, timeout=30, check=False
        )
        assert probe.returncode == 0, probe.stderr
        health = (central / "secrets" / "mqtt-healthcheck-password").read_text()
        spy = Client(broker, "healthcheck", health, listener="services").connect()
        spy.subscribe("probefleet/v1/#")
        writer = Client(broker, "fleet-admin", admin_pw, listener="admin").connect()
        writer.publish("probefleet/v1/p/config", b"x")
        assert spy.messages == []
        spy.close()
        writer.close()
    finally:
        broker.stop()


def mounted_options(compose: dict[str, Any], central: Path, tmp_path: Path) -> Path:
    """The mosquitto service's secrets laid out as compose mounts them, under one folder
    standing for /run/secrets."""
    root = tmp_path / "run-secrets"
    for entry in compose["services"]["mosquitto"]["secrets"]:
        target = Path(entry["target"])
        assert target.parts[:3] == ("/", "run", "secrets"), target
        inside = root.joinpath(*target.parts[3:])
        inside.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(central / compose["secrets"][entry["source"]]["file"], inside)
    return root


def test_influxdb_init_makes_dbrp_and_two_narrow_tokens() -> None:
    script = (CENTRAL / "influxdb" / "init.sh").read_text()
    assert "influx v1 dbrp create" in script
    assert '--db "$bucket" --rp autogen --default' in script
    assert re.search(r'token "[^"]*collector[^"]*" --write-bucket', script)
    assert re.search(r'token "[^"]*grafana[^"]*" --read-bucket', script)
    assert "--all-access" not in script
    assert "--operator" not in script
    subprocess.run(["bash", "-n", str(CENTRAL / "influxdb" / "init.sh")], check=True)
    if shutil.which("shellcheck"):
        for name in ("influxdb/init.sh", "setup.sh", "gen-certs.sh"):
            subprocess.run(["shellcheck", str(CENTRAL / name)], check=True)
    # Retention: at least two years, since the report compares years.
    compose = yaml.safe_load(COMPOSE.read_text())
    retention = compose["services"]["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_RETENTION"]
    match = re.fullmatch(r"\$\{INFLUXDB_RETENTION:-(\d+)d\}", retention)
    assert match is not None, retention
    days = int(match.group(1))
    assert days >= 2 * 366


def test_collector_unit_is_what_systemd_accepts(tmp_path: Path) -> None:
    unit_path = CENTRAL / "probefleet-collector.service"
    unit = parse_unit(unit_path.read_text())
    service = unit["Service"]
    assert service["User"] == ["probefleet-collector"]
    assert service["CapabilityBoundingSet"] == [""]
    assert service["StateDirectory"] == ["probefleet-collector"]
    assert any(v.startswith("PROBEFLEET_INFLUXDB_TOKEN_FILE=%d/") for v in service["Environment"])
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package: systemd)")
    stand_in = tmp_path / "probe-collector"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    copy = tmp_path / unit_path.name
    copy.write_text(
        unit_path.read_text().replace("/opt/probefleet/venv/bin/probe-collector", str(stand_in))
    )
    proc = subprocess.run(
        [analyze, "verify", copy.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


def test_the_capacity_table_is_what_mosquitto_conf_says() -> None:
    """README.md's capacity table names each limit with its value: they must be the
    config's, and the queue bound must hold what its row says."""
    readme = (CENTRAL / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)`(?: \((\w+)\))? \| ([\d,]+) \|", readme, flags=re.M)
    assert len(rows) >= 8, rows
    settings = conf_settings()
    ports = {"probes": "8883", "services": "8884", "admin": "8885"}
    for option, listener, value in rows:
        where = ports.get(listener) if listener else None
        found = [v for lst, o, v in settings if o == option and (where is None or lst == where)]
        if option == "LimitNOFILE":
            found = [(CENTRAL / "mosquitto-limits.conf").read_text().split("LimitNOFILE=")[1]]
        assert [f.split()[0] for f in found] == [value.replace(",", "")], (option, listener)
    general = {o: v for lst, o, v in settings if lst is None}
    # 10,000 probes x ~90 results an hour (the sample's intervals), 1.5 kB each: 2 hours.
    per_hour = 3600 / 60 + 3600 / 300 * 2 + 3600 / 900 + 1 + 1
    assert int(general["max_queued_messages"]) >= 10_000 * per_hour * 2
    assert int(general["max_queued_bytes"]) >= int(general["max_queued_messages"]) * 1500
    cfg_session = load_config(
        CENTRAL / "collector" / "collector.toml",
        env={"PROBEFLEET_MQTT_PASSWORD": "x", "PROBEFLEET_INFLUXDB_TOKEN": "t"},
    )
    assert cfg_session.mqtt.session_expiry_s >= 7 * 86400


def test_readme_commands_are_the_tools_real_options() -> None:
    """The enrol/revoke/setup lines an operator copies from README.md parse with the tools'
    own option parsers."""
    import shlex

    from tests.deploy.test_enrol import enrol

    readme = (CENTRAL / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    joined = re.sub(r"\\\n\s*", " ", "\n".join(blocks))  # continuation lines
    enrols = re.findall(r"\./enrol\.py ([^\n#]+)", joined)
    assert len(enrols) >= 2
    for line in enrols:
        args = enrol.build_parser().parse_args(shlex.split(line))
        assert args.command in ("enrol", "revoke", "list", "service")
    setup = re.search(r"\./setup\.sh ([^\n#]+)", joined)
    assert setup is not None
    assert setup.group(1).split()[0] == "--name"
    assert "--name|--ip)" in (CENTRAL / "setup.sh").read_text()
