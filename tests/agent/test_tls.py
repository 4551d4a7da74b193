"""The agent over TLS with a client certificate, against a real Mosquitto TLS listener."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from probefleet.agent import statusfile

from tests.agent.helpers import AgentProcess, write_agent_config
from tests.harness import MosquittoFactory, eventually, free_port
from tests.harness.tls_nginx import make_cert

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_tls_with_a_client_certificate(tmp_path: Path, mosquitto_factory: MosquittoFactory) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    before, after = now - dt.timedelta(days=1), now + dt.timedelta(days=30)
    server_cert, server_key = make_cert(tmp_path / "server", not_before=before, not_after=after)
    client_cert, client_key = make_cert(
        tmp_path / "client", san="DNS:probe-a", not_before=before, not_after=after
    )
    trusted = tmp_path / "clients-ca.pem"  # the broker trusts the probe's (self-signed) cert
    trusted.write_text(client_cert.read_text())
    tls_port = free_port("127.0.0.1")
    broker = mosquitto_factory(
        extra_conf=[
            f"listener {tls_port} 127.0.0.1",
            f"certfile {server_cert}",
            f"keyfile {server_key}",
            f"cafile {trusted}",
            "require_certificate true",
        ]
    )
    state = tmp_path / "agent-state"
    config = write_agent_config(
        tmp_path, broker,
        mqtt={"port": tls_port, "tls": True, "ca_file": str(server_cert),
              "cert_file": str(client_cert), "key_file": str(client_key)},
    )  # fmt: skip
    agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="0.5")
    try:
        agent.start(wait_for="MQTT connected")
        eventually(
            lambda: statusfile.read(state)["mqtt"]["published"] >= 2, timeout_s=20,
            message="nothing published over TLS",
        )  # fmt: skip
        assert agent.terminate() == 0
    finally:
        agent.kill()
    assert "New connection from 127.0.0.1:" in broker.log_text()
    assert f"on port {tls_port}" in broker.log_text()
