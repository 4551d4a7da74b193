"""deploy/central's Mosquitto config and ACLs on the real broker (Debian's 2.0): the site
working as designed: TLS with gen-certs.sh's certificates, every listener's logins, the
probes' own topics, enrol.py then revoke, the collector's queue across a restart. The
attacks of issue 17 are in test_broker_attacks.py."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from tests.deploy.central import ROOT_TOPIC, CentralBroker, Client, make_certs
from tests.deploy.conftest import Site, enrol_args, enrol_probe, logs_in
from tests.harness import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NOT_AUTHORIZED = 0x87
BAD_LOGIN = 0x86
# Success, or success with "no matching subscribers" (0x10): either way the ACL let it in.
ACCEPTED = (0, 0x10)


def login_refused(client: Client) -> None:
    client.connect(expect_ok=False)
    eventually(client.refused, timeout_s=10, message="the broker let it in")
    assert 0 not in client.connack


def test_anonymous_and_wrong_passwords_are_refused(site: Site) -> None:
    for listener in ("probes", "services", "admin"):
        login_refused(site.client(None, listener=listener))
    login_refused(site.client("probe-a", password="guess"))
    login_refused(site.client("nobody", password="x"))
    login_refused(site.client("collector", password="collector-guess"))
    login_refused(site.client("fleet-admin", password="fleet-admin-guess"))


def test_every_login_works_on_its_own_listener(site: Site) -> None:
    for user in ("probe-a", "collector", "healthcheck", "fleet-admin"):
        site.client(user).connect()


# An MQTT v5 CONNECT (client id "abc", no login): enough to make a broker answer.
CONNECT_V5 = bytes.fromhex("101000044d5154540502003c000003616263")


def raw_exchange(port: int, ca: Path | None, cert: tuple[Path, Path] | None = None) -> bytes:
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


def test_tls_with_the_generated_certificates(site: Site, tmp_path: Path) -> None:
    broker = site.broker
    # Verified against the generated CA, host name checked against the SANs (localhost).
    site.client("probe-a").connect()
    # The TLS layer works for anyone; then the CONNACK refuses the anonymous CONNECT.
    answer = raw_exchange(broker.port, broker.certs / "ca.crt")
    assert answer[:1] == b"\x20", answer.hex()  # CONNACK
    assert answer[3] in (NOT_AUTHORIZED, BAD_LOGIN), answer.hex()
    # A client trusting another CA refuses the broker's certificate.
    other = make_certs(tmp_path / "other-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        raw_exchange(broker.port, other / "ca.crt")
    # Plain MQTT on any TLS port gets no CONNACK.
    for port in broker.ports.values():
        assert not raw_exchange(port, None).startswith(b"\x20")


def tls12_handshake(port: int, ca: Path, ciphers: str) -> str:
    """The cipher a TLS 1.2-only client with ``ciphers`` gets; ssl.SSLError if none."""
    context = ssl.create_default_context(cafile=str(ca))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]


def test_tls_offers_only_ecdhe_with_aead(site: Site) -> None:
    """Strong TLS on every listener: TLS 1.2 with ECDHE and AES-GCM/ChaCha20 only (no CBC,
    no SHA-1, no static RSA key exchange), TLS 1.3, nothing older."""
    ca = site.broker.certs / "ca.crt"
    for port in site.broker.ports.values():
        assert tls12_handshake(port, ca, "ECDHE-ECDSA-AES128-GCM-SHA256") == (
            "ECDHE-ECDSA-AES128-GCM-SHA256"
        )
        assert tls12_handshake(port, ca, "ECDHE-ECDSA-CHACHA20-POLY1305")
        for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
                     "ECDHE-ECDSA-AES128-SHA256", "AES128-GCM-SHA256", "AES128-SHA"):  # fmt: skip
            with pytest.raises(ssl.SSLError):
                tls12_handshake(port, ca, weak)
        context = ssl.create_default_context(cafile=str(ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() == "TLSv1.3"
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        with warnings.catch_warnings():  # deprecated: which is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with (
            pytest.raises(ssl.SSLError),
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            old.wrap_socket(raw),
        ):
            pass


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
            answer = raw_exchange(broker.port, certs / "ca.crt")
        except (ssl.SSLError, ConnectionResetError):
            answer = b""  # TLS 1.3: the server's alert arrives after the client's handshake
        assert not answer.startswith(b"\x20"), "no certificate, yet a CONNACK"
        # A certificate alone is not a login.
        answer = raw_exchange(broker.port, certs / "ca.crt", pair)
        assert answer[:1] == b"\x20", answer.hex()
        assert answer[3] != 0, answer.hex()
    finally:
        for client in made:
            client.close()
        broker.stop()


def test_a_probe_cannot_publish_as_another(site: Site) -> None:
    collector = site.client("collector").connect()
    collector.subscribe(f"{ROOT_TOPIC}/+/results/+", f"{ROOT_TOPIC}/+/status")
    a = site.client("probe-a").connect()
    assert a.publish(f"{ROOT_TOPIC}/probe-b/results/latency") == NOT_AUTHORIZED
    assert a.publish(f"{ROOT_TOPIC}/probe-b/status") == NOT_AUTHORIZED
    assert a.publish(f"{ROOT_TOPIC}/probe-a/ack") == NOT_AUTHORIZED  # the collector's to send
    assert a.publish(f"{ROOT_TOPIC}/probe-b/config", retain=True) == NOT_AUTHORIZED
    assert a.publish(f"{ROOT_TOPIC}/probe-a/config", retain=True) == NOT_AUTHORIZED
    assert a.publish(f"{ROOT_TOPIC}/probe-a/results/latency") == 0
    assert a.publish(f"{ROOT_TOPIC}/probe-a/status", retain=True) == 0
    eventually(lambda: len(collector.topics()) == 2, message="the collector got its two")
    time.sleep(0.5)  # nothing else may trickle in
    assert sorted(collector.topics()) == [
        f"{ROOT_TOPIC}/probe-a/results/latency",
        f"{ROOT_TOPIC}/probe-a/status",
    ]


def test_a_probe_reads_only_its_own_config_commands_acks(site: Site) -> None:
    collector = site.client("collector").connect()
    admin = site.client("fleet-admin").connect()
    for probe in ("probe-a", "probe-b"):
        assert admin.publish(f"{ROOT_TOPIC}/{probe}/config", b"x", retain=True) in ACCEPTED
    a = site.client("probe-a").connect()
    a.subscribe(f"{ROOT_TOPIC}/+/config", f"{ROOT_TOPIC}/probe-b/#", "#")
    a.subscribe(*(f"{ROOT_TOPIC}/probe-a/{c}" for c in ("config", "commands", "ack", "resend")))
    eventually(lambda: f"{ROOT_TOPIC}/probe-a/config" in a.topics(), message="own config")
    for channel, sender in (("commands", admin), ("ack", collector), ("resend", collector)):
        assert sender.publish(f"{ROOT_TOPIC}/probe-b/{channel}", b"b") in ACCEPTED
        assert sender.publish(f"{ROOT_TOPIC}/probe-a/{channel}", b"a") == 0
    eventually(lambda: len(set(a.topics())) == 4, message="own four channels")
    time.sleep(0.5)
    assert {t.split("/")[2] for t in a.topics()} == {"probe-a"}
    # Nor can it read the fleet's results.
    b = site.client("probe-b").connect()
    assert b.publish(f"{ROOT_TOPIC}/probe-b/results/dns") in ACCEPTED
    time.sleep(0.5)
    assert not [t for t in a.topics() if "probe-b" in t]


def revoke(site: Site, probe: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*enrol_args(site.broker, site.central), "revoke", probe, "--forget", *extra],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def admin_clear_command(site: Site, tmp_path: Path) -> str:
    """enrol.py's --clear-status for the test broker: mosquitto_pub with the fleet admin's
    login from an options file (what setup.sh writes and compose mounts), port and CA moved."""
    options = tmp_path / "fleet-admin"
    options.mkdir()
    (options / "mosquitto_pub").write_text(f"-u fleet-admin\n-P {site.passwords['fleet-admin']}\n")
    return (
        f"env XDG_CONFIG_HOME={options} mosquitto_pub -h localhost -p {site.broker.admin_port} "
        f"--cafile {site.broker.certs / 'ca.crt'} -q 1 -r -n -t {{topic}}"
    )


def test_enrol_delivers_then_revoke_refuses_and_clears_the_status(
    site: Site, tmp_path: Path
) -> None:
    broker, central = site.broker, site.central
    collector = site.client("collector").connect()
    collector.subscribe(f"{ROOT_TOPIC}/+/results/+")
    password = enrol_probe(broker, central, "probe-c", "--lat", "11.2", "--lon", "107.4")
    # The bundle for the technician: the agent accepts its config.
    bundle = central / "probes" / "probe-c"
    assert (bundle / "probe-c.pw").stat().st_mode & 0o077 == 0
    assert "--probe-id probe-c" in (bundle / "install.txt").read_text()
    # Connected the way the agent will be: the bundle's CA and password, a retained status
    # and a retained "offline" Last Will.
    eventually(lambda: logs_in(broker, "probe-c", password), timeout_s=10,
               message="the enrolled probe cannot log in")  # fmt: skip
    probe = site.client("probe-c", password=password, ca=bundle / "ca.pem")
    status = f"{ROOT_TOPIC}/probe-c/status"
    probe.client.will_set(status, b'{"state":"offline"}', qos=1, retain=True)
    probe.connect()
    assert probe.publish(status, b'{"state":"online"}', retain=True) in ACCEPTED
    assert probe.publish(f"{ROOT_TOPIC}/probe-c/results/latency") == 0
    eventually(lambda: f"{ROOT_TOPIC}/probe-c/results/latency" in collector.topics(),
               message="delivered")  # fmt: skip
    assert "probes.probe-c" in (central / "inventory.toml").read_text()

    done = revoke(site, "probe-c", "--clear-status", admin_clear_command(site, tmp_path))
    assert done.returncode == 0, done.stderr
    assert "retained status cleared" in done.stdout, done.stdout + done.stderr
    # Mosquitto re-checks connected clients on reload and drops the revoked one ...
    eventually(lambda: probe.disconnects != [], timeout_s=10, message="still connected")
    # ... and it cannot come back.
    login_refused(site.client("probe-c", password=password))
    assert "probes.probe-c" not in (central / "inventory.toml").read_text()
    assert "probes.probe-a" in (central / "inventory.toml").read_text()
    # Its retained status (the Will's "offline", published on the disconnect) is gone.
    watcher = site.client("fleet-admin").connect()
    watcher.subscribe(f"{ROOT_TOPIC}/+/status")
    time.sleep(1.0)  # a retained message would arrive with the SUBACK
    assert status not in watcher.retained, watcher.messages
    # The others are untouched.
    site.client("probe-a").connect()


def test_revoke_without_a_broker_says_what_to_run(site: Site) -> None:
    password = enrol_probe(site.broker, site.central, "probe-d")
    assert password
    done = revoke(site, "probe-d", "--clear-status", "")
    assert done.returncode == 0, done.stderr
    assert "retained status: not cleared" in done.stdout
    assert "mosquitto_pub" in done.stdout
    assert "probefleet/v1/probe-d/status" in done.stdout
    failing = enrol_probe(site.broker, site.central, "probe-e")
    assert failing
    done = revoke(site, "probe-e", "--clear-status", "false {topic}")
    assert done.returncode == 0, done.stderr  # the login is revoked all the same
    assert "clearing probefleet/v1/probe-e/status failed" in done.stderr


def test_the_collectors_queue_outlives_its_absence_and_a_broker_restart(site: Site) -> None:
    """More than Mosquitto's default 1000 queued messages wait for an absent collector
    (max_queued_messages), and survive a broker restart (persistence)."""
    broker, passwords = site.broker, site.passwords
    topic = f"{ROOT_TOPIC}/+/results/+"
    session = {"client_id": "collector", "clean_start": False, "listener": "services"}
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
