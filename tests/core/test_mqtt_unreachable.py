"""A broker that cannot be reached is reported at once, with the reason, at every attempt
(issue 19: a closed port or an unresolvable name left both programs silent for 20 s).

The client is the one both programs build (core.mqtt.client); each case is a real failure
on loopback: a closed port, a TLS server whose certificate the client does not trust, a
plain-TCP port spoken to with TLS. An unresolvable name is made by failing getaddrinfo
(a real lookup would ask the machine's resolver, which is not on loopback)."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from probefleet.core import mqtt as core_mqtt

from tests.harness import eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
GEN_CERTS = ROOT / "deploy" / "central" / "gen-certs.sh"


def _section(port: int, **extra: object) -> core_mqtt.MqttSection:
    settings: dict[str, object] = {"tls": False, **extra}
    return core_mqtt.MqttSection(host="127.0.0.1", port=port, **settings)  # type: ignore[arg-type]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == core_mqtt.log.name and r.levelno == logging.WARNING
    ]


def _attempts(cfg: core_mqtt.MqttSection, caplog: pytest.LogCaptureFixture, n: int) -> list[str]:
    """Start a client on ``cfg`` and return the warnings of its first ``n`` attempts."""
    caplog.set_level(logging.WARNING, logger=core_mqtt.log.name)
    client = core_mqtt.client(cfg, client_id="probe-x")
    client.reconnect_delay_set(min_delay=0.1, max_delay=0.2)  # type: ignore[arg-type]
    client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
    client.loop_start()
    try:
        eventually(lambda: len(_warnings(caplog)) >= n, timeout_s=10,
                   message=lambda: f"warnings: {_warnings(caplog)}")  # fmt: skip
    finally:
        client.disconnect()
        client.loop_stop()
    return _warnings(caplog)


def test_a_closed_port_is_reported_at_once_and_at_every_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    seen = _attempts(_section(port), caplog, 3)
    assert all(f"mqtt://127.0.0.1:{port}" in w and "connection refused" in w for w in seen), seen


def test_an_unresolvable_name_is_reported(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_such_name(*_args: object, **_kw: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    seen = _attempts(_section(1883), caplog, 1)
    assert "does not resolve (Name or service not known)" in seen[0], seen


# paho 2.2 drops (does not close) its socket when the TLS handshake fails; CPython closes
# it at once, with a ResourceWarning. Nothing leaks; the warning is paho's, not ours.
PAHO_TLS_SOCKET = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[int]:
    """A TLS listener on loopback with a certificate from a CA the client is not given;
    it completes (or fails) handshakes and closes."""
    subprocess.run(["bash", str(GEN_CERTS), "--dir", str(tmp_path / "site")],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "site" / "server.crt", tmp_path / "site" / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    pass  # the client gave up on our certificate: what the test wants

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@PAHO_TLS_SOCKET
def test_an_untrusted_certificate_is_reported(
    tls_server: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    subprocess.run(["bash", str(GEN_CERTS), "--dir", str(tmp_path / "other")],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    cfg = _section(tls_server, tls=True, ca_file=str(tmp_path / "other" / "ca.crt"))
    seen = _attempts(cfg, caplog, 1)
    assert f"mqtts://127.0.0.1:{tls_server}" in seen[0], seen
    assert "its certificate is not trusted" in seen[0], seen
    assert "ca_file" in seen[0], seen


@PAHO_TLS_SOCKET
def test_tls_to_a_plain_port_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    plain = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer_in_plain_text() -> None:
        plain.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = plain.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer_in_plain_text, daemon=True)
    thread.start()
    try:
        seen = _attempts(_section(plain.getsockname()[1], tls=True), caplog, 1)
    finally:
        stop.set()
        thread.join(timeout=5)
        plain.close()
    assert "TLS handshake failed" in seen[0], seen
    assert "[mqtt] tls" in seen[0], seen


@pytest.mark.integration  # the real daemon as a process
def test_the_collector_says_so_within_seconds(tmp_path: Path) -> None:
    """The real `probe-collector run` on a closed port: the reason is in its log at once."""
    port = free_port()
    config = tmp_path / "collector.toml"
    (tmp_path / "inventory.toml").write_text("")
    shutil.copyfile(ROOT / "config" / "targets.sample.toml", tmp_path / "targets.toml")
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ntls = false\n'
        '[influxdb]\nurl = "http://127.0.0.1:9"\n'
        f'[files]\nstate_dir = "{tmp_path / "state"}"\n'
        f'inventory = "{tmp_path / "inventory.toml"}"\n'
        f'targets = "{tmp_path / "targets.toml"}"\nalerts = ""\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "probefleet.collector.cli", "run", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        eventually(lambda: any("connection refused" in line for line in lines), timeout_s=10,
                   message=lambda: "".join(lines))  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=5)
        proc.stdout.close()
    assert any(f"cannot reach the broker mqtt://127.0.0.1:{port}" in line for line in lines)
