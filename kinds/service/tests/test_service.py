"""The `service` measurement: config rules, certificate expiry from DER, and checks against
real servers: nginx over HTTP, nginx over HTTPS with self-signed certificates (valid,
expired, wrong name), scripted TCP servers (delays, chunked and framed bodies, silence), a
closed port, a bound link, and `probe-agent measure service`."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # untyped; types-jsonschema is not locked
import pytest
from probefleet.core import configkit, wire
from probefleet.kinds.base import Link
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.service.measure import Service, ServiceConfig
from probefleet.kinds.service.payload import ServiceCheck, ServiceData, ServiceResult
from probefleet.kinds.service.x509 import not_after

from tests.harness import NginxTestServer, free_port
from tests.harness.tls_nginx import TlsNginx, make_cert

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "schema" / "result.schema.json").read_text())


def _service(*checks: dict[str, Any], **options: Any) -> Service:
    return Service(configkit.build({"checks": list(checks), **options}, ServiceConfig))


def _run(*checks: dict[str, Any], link: Link | None = None, **options: Any) -> list[ServiceCheck]:
    data = _service(*checks, **options).run(link or Link())
    # What the agent would publish must pass the wire's own checks.
    wire.decode(wire.encode(data), ServiceData)
    return data.checks


def _one(**check: Any) -> ServiceCheck:
    check.setdefault("name", "svc")
    check.setdefault("timeout_s", 3.0)
    max_body = check.pop("max_body_bytes", 262_144)
    (result,) = _run(check, max_body_bytes=max_body)
    return result


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _days_until(when: dt.datetime) -> float:
    return (when - dt.datetime.now(dt.UTC)).total_seconds() / 86_400


# --- config (no network) --------------------------------------------------------------------


def test_defaults_are_the_provinces_services_and_tests_never_use_them() -> None:
    checks = ServiceConfig().checks
    assert [(c.name, c.target, c.protocol) for c in checks] == [
        ("dichvucong", "https://dichvucong.dongnai.gov.vn/", "https"),
        ("portal", "https://dongnai.gov.vn/", "https"),
    ]
    plans = Service(ServiceConfig()).plans
    assert [(p.host, p.port, p.path) for p in plans] == [
        ("dichvucong.dongnai.gov.vn", 443, "/"),
        ("dongnai.gov.vn", 443, "/"),
    ]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "http://127.0.0.1:8080/a?b=1#frag",
            ("http", "127.0.0.1", 8080, "/a?b=1", "127.0.0.1:8080"),
        ),
        ("https://example.test", ("https", "example.test", 443, "/", "example.test")),
        ("http://[::1]/x", ("http", "::1", 80, "/x", "[::1]")),
        ("db.example.test:5432", ("tcp", "db.example.test", 5432, "/", "")),
        ("[2001:db8::5]:443", ("tcp", "2001:db8::5", 443, "/", "")),
    ],
)
def test_protocol_is_inferred_and_targets_parsed(
    target: str, expected: tuple[str, str, int, str, str]
) -> None:
    (plan,) = _service({"name": "x", "target": target}).plans
    assert (plan.protocol, plan.host, plan.port, plan.path, plan.host_header) == expected


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"target": "https://x.test/", "protocol": "http"}, "protocol 'http' needs a http:// URL"),
        ({"target": "http://x.test/", "protocol": "tcp"}, "a tcp target is host:port, no URL"),
        ({"target": "ftp://x.test/"}, "only http:// and https:// URLs (tcp: host:port)"),
        ({"target": "x.test"}, "must be host:port"),
        ({"target": "x.test:0"}, "port must be 1-65535"),
        ({"target": "::1:80"}, "in brackets"),
        ({"target": "[x.test]:80"}, "must hold an IPv6 address"),
        ({"target": "http://x.test:99999/"}, "invalid port"),
        ({"target": "http://user:pw@x.test/"}, "no user:password@"),
        ({"target": "http://x.test/", "verify": False}, "only https checks verify"),
        ({"target": "http://x.test/", "ca_file": "/ca.pem"}, "only for https checks"),
        ({"target": "x.test:22", "expect_status": [200]}, "a tcp check has no HTTP status"),
        ({"target": "https://x.test/", "ca_file": "ca.pem"}, "give an absolute path"),
        ({"target": "https://x.test/", "ca_file": "/ca.pem", "verify": False}, "useless"),
    ],
)
def test_constructor_names_the_check_and_key(check: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=r"measurements\.service\.checks\[1\]\.") as caught:
        _service({"name": "ok", "target": "x.test:1"}, {"name": "bad", **check})
    assert message in str(caught.value)


def test_names_are_unique_and_timeouts_fit_the_interval() -> None:
    with pytest.raises(ValueError, match=r"checks\[1\]\.name = 'a': used twice"):
        _service({"name": "a", "target": "x.test:1"}, {"name": "a", "target": "x.test:2"})
    too_slow = [{"name": f"c{i}", "target": "x.test:1", "timeout_s": 40.0} for i in range(3)]
    with pytest.raises(ValueError, match="add up to 120 s, more than interval_s = 100"):
        _service(*too_slow, interval_s=100)
    _service(*too_slow, interval_s=120)


def test_the_config_loader_checks_types_and_ranges() -> None:
    with pytest.raises(configkit.ConfigError) as caught:
        configkit.build(
            {
                "checks": [
                    {"name": "has space", "target": "x:1", "timeout_s": 0, "expect_status": [99]}
                ],
                "max_body_bytes": -1,
            },
            ServiceConfig,
        )
    text = "\n".join(caught.value.problems)
    for key in ("checks[0].name", "checks[0].timeout_s", "checks[0].expect_status[0]"):
        assert key in text
    assert "max_body_bytes = -1: must be >= 0" in text
    with pytest.raises(configkit.ConfigError, match="at least 1 entries"):
        configkit.build({"checks": []}, ServiceConfig)


# --- certificate expiry from DER (real certificates from the openssl CLI) ------------------


@pytest.mark.parametrize(
    "expiry",
    [
        dt.datetime(2020, 1, 31, 12, 0, 1, tzinfo=dt.UTC),  # UTCTime
        dt.datetime(2051, 6, 30, 23, 59, 59, tzinfo=dt.UTC),  # GeneralizedTime (2050 and on)
    ],
)
def test_not_after_is_read_from_der(tmp_path: Path, expiry: dt.datetime) -> None:
    cert, _ = make_cert(
        tmp_path, not_before=dt.datetime(2019, 1, 1, tzinfo=dt.UTC), not_after=expiry
    )
    assert not_after(ssl.PEM_cert_to_DER_cert(cert.read_text())) == expiry


@pytest.mark.parametrize(
    "der", [b"", b"\x30\x03\x02\x01\x01", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"]
)
def test_not_after_refuses_what_is_not_a_certificate(der: bytes) -> None:
    with pytest.raises(ValueError, match=r"DER|certificate|tbs|short"):
        not_after(der)


# --- scripted TCP servers ---------------------------------------------------------------------

Step = tuple[str, Any]  # ("send", bytes) | ("wait", seconds) | ("close", None)


class Scripted:
    """A real TCP listener on 127.0.0.1 that reads one request head per connection, then
    plays ``script``; with ``answer=False`` it accepts and never reads nor answers. Whatever
    the script leaves open stays open until the test ends."""

    def __init__(self, script: list[Step], *, answer: bool = True) -> None:
        self.script = script
        self.answer = answer
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self._open.append(conn)
            if self.answer:
                threading.Thread(target=self._play, args=(conn,), daemon=True).start()

    def _play(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                return
            head += data
        self.requests.append(head)
        for action, arg in self.script:
            if action == "wait" and self._stop.wait(arg):
                return
            if action == "send":
                conn.sendall(arg)
            if action == "close":
                conn.close()
                return

    def __enter__(self) -> Scripted:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._open:
            conn.close()
        self._server.close()


def test_timings_are_cumulative_and_follow_the_servers_delays() -> None:
    script: list[Step] = [
        ("wait", 0.3),
        ("send", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"),
        ("wait", 0.2),
        ("send", b"67890"),
    ]
    with Scripted(script) as server:
        check = _one(target=f"http://127.0.0.1:{server.port}/status?x=1")
    assert check.up, check
    assert check.status_code == 200
    assert check.connect_ms is not None, check
    assert check.ttfb_ms is not None, check
    assert check.total_ms is not None, check
    # Lower bounds: the server's delays are in; upper bounds loose for a busy CI machine.
    assert 0 < check.connect_ms < 100, check
    assert 300 <= check.ttfb_ms < 700, check
    assert check.ttfb_ms + 200 <= check.total_ms < check.ttfb_ms + 600, check
    request = server.requests[0].decode()
    assert request.startswith("GET /status?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in request
    assert "Connection: close\r\n" in request
    assert "User-Agent: probefleet/" in request


def test_framed_bodies_end_without_the_server_closing() -> None:
    # The connections stay open: only the framing can tell the body is complete.
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    with (
        Scripted([("send", chunked), ("wait", 0.1), ("send", b"6\r\n world\r\n0\r\n\r\n")]) as a,
        Scripted([("send", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")]) as b,
        Scripted([("send", b"HTTP/1.1 204 No Content\r\n\r\n")]) as c,
        Scripted(
            [("send", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbye"), ("close", None)]
        ) as d,
    ):
        checks = _run(
            *({"name": n, "target": f"http://127.0.0.1:{s.port}/", "timeout_s": 2.0} for n, s in
              (("chunked", a), ("length", b), ("nocontent", c), ("eof", d)))
        )  # fmt: skip
    for check in checks:
        assert check.up, check
        assert check.total_ms is not None, check
        assert check.total_ms < 1000, check
    assert checks[3].status_code == 200  # the interim 100 was skipped


def test_max_body_bytes_bounds_the_read() -> None:
    # 10 MB announced, 100 kB sent, then silence: a check that reads at most 50 kB is up,
    # one that wants more waits for bytes that never come.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n"
    with Scripted([("send", head + b"x" * 100_000)]) as server:
        target = f"http://127.0.0.1:{server.port}/"
        small = _one(target=target, max_body_bytes=50_000, timeout_s=2.0)
        head_only = _one(target=target, max_body_bytes=0, timeout_s=2.0)
        large = _one(target=target, max_body_bytes=200_000, timeout_s=1.0)
    assert small.up, small
    assert head_only.up, head_only
    assert not large.up
    assert (large.status_code, large.total_ms) == (200, None)
    assert large.ttfb_ms is not None
    assert large.error == "timed out after 1 s reading the body"


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ([("close", None)], "connection closed without a response"),
        ([("send", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), ("close", None)],
         "connection closed after 3 bytes of the body"),
        ([("send", b"SSH-2.0-OpenSSH_9.2\r\n\r\n")], "bad response: not an HTTP/1.x response"),
        ([("send", b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000)], "response head longer than"),
    ],
)  # fmt: skip
def test_broken_answers_are_down_with_a_reason(script: list[Step], error: str) -> None:
    with Scripted(script) as server:
        check = _one(target=f"http://127.0.0.1:{server.port}/", timeout_s=2.0)
    assert not check.up
    assert check.error is not None, check
    assert check.error.startswith(error), check


# --- real nginx over HTTP ---------------------------------------------------------------------


@pytest.mark.integration
def test_nginx_200_and_404(http_server: NginxTestServer) -> None:
    body_url = http_server.add_file("service-page.html", data=b"<html>" + b"x" * 300_000)
    ok, empty, missing, expected_404 = _run(
        {"name": "page", "target": body_url, "protocol": "http", "timeout_s": 3.0},
        {"name": "empty", "target": http_server.empty_url, "timeout_s": 3.0},
        {"name": "missing", "target": f"{http_server.base_url}/no/such/page", "timeout_s": 3.0},
        {
            "name": "gone-on-purpose",
            "target": f"{http_server.base_url}/no/such/page",
            "expect_status": [404, 410],
            "timeout_s": 3.0,
        },
    )
    for check in (ok, empty):
        assert (check.up, check.status_code, check.error) == (True, 200, None), check
        assert check.connect_ms is not None, check
        assert check.ttfb_ms is not None, check
        assert check.total_ms is not None
        assert 0 < check.connect_ms <= check.ttfb_ms <= check.total_ms < 3000
        assert check.tls_days_left is None
    assert (missing.up, missing.status_code) == (False, 404)
    assert missing.error == "HTTP 404 Not Found (expected 2xx or 3xx)"
    assert missing.total_ms is not None  # the whole answer was read and timed
    assert (expected_404.up, expected_404.status_code, expected_404.error) == (True, 404, None)


@pytest.mark.integration
def test_tcp_checks_over_ipv4_and_ipv6(http_server: NginxTestServer) -> None:
    checks = [{"name": "v4", "target": f"127.0.0.1:{http_server.port}", "timeout_s": 2.0}]
    if http_server.has_ipv6:
        checks.append({"name": "v6", "target": f"[::1]:{http_server.port}", "timeout_s": 2.0})
    for check in _run(*checks):
        assert check.up, check
        assert check.protocol == "tcp"
        assert check.connect_ms is not None
        assert 0 < check.connect_ms < 100
        assert (check.status_code, check.ttfb_ms) == (None, None)


@pytest.mark.integration
def test_a_bound_link(http_server: NginxTestServer) -> None:
    check = {"name": "lo", "target": http_server.empty_url, "timeout_s": 2.0}
    (bound,) = _run(check, link=Link(interface="lo"))
    assert bound.up, bound
    # A link that cannot be bound says nothing about the service: the run fails instead.
    with pytest.raises(MeasurementError, match="interface nosuchif0"):
        _service(check).run(Link(interface="nosuchif0"))


@pytest.mark.integration
def test_a_source_address_picks_its_ip_version(http_server: NginxTestServer) -> None:
    if not http_server.has_ipv6:
        pytest.skip("::1 is not usable on this machine")
    v4_source = Link(source_address="127.0.0.1")
    v4, v6 = _run(
        {"name": "v4", "target": f"{http_server.base_url}/empty", "timeout_s": 2.0},
        {"name": "v6", "target": f"{http_server.base_url_v6}/empty", "timeout_s": 2.0},
        link=v4_source,
    )
    assert v4.up, v4
    assert not v6.up
    assert v6.error == "no IPv4 address (the link's source address is IPv4)"


@pytest.mark.integration
def test_https_to_a_plain_http_server(http_server: NginxTestServer) -> None:
    check = _one(target=f"https://127.0.0.1:{http_server.port}/empty", verify=False)
    assert not check.up
    assert check.error == "TLS handshake failed: wrong version number"
    assert check.tls_days_left is None


# --- failures of the network ------------------------------------------------------------------


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A listener whose accept queue is full: Linux drops further SYNs, so connects time out,
    like a host behind a firewall that drops instead of refusing."""
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        server.listen(0)  # room for one pending connection
        port = server.getsockname()[1]
        filler.connect(("127.0.0.1", port))  # ... taken, and never accepted
        yield port


def test_a_host_that_drops_syns_times_out_connecting(black_hole: int) -> None:
    started = time.monotonic()
    check = _one(target=f"127.0.0.1:{black_hole}", timeout_s=0.5)
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.5, elapsed
    assert (check.up, check.connect_ms) == (False, None)
    assert check.error == "timed out after 0.5 s while connecting"


def test_a_closed_port_is_refused_at_once() -> None:
    port = free_port()
    started = time.monotonic()
    http, tcp = _run(
        {"name": "http", "target": f"http://127.0.0.1:{port}/", "timeout_s": 5.0},
        {"name": "tcp", "target": f"127.0.0.1:{port}", "timeout_s": 5.0},
    )
    assert time.monotonic() - started < 1.0
    for check in (http, tcp):
        assert (check.up, check.error, check.connect_ms) == (False, "connection refused", None)


@pytest.mark.parametrize(
    ("scheme", "phase"),
    [("http", "waiting for the response"), ("https", "during the TLS handshake")],
)
def test_a_silent_listener_times_out_within_timeout_s(scheme: str, phase: str) -> None:
    with Scripted([], answer=False) as server:
        started = time.monotonic()
        check = _one(target=f"{scheme}://127.0.0.1:{server.port}/", timeout_s=0.8)
        elapsed = time.monotonic() - started
    assert 0.75 <= elapsed < 1.8, elapsed
    assert not check.up
    assert check.error == f"timed out after 0.8 s {phase}"
    assert check.connect_ms is not None  # it did connect
    assert (check.ttfb_ms, check.tls_days_left) == (None, None)


def test_an_unresolvable_name_is_down_with_the_resolvers_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No query may leave this machine: the resolver is replaced, the failure is the real one.
    def no_such_name(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    check = _one(target="https://nosuch.dongnai.invalid/")
    assert not check.up
    assert check.error == "cannot resolve 'nosuch.dongnai.invalid': Name or service not known"


# --- real nginx over HTTPS with self-signed certificates -------------------------------------


class TlsServers:
    def __init__(self, root: Path) -> None:
        now = _now()
        self.valid_until = now + dt.timedelta(days=30)
        self.expired_on = dt.datetime(2020, 1, 31, tzinfo=dt.UTC)
        self.cert, key = make_cert(
            root / "valid", not_before=now - dt.timedelta(hours=1), not_after=self.valid_until
        )
        self.expired_cert, expired_key = make_cert(
            root / "expired", not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            not_after=self.expired_on,
        )  # fmt: skip
        self.other_cert, other_key = make_cert(
            root / "other", not_before=now - dt.timedelta(hours=1), not_after=self.valid_until,
            san="DNS:other.example.test",
        )  # fmt: skip
        self.valid = TlsNginx(root / "nginx-valid", self.cert, key)
        self.expired = TlsNginx(root / "nginx-expired", self.expired_cert, expired_key)
        self.other = TlsNginx(root / "nginx-other", self.other_cert, other_key)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServers]:
    servers = TlsServers(tmp_path_factory.mktemp("tls"))
    with servers.valid, servers.expired, servers.other:
        yield servers


@pytest.mark.integration
def test_https_verified_against_the_provinces_own_ca(tls: TlsServers) -> None:
    check = _one(target=f"{tls.valid.base_url}/", ca_file=str(tls.cert))
    assert (check.up, check.status_code, check.error) == (True, 200, None), check
    assert check.tls_days_left is not None
    assert 29.9 <= check.tls_days_left <= 30.0
    assert check.tls_days_left == pytest.approx(_days_until(tls.valid_until), abs=0.001)
    assert check.connect_ms is not None, check
    assert check.ttfb_ms is not None, check
    assert check.total_ms is not None
    assert check.connect_ms < check.ttfb_ms <= check.total_ms


@pytest.mark.integration
def test_https_unknown_ca_is_down_but_the_expiry_is_still_reported(tls: TlsServers) -> None:
    check = _one(target=f"{tls.valid.base_url}/")  # the system store does not know our CA
    assert not check.up
    assert check.error == "certificate verify failed: self-signed certificate"
    assert (check.status_code, check.ttfb_ms) == (None, None)
    assert check.connect_ms is not None
    assert check.tls_days_left is not None
    assert 29.9 <= check.tls_days_left <= 30.0


@pytest.mark.integration
def test_https_without_verification_still_reads_the_expiry(tls: TlsServers) -> None:
    check = _one(target=f"{tls.valid.base_url}/", verify=False)
    assert (check.up, check.status_code) == (True, 200), check
    assert check.tls_days_left is not None
    assert 29.9 <= check.tls_days_left <= 30.0


@pytest.mark.integration
def test_an_expired_certificate_has_negative_days(tls: TlsServers) -> None:
    expected = _days_until(tls.expired_on)
    verified = _one(target=f"{tls.expired.base_url}/", ca_file=str(tls.expired_cert))
    assert not verified.up
    assert verified.error == "certificate verify failed: certificate has expired"
    assert verified.tls_days_left is not None
    assert verified.tls_days_left == pytest.approx(expected, abs=0.001)
    assert verified.tls_days_left < -1000
    unverified = _one(target=f"{tls.expired.base_url}/", verify=False)
    assert unverified.up, unverified
    assert unverified.tls_days_left == pytest.approx(expected, abs=0.001)


@pytest.mark.integration
def test_a_certificate_for_another_name_fails_verification(tls: TlsServers) -> None:
    check = _one(target=f"{tls.other.base_url}/", ca_file=str(tls.other_cert))
    assert not check.up
    assert check.error is not None
    assert check.error.startswith("certificate verify failed: IP address mismatch")


@pytest.mark.integration
def test_https_404_and_an_unloadable_ca_file(tls: TlsServers, tmp_path: Path) -> None:
    missing, not_pem, ok = _run(
        {"name": "nf", "target": f"{tls.valid.base_url}/gone", "ca_file": str(tls.cert)},
        {"name": "bad-ca", "target": f"{tls.valid.base_url}/", "ca_file": str(tmp_path / "no.pem")},
        {"name": "ok", "target": f"{tls.valid.base_url}/", "ca_file": str(tls.cert)},
    )
    assert (missing.up, missing.status_code) == (False, 404)
    assert missing.tls_days_left is not None
    assert not_pem.up is False
    assert not_pem.error is not None
    assert not_pem.error.startswith(f"cannot load ca_file {tmp_path / 'no.pem'}")
    assert ok.up  # one broken check does not spoil the others


# --- the command a technician types -----------------------------------------------------------


@pytest.mark.integration
def test_probe_agent_measure_service_prints_a_valid_result(
    tmp_path: Path, http_server: NginxTestServer, tls: TlsServers
) -> None:
    closed = free_port()
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
[probe]
id = "service-test"
[measurements.service]
max_body_bytes = 1024
[[measurements.service.checks]]
name = "web"
target = "{http_server.empty_url}"
protocol = "http"
timeout_s = 3.0
[[measurements.service.checks]]
name = "tls"
target = "{tls.valid.base_url}/"
protocol = "https"
ca_file = "{tls.cert}"
timeout_s = 3.0
[[measurements.service.checks]]
name = "closed"
target = "127.0.0.1:{closed}"
protocol = "tcp"
timeout_s = 3.0
"""
    )
    argv = [
        sys.executable,
        "-m",
        "probefleet.agent.cli",
        "measure",
        "service",
        "--config",
        str(config),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(result)
    decoded = wire.decode_result(proc.stdout)
    assert isinstance(decoded, ServiceResult)
    assert decoded.status == "ok"
    assert decoded.data is not None
    web, secure, down = decoded.data.checks
    assert (web.name, web.up, web.status_code) == ("web", True, 200)
    assert (secure.name, secure.up, secure.protocol) == ("tls", True, "https")
    assert secure.tls_days_left is not None
    assert 29.9 <= secure.tls_days_left <= 30.0
    assert (down.name, down.up, down.error) == ("closed", False, "connection refused")
    assert result["data"]["checks"][2] == {
        "name": "closed", "target": f"127.0.0.1:{closed}", "protocol": "tcp", "up": False,
        "error": "connection refused",
    }  # fmt: skip


# --- under the destination guard (a remote config's names; kinds.common.destinations) -----


def test_a_remote_name_resolving_to_loopback_is_down_and_never_reached() -> None:
    from probefleet.kinds.common.destinations import Guard, Policy, guarded

    from tests.hostile.listener import CountingListener

    with CountingListener() as router, guarded(Guard(Policy(["localhost", "0.0.0.0/0"]))):
        checks = _run(
            {"name": "router", "target": f"http://localhost:{router.port}/", "timeout_s": 3.0},
            {"name": "router-tcp", "target": f"127.0.0.1:{router.port}", "timeout_s": 3.0},
        )
    assert [c.up for c in checks] == [False, False]
    assert checks[0].error is not None
    assert "localhost resolves to" in checks[0].error
    assert "loopback ([remote] allow_private = false)" in checks[0].error
    assert (
        checks[1].error
        == "refused: 127.0.0.1 is loopback ([remote] allow_private = false); nothing was sent"
    )
    assert router.connections == 0
