"""compose.yaml read as data, no Docker (CI): what is published and where, secrets as files
and never in the environment or on a command line, the broker's descriptor limit, and the
admin listener kept on the broker's loopback."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy.central import CENTRAL, conf_settings
from tests.deploy.test_agent_deploy import parse_unit

COMPOSE = CENTRAL / "compose.yaml"
SECRET_WORDS = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY\b", re.I)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def published(compose: dict[str, Any]) -> dict[str, list[str]]:
    return {name: [str(p) for p in s.get("ports", [])] for name, s in compose["services"].items()}


def test_only_the_probes_port_and_grafana_behind_tls_are_open_to_the_world(
    compose: dict[str, Any],
) -> None:
    for name, ports in published(compose).items():
        for port in ports:
            host = port.split(":")[0] if port.count(":") == 2 else None
            if port == "8883:8883":
                assert name == "mosquitto"
                continue
            if port == "443:8443":
                assert name == "grafana-tls"
                continue
            assert host == "127.0.0.1", (name, port)
    assert published(compose)["mosquitto"] == ["8883:8883"]
    assert published(compose)["grafana-tls"] == ["443:8443"]
    everything = " ".join(p for ports in published(compose).values() for p in ports)
    assert "8884" not in everything
    assert "8885" not in everything


def test_grafana_is_reached_only_through_tls(compose: dict[str, Any]) -> None:
    """Grafana publishes nothing; the TLS front (nginx/grafana-tls.conf, run for real in
    test_grafana_tls.py) is the one way in, with the site's certificate."""
    assert published(compose)["grafana"] == []
    front = compose["services"]["grafana-tls"]
    mounts = front["volumes"]
    assert "./nginx/grafana-tls.conf:/etc/nginx/conf.d/default.conf:ro" in mounts
    assert "./certs/server.key:/etc/nginx/tls/server.key:ro" in mounts
    assert compose["services"]["grafana"]["environment"]["GF_SERVER_ROOT_URL"].endswith(
        "https://localhost/}"
    )


def test_every_container_runs_with_least_privilege(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged"), name
        assert service.get("network_mode") != "host", name
    # Those running as a plain user need no capability at all.
    for name in ("collector", "grafana"):
        assert services[name]["cap_drop"] == ["ALL"], name
        assert not services[name].get("cap_add"), name
    assert services["collector"]["read_only"] is True
    assert services["grafana-tls"]["cap_drop"] == ["ALL"]
    assert set(services["grafana-tls"]["cap_add"]) <= {"CHOWN", "SETUID", "SETGID"}


def test_one_influxdb_token_per_consumer(compose: dict[str, Any]) -> None:
    mounts = {name: s.get("volumes", []) for name, s in compose["services"].items()}
    assert "influx-token-collector:/var/lib/probefleet-tokens:ro" in mounts["collector"]
    assert "influx-token-grafana:/var/lib/probefleet-tokens:ro" in mounts["grafana"]
    holders = {
        name: [v.split(":")[0] for v in volumes if v.startswith("influx-token")]
        for name, volumes in mounts.items()
    }
    assert holders["collector"] == ["influx-token-collector"]
    assert holders["grafana"] == ["influx-token-grafana"]
    assert sorted(holders["influxdb"]) == ["influx-token-collector", "influx-token-grafana"]
    assert not holders["mosquitto"]
    assert not holders["grafana-tls"]
    init = (CENTRAL / "influxdb" / "init.sh").read_text()
    assert '"$tokens/collector/collector.token"' in init
    assert '"$tokens/grafana/grafana.token"' in init


def test_the_admin_listener_is_the_brokers_loopback_only() -> None:
    listeners = {v.split()[0]: v.split()[1:] for _l, o, v in conf_settings() if o == "listener"}
    assert listeners == {"8883": [], "8884": [], "8885": ["127.0.0.1"]}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def test_no_secret_in_the_environment_or_on_a_command_line(compose: dict[str, Any]) -> None:
    """docker inspect shows the environment, /proc/*/cmdline every command line."""
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        assert isinstance(env, dict), name
        for key, value in env.items():
            if SECRET_WORDS.search(key):
                assert key.endswith("_FILE"), (name, key)
                assert str(value).startswith("/run/secrets/"), (name, key, value)
        commands = [*_strings(service.get("healthcheck", {}).get("test", [])),
                    *_strings(service.get("command", [])),
                    *_strings(service.get("entrypoint", []))]  # fmt: skip
        for command in commands:
            words = command.split()
            assert "-P" not in words, (name, command)
            assert not [w for w in words if w.startswith(("--pw", "--password"))], (name, command)
            assert "secrets/mqtt" not in command or "XDG_CONFIG_HOME" in command, (name, command)


def test_secrets_are_files_in_the_secrets_folder(compose: dict[str, Any]) -> None:
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"}, name
        assert secret["file"] == f"./secrets/{name}", name
    used = {
        entry if isinstance(entry, str) else entry["source"]
        for service in compose["services"].values()
        for entry in service.get("secrets", [])
    }
    assert used == set(compose["secrets"])
    # The broker's logins: options files for mosquitto_sub/_pub, never a bare password.
    targets = {e["target"] for e in compose["services"]["mosquitto"]["secrets"]}
    assert targets == {
        "/run/secrets/healthcheck/mosquitto_sub",
        "/run/secrets/fleet-admin/mosquitto_pub",
        "/run/secrets/fleet-admin/mosquitto_sub",
    }


def test_the_broker_has_descriptors_for_every_connection(compose: dict[str, Any]) -> None:
    mosquitto = compose["services"]["mosquitto"]
    nofile = mosquitto["ulimits"]["nofile"]
    assert nofile["soft"] == nofile["hard"]
    total = sum(int(v) for _l, o, v in conf_settings() if o == "max_connections")
    assert nofile["soft"] >= total + 1000  # files, the listening sockets, slack
    unit = parse_unit((CENTRAL / "mosquitto-limits.conf").read_text())
    assert unit["Service"]["LimitNOFILE"] == [str(nofile["soft"])]
    # Mosquitto only reads its config: enrol.py edits the password files on the host.
    assert "./mosquitto:/mosquitto/config:ro" in mosquitto["volumes"]
