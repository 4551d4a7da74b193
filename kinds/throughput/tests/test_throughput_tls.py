"""`throughput` over HTTPS: verification (system CAs, a CA file, a pin; a wrong CA refused
with the reason), the cipher order by CPU, one session resumed across the streams, TLS
version and cipher on the result, the warm-up's steady-state rule, and `probe-agent measure
throughput` against a real HTTPS nginx and an HTTPS LibreSpeed backend; and the receive
low-water mark the engine sets on download streams."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from librespeed_server import LibreSpeedServer, write_server_list
from probefleet.core import configkit
from probefleet.kinds.base import Link
from probefleet.kinds.common import tls
from probefleet.kinds.common.endpoint import Endpoint, reach
from probefleet.kinds.common.http import parse_url, request_head
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.throughput.engine import Plan, ServerFailed, run_direction
from probefleet.kinds.throughput.measure import Throughput, ThroughputConfig
from probefleet.kinds.throughput.samples import steady

from tests.harness.tls_nginx import TlsTestServer, make_cert

ROOT = Path(__file__).resolve().parents[3]
PROBE_AGENT = Path(sys.executable).with_name("probe-agent")
LINK = Link()
FAST = {"duration_s": 1.0, "grace_download_s": 0.3, "grace_upload_s": 0.3, "warmup_max_s": 0.6}
SAN = "IP:127.0.0.1,IP:::1,DNS:localhost"


def _cert(workdir: Path) -> tuple[Path, Path]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return make_cert(
        workdir, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30),
        san=SAN,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(cert, key) the servers use, and another self-signed CA that did not sign them."""
    cert, key = _cert(tmp_path_factory.mktemp("ca"))
    other, _ = _cert(tmp_path_factory.mktemp("other-ca"))
    return cert, key, other


@pytest.fixture(scope="module")
def https_server(
    tmp_path_factory: pytest.TempPathFactory, certs: tuple[Path, Path, Path]
) -> Iterator[TlsTestServer]:
    cert, key, _ = certs
    with TlsTestServer(tmp_path_factory.mktemp("nginx-tls"), cert, key) as server:
        yield server


def _cfg(**options: Any) -> ThroughputConfig:
    return configkit.build(options, ThroughputConfig)


def _https(server: TlsTestServer, trust: dict[str, str] | None, **options: Any) -> ThroughputConfig:
    urls = {
        "download_url": server.tls_url("/files/large.bin"),
        "upload_url": server.tls_url("/upload"),
        "ping_url": server.tls_url("/empty"),
    }
    entries = [{"host": "127.0.0.1", **trust}] if trust else []
    return _cfg(mode="http", tls=entries, **{**urls, **FAST, **options})


# --- no network ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpuinfo", "aes"),
    [
        ("processor : 0\nflags : fpu sse2 aes avx2\n", True),
        ("processor : 0\nflags : fpu sse2 avx2\n", False),
        # A Pi 4 (Cortex-A72): no aes among the Features.
        ("processor : 0\nFeatures : fp asimd evtstrm crc32 cpuid\nCPU part : 0xd08\n", False),
        ("processor : 0\nFeatures : fp asimd aes pmull sha1 sha2 crc32\n", True),
        ("no flags here\n", True),  # cannot tell: OpenSSL's own default order
    ],
)
def test_aes_instructions_are_read_from_cpuinfo(tmp_path: Path, cpuinfo: str, aes: bool) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert tls.cpu_has_aes(path) is aes


@pytest.mark.parametrize(
    ("aes", "first13", "first12"),
    [(True, "TLS_AES_", "GCM"), (False, "TLS_CHACHA20_POLY1305_SHA256", "CHACHA20")],
)
def test_the_cipher_order_follows_the_cpu(aes: bool, first13: str, first12: str) -> None:
    # With AES, OpenSSL's own TLS 1.3 order (AES-256-GCM, AES-128-GCM, ChaCha20) is kept.
    ciphers = tls.client_context(tls.TlsPolicy(), aes=aes).get_ciphers()
    assert next(c["name"] for c in ciphers if c["protocol"] == "TLSv1.3").startswith(first13)
    assert first12 in next(c["name"] for c in ciphers if c["protocol"] == "TLSv1.2")


def test_pins_parse_as_openssl_prints_them() -> None:
    digest = hashlib.sha256(b"x").digest()
    assert tls.parse_pin(digest.hex(":").upper()) == digest
    assert tls.parse_pin("sha256:" + digest.hex()) == digest
    with pytest.raises(ValueError, match="64 hex digits"):
        tls.parse_pin("abcd")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            {"host": "h", "ca_file": "/nonexistent.pem"},
            r"tls\[0\].ca_file = '/nonexistent.pem': no",
        ),
        ({"host": "h"}, r"tls\[0\]: give ca_file or pin_sha256"),
        ({"host": "h", "pin_sha256": "zz"}, r"tls\[0\].pin_sha256 = 'zz'"),
        (
            {"host": "h", "ca_file": "/etc/hostname", "pin_sha256": "00" * 32},
            r"tls\[0\]: .*not both",
        ),
    ],
)
def test_tls_entries_are_checked_at_start(entry: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match="^measurements.throughput." + problem):
        Throughput(_cfg(mode="http", download_url="https://h/f", upload_url="https://h/u",
                        tls=[entry]))  # fmt: skip


def test_https_urls_parse_with_port_443() -> None:
    target = parse_url("https://speed.example/garbage.php")
    assert (target.tls, target.port, target.host_header) == (True, 443, "speed.example")
    assert parse_url("https://h:8443/x").host_header == "h:8443"
    assert not parse_url("http://h/x").tls


def _series(rates_mbit: list[float], step_s: float = 0.2) -> list[tuple[float, int]]:
    samples, total = [(100.0, 0)], 0
    for i, rate in enumerate(rates_mbit, 1):
        total += int(rate * 1e6 / 8 * step_s)
        samples.append((100.0 + i * step_s, total))
    return samples


def test_a_rate_still_climbing_is_not_steady() -> None:
    # Reno after slow start on a long path: smooth (every 200 ms rate close to the last),
    # but 2 % more every 200 ms: not steady at 5 %.
    climbing = [100.0 * 1.02**i for i in range(12)]
    assert not steady(_series(climbing), 0.05)
    assert steady(_series([*climbing, *[130.0] * 8]), 0.05)
    assert not steady(_series([130.0] * 6), 0.05)  # less than three windows sampled


# --- against a real HTTPS nginx ---------------------------------------------------------------


@pytest.mark.integration
def test_https_with_the_servers_ca_file(
    https_server: TlsTestServer, certs: tuple[Path, Path, Path]
) -> None:
    data = Throughput(_https(https_server, {"ca_file": str(certs[0])})).run(LINK)
    assert data.download_mbps
    assert data.upload_mbps
    assert data.server_url.startswith("https://")
    assert data.tls_version == "TLSv1.3"
    assert data.tls_cipher is not None
    assert data.tls_cipher.startswith("TLS_AES_")  # this CPU has AES: AES-GCM first
    assert "GCM" in data.tls_cipher
    assert data.download_warmup_s is not None
    assert 0.3 <= data.download_warmup_s <= 0.6 + 0.25


@pytest.mark.integration
def test_without_aes_instructions_chacha20_is_chosen(
    https_server: TlsTestServer, certs: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls, "cpu_has_aes", lambda: False)
    cfg = _https(https_server, {"ca_file": str(certs[0])}, directions=["download"])
    assert Throughput(cfg).run(LINK).tls_cipher == "TLS_CHACHA20_POLY1305_SHA256"


@pytest.mark.integration
def test_a_pinned_certificate_is_trusted_and_a_wrong_pin_refused(
    https_server: TlsTestServer, certs: tuple[Path, Path, Path]
) -> None:
    der = ssl.PEM_cert_to_DER_cert(certs[0].read_text())
    pin = hashlib.sha256(der).hexdigest()
    data = Throughput(_https(https_server, {"pin_sha256": pin}, directions=["download"])).run(LINK)
    assert data.tls_version == "TLSv1.3"
    with pytest.raises(MeasurementError, match=r"https://127\.0\.0\.1:\d+/files/large\.bin: "
                       "certificate not trusted: its SHA-256 fingerprint"):  # fmt: skip
        Throughput(_https(https_server, {"pin_sha256": "00" * 32})).run(LINK)


@pytest.mark.integration
@pytest.mark.parametrize("trust", ["other-ca", "system"])
def test_a_certificate_no_trusted_ca_signed_is_refused_with_the_reason(
    https_server: TlsTestServer, certs: tuple[Path, Path, Path], trust: str
) -> None:
    entry = {"ca_file": str(certs[2])} if trust == "other-ca" else None
    with pytest.raises(MeasurementError) as caught:
        Throughput(_https(https_server, entry)).run(LINK)
    reason = caught.value.reason
    assert reason.startswith(f"no server carried the test: {https_server.tls_url('/')}")
    assert "certificate not trusted: self-signed certificate" in reason


@pytest.mark.integration
def test_every_stream_resumes_the_first_session(
    https_server: TlsTestServer, certs: tuple[Path, Path, Path]
) -> None:
    target = parse_url(https_server.tls_url("/files/large.bin"))
    client = tls.TlsClient.for_server(target.host, target.url, tls.TlsPolicy(str(certs[0])))
    endpoint, sock = reach(target, LINK, 4, 5.0)
    client.handshake(sock, 5.0).close()  # the check made before a test: a full handshake
    assert client.session is not None
    plan = Plan("download", 4, duration_s=0.5, grace_s=0.2, request_bytes=1 << 40)
    result = run_direction(
        endpoint, LINK, plan, lambda want: (request_head("GET", target), want), client
    )
    assert result.bytes > 0
    assert client.handshakes == 1 + result.connections
    assert client.resumed == result.connections


@pytest.mark.integration
def test_the_engine_refuses_an_untrusted_server_at_once(
    https_server: TlsTestServer, certs: tuple[Path, Path, Path]
) -> None:
    target = parse_url(https_server.tls_url("/files/large.bin"))
    client = tls.TlsClient.for_server(target.host, target.url, tls.TlsPolicy(str(certs[2])))
    endpoint, sock = reach(target, LINK, 4, 5.0)
    sock.close()
    plan = Plan("download", 3, duration_s=0.5, grace_s=0.2, request_bytes=1 << 40)
    with pytest.raises(ServerFailed, match="certificate not trusted"):
        run_direction(
            endpoint, LINK, plan, lambda want: (request_head("GET", target), want), client
        )


# --- the command a technician runs -------------------------------------------------------------


def _measure(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROBE_AGENT), "measure", "throughput", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip


_COMMON = """duration_s = 1.0
grace_download_s = 0.3
grace_upload_s = 0.3
warmup_max_s = 0.6
"""


@pytest.mark.integration
def test_probe_agent_measures_an_https_nginx_and_refuses_a_wrong_ca(
    https_server: TlsTestServer, certs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    def config(ca: Path) -> Path:
        path = tmp_path / f"agent-{ca.parent.name}.toml"
        path.write_text(f"""[probe]
id = "dongnai-tanphu-01"
[measurements.throughput]
mode = "http"
download_url = "{https_server.tls_url("/files/large.bin")}"
upload_url = "{https_server.tls_url("/upload")}"
ping_url = "{https_server.tls_url("/empty")}"
{_COMMON}
[[measurements.throughput.tls]]
host = "127.0.0.1"
ca_file = "{ca}"
""")
        return path

    ok = _measure(config(certs[0]))
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)["data"]
    assert (data["tls_version"], data["method"]) == ("TLSv1.3", "http")
    assert data["download_mbps"] > 0
    assert data["upload_mbps"] > 0
    refused = _measure(config(certs[2]))
    assert refused.returncode != 0 or json.loads(refused.stdout)["status"] == "failed"
    said = refused.stdout + refused.stderr
    assert f"{https_server.tls_url('/files/large.bin')}: certificate not trusted" in said


@pytest.mark.integration
def test_probe_agent_measures_an_https_librespeed_backend(
    certs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    cert, key, other = certs
    with LibreSpeedServer(tls=(cert, key)) as backend:
        servers = write_server_list(tmp_path / "servers.json", [backend.entry(1, "Biên Hòa TLS")])
        for ca, name in ((cert, "good"), (other, "wrong")):
            path = tmp_path / f"agent-{name}.toml"
            path.write_text(f"""[probe]
id = "dongnai-tanphu-01"
[measurements.throughput]
server_list = "{servers}"
{_COMMON}
[[measurements.throughput.tls]]
host = "127.0.0.1"
ca_file = "{ca}"
""")
            proc = _measure(path)
            if name == "good":
                assert proc.returncode == 0, proc.stderr
                data = json.loads(proc.stdout)["data"]
                assert (data["method"], data["server_name"]) == ("librespeed", "Biên Hòa TLS")
                assert data["server_url"].startswith("https://")
                assert data["tls_version"] == "TLSv1.3"
                assert data["download_bytes"] > 0
                assert data["upload_bytes"] > 0
            else:
                said = proc.stdout + proc.stderr
                assert f"{backend.base_url}: ping: certificate not trusted" in said or (
                    f"{backend.base_url}: certificate not trusted" in said
                ), said


# --- the receive low-water mark (fewer wake-ups on shaped lines) ---------------------------------


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_tail_below_the_low_water_mark_is_read_without_the_server_closing(
    framing: str,
) -> None:
    """A server that keeps the connection open after each response (ignoring our
    Connection: close): the last bytes of a body must still be read at once, or the stream
    would sit until the test ends."""
    size = 300 * 1024 + 17
    payload = os.urandom(size)
    if framing == "length":
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode()
        body = payload
    else:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = f"{size:x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
    # The head alone (the stream raises SO_RCVLOWAT: a big body comes), most of the body,
    # then a tail smaller than the low-water mark.
    parts = [head, body[: 270 * 1024], body[270 * 1024 :]]
    held: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.1)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                held.append(conn)  # never closed before the test ends
                conn.recv(4096)
                for part in parts:
                    conn.sendall(part)
                    time.sleep(0.05)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        port = server.getsockname()[1]
        target = parse_url(f"http://127.0.0.1:{port}/file")
        endpoint = Endpoint(target, socket.AF_INET, ("127.0.0.1", port))
        plan = Plan("download", 1, duration_s=10.0, grace_s=0.0, request_bytes=size,
                    max_bytes=4 * size)  # fmt: skip
        started = time.monotonic()
        try:
            result = run_direction(
                endpoint, LINK, plan, lambda want: (request_head("GET", target), size)
            )
        finally:
            stop.set()
            thread.join(5)
            for conn in held:
                conn.close()
    assert (result.total_bytes, result.connections, result.stopped_by) == (4 * size, 4, "cap")
    assert time.monotonic() - started < 2.0
