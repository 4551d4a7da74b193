"""deploy/central's Mosquitto config and ACL on the real broker (Debian's 2.0): who may connect,
publish and read what; TLS with gen-certs.sh's certificates; enrol.py then revoke."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.central import ENROL, CentralBroker, Client, make_certs
from tests.harness import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT_TOPIC = "probefleet/v1"
NOT_AUTHORIZED = 0x87
BAD_LOGIN = 0x86
# Success, or success with "no matching subscribers" (0x10): either way the ACL let it in.
ACCEPTED = (0, 0x10)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"), "probe-a", "probe-b")


def _enrol(broker: CentralBroker, central: Path, probe: str, *extra: str) -> str:
    """Run enrol.py for ``probe`` against the test broker; return the password it made."""
    args = [sys.executable, str(ENROL), "--passwd", str(broker.password_path),
            "--acl", str(broker.acl_path), "--inventory", str(central / "inventory.toml"),
            "--ca", str(broker.certs / "ca.crt"), "--out", str(central / "probes"),
            "--reload", f"kill -HUP {broker.pid}"]  # fmt: skip
    done = subprocess.run(
        [*args, "enrol", probe, "--commune", "Tân Phú", "--province", "Đồng Nai",
         "--interface", "eth0:fixed:VNPT", "--broker", "localhost", *extra],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return (central / "probes" / probe / f"{probe}.pw").read_text().strip()


def _revoke(broker: CentralBroker, central: Path, probe: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ENROL), "--passwd", str(broker.password_path),
         "--acl", str(broker.acl_path), "--inventory", str(central / "inventory.toml"),
         "--out", str(central / "probes"), "--reload", f"kill -HUP {broker.pid}",
         "revoke", probe, "--forget"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@pytest.fixture
def site(tmp_path: Path, certs: Path) -> Iterator[tuple[CentralBroker, dict[str, str]]]:
    """The broker with the collector, the health check and probes a and b enrolled."""
    broker = CentralBroker(tmp_path / "broker", certs)
    broker.start()
    try:
        central = tmp_path / "central"
        central.mkdir()
        passwords = {p: _enrol(broker, central, p) for p in ("probe-a", "probe-b")}
        for user in ("collector", "healthcheck"):
            passwords[user] = f"{user}-secret"
            broker.add_user(user, passwords[user])
        broker.reload()
        time.sleep(0.2)  # SIGHUP is asynchronous; the logins below retry anyway
        yield broker, passwords
    finally:
        broker.stop()


class Clients:
    def __init__(self, broker: CentralBroker, passwords: dict[str, str]) -> None:
        self.broker = broker
        self.passwords = passwords
        self.made: list[Client] = []

    def __call__(self, user: str | None, **kwargs: object) -> Client:
        password = kwargs.pop("password", self.passwords.get(user or "", None))
        client = Client(self.broker, user, password, **kwargs)  # type: ignore[arg-type]
        self.made.append(client)
        return client


@pytest.fixture
def clients(site: tuple[CentralBroker, dict[str, str]]) -> Iterator[Clients]:
    made = Clients(*site)
    try:
        yield made
    finally:
        for client in made.made:
            client.close()


def _login_refused(client: Client) -> None:
    client.connect(expect_ok=False)
    eventually(client.refused, timeout_s=10, message="the broker let it in")
    assert 0 not in client.connack


def test_anonymous_and_wrong_passwords_are_refused(clients: Clients) -> None:
    _login_refused(clients(None))
    _login_refused(clients("probe-a", password="guess"))
    _login_refused(clients("nobody", password="x"))
    _login_refused(clients(None, internal=True))


# An MQTT v5 CONNECT (client id "abc", no login): enough to make a broker answer.
CONNECT_V5 = bytes.fromhex("101000044d5154540502003c000003616263")


def _raw_exchange(port: int, ca: Path | None, cert: tuple[Path, Path] | None = None) -> bytes:
    """Open TCP (and TLS if ``ca``), send a CONNECT, return what comes back (b"" = closed).
    TLS failures raise ssl.SSLError."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        if ca is None:
            raw.sendall(CONNECT_V5)
            try:
                return raw.recv(16)
            except ConnectionResetError:
                return b""
        context = ssl.create_default_context(cafile=str(ca))
        if cert:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(CONNECT_V5)
            return tls.recv(16)


def test_tls_with_the_generated_certificates(clients: Clients, tmp_path: Path) -> None:
    broker = clients.broker
    # Verified against the generated CA, host name checked against the SANs (localhost).
    clients("probe-a").connect()
    # The TLS layer works for anyone; then the CONNACK refuses the anonymous CONNECT.
    answer = _raw_exchange(broker.port, broker.certs / "ca.crt")
    assert answer[:1] == b"\x20", answer.hex()  # CONNACK
    assert answer[3] in (NOT_AUTHORIZED, BAD_LOGIN), answer.hex()
    # A client trusting another CA refuses the broker's certificate.
    other = make_certs(tmp_path / "other-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        _raw_exchange(broker.port, other / "ca.crt")
    # Plain MQTT on either TLS port gets no CONNACK.
    for port in (broker.port, broker.internal_port):
        assert not _raw_exchange(port, None).startswith(b"\x20")


def test_client_certificates_when_required(tmp_path: Path, certs: Path) -> None:
    """The mutual-TLS variant (require_certificate true): a login needs a certificate from
    the CA and still the password."""
    broker = CentralBroker(
        tmp_path / "mtls", certs,
        replace=[("require_certificate false", "require_certificate true")],
    )  # fmt: skip
    broker.add_user("probe-a", "pw-a")
    broker.start()
    made: list[Client] = []
    try:
        pair = (certs / "clients/probe-a.crt", certs / "clients/probe-a.key")
        made.append(Client(broker, "probe-a", "pw-a", cert=pair).connect())
        try:
            answer = _raw_exchange(broker.port, certs / "ca.crt")
        except (ssl.SSLError, ConnectionResetError):
            answer = b""  # TLS 1.3: the server's alert arrives after the client's handshake
        assert not answer.startswith(b"\x20"), "no certificate, yet a CONNACK"
        # A certificate alone is not a login.
        answer = _raw_exchange(broker.port, certs / "ca.crt", pair)
        assert answer[:1] == b"\x20", answer.hex()
        assert answer[3] != 0, answer.hex()
    finally:
        for client in made:
            client.close()
        broker.stop()


def test_a_probe_cannot_publish_as_another(clients: Clients) -> None:
    collector = clients("collector", internal=True).connect()
    collector.subscribe(f"{ROOT_TOPIC}/+/results/+", f"{ROOT_TOPIC}/+/status")
    a = clients("probe-a").connect()
    assert a.publish(f"{ROOT_TOPIC}/probe-b/results/latency") == NOT_AUTHORIZED
    assert a.publish(f"{ROOT_TOPIC}/probe-b/status") == NOT_AUTHORIZED
    assert a.publish(f"{ROOT_TOPIC}/probe-a/ack") == NOT_AUTHORIZED  # the collector's to send
    assert a.publish(f"{ROOT_TOPIC}/probe-b/config", retain=True) == NOT_AUTHORIZED
    assert a.publish(f"{ROOT_TOPIC}/probe-a/results/latency") == 0
    assert a.publish(f"{ROOT_TOPIC}/probe-a/status", retain=True) == 0
    eventually(lambda: len(collector.topics()) == 2, message="the collector got its two")
    time.sleep(0.5)  # nothing else may trickle in
    assert sorted(collector.topics()) == [
        f"{ROOT_TOPIC}/probe-a/results/latency",
        f"{ROOT_TOPIC}/probe-a/status",
    ]


def test_a_probe_reads_only_its_own_config_commands_acks(clients: Clients) -> None:
    collector = clients("collector", internal=True).connect()
    for probe in ("probe-a", "probe-b"):
        for channel in ("config", "commands", "ack", "resend"):
            topic = f"{ROOT_TOPIC}/{probe}/{channel}"
            assert collector.publish(topic, b"x", retain=channel == "config") in ACCEPTED
    a = clients("probe-a").connect()
    a.subscribe(f"{ROOT_TOPIC}/+/config", f"{ROOT_TOPIC}/probe-b/#", "#")
    a.subscribe(*(f"{ROOT_TOPIC}/probe-a/{c}" for c in ("config", "commands", "ack", "resend")))
    eventually(lambda: f"{ROOT_TOPIC}/probe-a/config" in a.topics(), message="own config")
    for channel in ("commands", "ack", "resend"):
        assert collector.publish(f"{ROOT_TOPIC}/probe-b/{channel}", b"b") in ACCEPTED
        assert collector.publish(f"{ROOT_TOPIC}/probe-a/{channel}", b"a") == 0
    eventually(lambda: len(set(a.topics())) == 4, message="own four channels")
    time.sleep(0.5)
    assert {t.split("/")[2] for t in a.topics()} == {"probe-a"}
    # Nor can it read the fleet's results.
    b = clients("probe-b").connect()
    assert b.publish(f"{ROOT_TOPIC}/probe-b/results/dns") in ACCEPTED
    time.sleep(0.5)
    assert not [t for t in a.topics() if "probe-b" in t]


def test_a_probe_cannot_take_over_the_collectors_session(clients: Clients) -> None:
    collector = clients("collector", internal=True, client_id="probefleet-collector",
                        clean_start=False).connect(session_expiry_s=3600)  # fmt: skip
    collector.subscribe(f"{ROOT_TOPIC}/+/results/+")
    # Probe a asks for the collector's client id; the probes' listener makes it "probe-a".
    thief = clients("probe-a", client_id="probefleet-collector", clean_start=True).connect()
    time.sleep(1.0)
    assert collector.disconnects == [], "the collector was kicked off by a probe"
    b = clients("probe-b").connect()
    assert b.publish(f"{ROOT_TOPIC}/probe-b/results/dns") == 0
    eventually(lambda: collector.topics() == [f"{ROOT_TOPIC}/probe-b/results/dns"],
               message="the collector's session still delivers")  # fmt: skip
    assert thief.messages == []
    # Even the probe's own username as client id on a second connection only replaces the
    # probe's own session, never the collector's.
    clients("probe-a", client_id="whatever").connect()
    eventually(lambda: thief.disconnects != [], message="the older probe-a connection stays")
    assert collector.disconnects == []
    assert "probefleet-collector" not in clients.broker.log_text().split("New client connected")[-1]


def test_collector_cannot_be_impersonated_by_probe_credentials(clients: Clients) -> None:
    """The collector's rights go with its username, never with a probe's."""
    a = clients("probe-a", internal=True).connect()  # even on the internal listener
    a.subscribe(f"{ROOT_TOPIC}/+/results/+")
    b = clients("probe-b").connect()
    assert b.publish(f"{ROOT_TOPIC}/probe-b/results/dns") in ACCEPTED
    time.sleep(0.5)
    assert a.messages == []
    assert a.publish(f"{ROOT_TOPIC}/probe-b/ack") == NOT_AUTHORIZED


def test_enrol_delivers_then_revoke_refuses(
    site: tuple[CentralBroker, dict[str, str]], tmp_path: Path
) -> None:
    broker, passwords = site
    central = tmp_path / "central"
    collector = Client(broker, "collector", passwords["collector"], internal=True).connect()
    collector.subscribe(f"{ROOT_TOPIC}/+/results/+")
    made = [collector]
    try:
        password = _enrol(broker, central, "probe-c", "--lat", "11.2", "--lon", "107.4")
        # The bundle for the technician: the agent accepts its config.
        bundle = central / "probes" / "probe-c"
        assert (bundle / "probe-c.pw").stat().st_mode & 0o077 == 0
        assert "--probe-id probe-c" in (bundle / "install.txt").read_text()
        # Connected the way the agent will be: the bundle's CA and password.
        probe = Client(broker, "probe-c", password, ca=bundle / "ca.pem")
        made.append(probe)
        eventually(lambda: _logs_in(broker, "probe-c", password), timeout_s=10,
                   message="the enrolled probe cannot log in")  # fmt: skip
        probe.connect()
        assert probe.publish(f"{ROOT_TOPIC}/probe-c/results/latency") == 0
        eventually(lambda: f"{ROOT_TOPIC}/probe-c/results/latency" in collector.topics(),
                   message="delivered")  # fmt: skip
        assert "probes.probe-c" in (central / "inventory.toml").read_text()

        done = _revoke(broker, central, "probe-c")
        assert done.returncode == 0, done.stderr
        # Mosquitto re-checks connected clients on reload and drops the revoked one ...
        eventually(lambda: probe.disconnects != [], timeout_s=10, message="still connected")
        # ... and it cannot come back.
        again = Client(broker, "probe-c", password)
        made.append(again)
        _login_refused(again)
        assert "probes.probe-c" not in (central / "inventory.toml").read_text()
        assert "probes.probe-a" in (central / "inventory.toml").read_text()
        # The others are untouched.
        made.append(Client(broker, "probe-a", passwords["probe-a"]).connect())
    finally:
        for client in made:
            client.close()


def _logs_in(broker: CentralBroker, user: str, password: str) -> bool:
    client = Client(broker, user, password)
    try:
        client.connect(expect_ok=False)
        eventually(lambda: client.connack or client.disconnects, timeout_s=5)
        return client.connack == [0]
    finally:
        client.close()


def test_the_collectors_queue_outlives_its_absence_and_a_broker_restart(
    site: tuple[CentralBroker, dict[str, str]],
) -> None:
    """More than Mosquitto's default 1000 queued messages wait for an absent collector
    (max_queued_messages), and survive a broker restart (persistence)."""
    broker, passwords = site
    topic = f"{ROOT_TOPIC}/+/results/+"
    session = {"client_id": "probefleet-collector", "clean_start": False, "internal": True}
    first = Client(broker, "collector", passwords["collector"], **session).connect(  # type: ignore[arg-type]
        session_expiry_s=3600
    )
    first.subscribe(topic)
    first.close()
    probe = Client(broker, "probe-a", passwords["probe-a"]).connect()
    n = 1500
    for i in range(n):
        probe.client.publish(f"{ROOT_TOPIC}/probe-a/results/dns", str(i).encode(), qos=1)
    eventually(lambda: len(probe.pubacks) == n, timeout_s=60, message="PUBACKs")
    assert set(probe.pubacks.values()) == {0}  # 0, not 0x10: the session was there
    probe.close()
    broker.stop()  # SIGTERM: Mosquitto writes its persistence file
    broker.start()
    back = Client(broker, "collector", passwords["collector"], **session)  # type: ignore[arg-type]
    try:
        back.connect(session_expiry_s=3600)
        eventually(
            lambda: len(back.messages) == n,
            timeout_s=60,
            message=f"queued results after the restart: {len(back.messages)} of {n}",
        )
        assert sorted(int(p) for _t, p in back.messages) == list(range(n))
    finally:
        back.close()
