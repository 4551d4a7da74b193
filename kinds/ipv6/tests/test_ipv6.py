"""The ipv6 measurement: address/route classification, verdicts against real loopback servers,
and IPv4-only, IPv6-only, dual-stack and broken-IPv6 network namespaces."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema  # type: ignore[import-untyped]  # untyped; types-jsonschema is not locked
import msgspec
import pytest
from probefleet.agent.config import AgentConfig
from probefleet.core import configkit, wire
from probefleet.kinds.base import Link
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.ipv6 import reach
from probefleet.kinds.ipv6.local import LocalView, classify, default_routes, ipv6_addresses
from probefleet.kinds.ipv6.measure import Ipv6, Ipv6Config, Ipv6Target
from probefleet.kinds.ipv6.payload import Ipv6Check, Ipv6Data, Ipv6Result

from tests.harness import NginxTestServer, eventually, free_port
from tests.harness.netns import NetnsPair, netns_unavailable

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "schema" / "result.schema.json").read_text())


class _Addr(NamedTuple):  # the shape of psutil's snicaddr
    family: int
    address: str
    netmask: str | None
    broadcast: str | None = None
    ptp: str | None = None


def _v6(address: str, netmask: str = "ffff:ffff:ffff:ffff::") -> _Addr:
    return _Addr(socket.AF_INET6, address, netmask)


# /proc/net/ipv6_route of a real host (ULA + default via fd00::1 on eth0), plus a mobile
# link's point-to-point default, a default route that is not up, and lo's reject route.
ROUTES = """\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001    wwan0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000002    wlan0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
"""  # noqa: E501
LO_ROUTES = "\n".join(ROUTES.splitlines()[-2:])


# --- the link, from fake address lists and route tables ------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("2001:db8::1", "global"),  # documentation range: global on purpose (see classify)
        ("2a02:4780:12::5", "global"),
        ("2402:800:6371::1", "global"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fd00::2", "ULA"),
        ("fc00::1", "ULA"),
        ("::1", "loopback"),
        ("ff02::1", "multicast"),
        ("::", "unspecified"),
        ("::ffff:198.18.0.1", "IPv4-mapped"),
        ("fec0::1", "site-local"),
        ("198.18.0.1", "invalid"),
    ],
)
def test_classify(address: str, kind: str) -> None:
    assert classify(address) == kind


def test_addresses_are_listed_per_interface_with_prefix_length() -> None:
    addrs = {
        "eth0": [_Addr(socket.AF_INET, "198.18.0.2", "255.255.255.0"), _v6("2001:db8:1::5")],
        "wwan0": [_v6("fe80::2%wwan0"), _v6("2402:800::9", "ffff:ffff:ffff:ffff:ffff::")],
    }
    every = ipv6_addresses(addrs, None)
    assert [str(a) for a in every] == ["2001:db8:1::5/64", "fe80::2/64", "2402:800::9/80"]
    assert [a.kind for a in ipv6_addresses(addrs, "wwan0")] == ["link-local", "global"]
    assert ipv6_addresses(addrs, "eth9") == []


def test_default_routes_skip_reject_down_and_loopback_routes() -> None:
    assert [str(r) for r in default_routes(ROUTES, None)] == [
        "via fd00::1 dev eth0",
        "dev wwan0",
    ]
    assert [str(r) for r in default_routes(ROUTES, "wwan0")] == ["dev wwan0"]
    assert default_routes(ROUTES, "wlan0") == []  # flags 0x2: gateway, but not up
    assert default_routes(LO_ROUTES, None) == []  # ::1 and lo's unreachable default
    assert default_routes("garbage\n\n", None) == []


def _local(addrs: Mapping[str, Sequence[Any]], routes: str | None) -> LocalView:
    def table() -> str:
        if routes is None:
            raise FileNotFoundError("/proc/net/ipv6_route")
        return routes

    return LocalView(if_addrs=lambda: addrs, route_table=table)


def _closed_port_v6() -> int:
    return free_port("::1")  # nothing listens: an instant RST


def _config(**options: Any) -> Ipv6Config:
    options.setdefault("timeout_s", 1.0)
    options.setdefault("connects", 2)
    return msgspec.convert(options, Ipv6Config)


@pytest.mark.parametrize(
    ("addrs", "routes", "link", "capable", "count"),
    [
        ({"lo": [_v6("2001:db8::2")]}, LO_ROUTES, Link(), False, 1),  # only the reject route
        ({"eth0": [_v6("2001:db8::2")]}, ROUTES, Link(), True, 1),
        ({"eth0": [_v6("fd00::2"), _v6("fe80::1")]}, ROUTES, Link(), False, 0),
        ({"eth0": [_v6("2001:db8::2"), _v6("2001:db8::3")]}, None, Link(), False, 2),
        # Bound to lo: eth0's address and route do not count for it.
        ({"eth0": [_v6("2001:db8::2")]}, ROUTES, Link(interface="lo"), False, 0),
    ],
)
def test_capable_needs_a_global_address_and_a_default_route_on_the_link(
    addrs: dict[str, list[_Addr]], routes: str | None, link: Link, capable: bool, count: int
) -> None:
    target = {"url": f"http://[::1]:{_closed_port_v6()}/"}
    data = Ipv6(_config(targets=[target]), local=_local(addrs, routes)).run(link)
    assert (data.capable, data.global_addresses) == (capable, count)
    address, route = data.checks[:2]
    assert (address.check, route.check) == ("global_address", "default_route")
    assert (address.verdict == "pass") == (count > 0)
    if routes is None:
        assert route.detail == "IPv6 is disabled in this kernel"
    if not count:
        assert address.detail is not None
        assert address.detail.startswith("no global IPv6 address")
    assert data.works is False  # nothing listens on the target


def test_failed_checks_explain_what_was_found() -> None:
    addrs = {"eth0": [_v6("fd00::2"), _v6("fe80::fc:ff:fe00:1")]}
    target = {"url": f"http://[::1]:{_closed_port_v6()}/"}
    data = Ipv6(_config(targets=[target]), local=_local(addrs, "")).run(Link())
    assert data.checks[0].detail == (
        "no global IPv6 address; found fd00::2/64 (ULA), fe80::fc:ff:fe00:1/64 (link-local)"
    )
    assert data.checks[1].detail == "no IPv6 default route"


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ({"url": "ftp://x.example/"}, "targets[0].url = 'ftp://x.example/': must start with"),
        ({"url": "http:///nohost"}, "needs a host name"),
        ({"url": "http://u:p@x.example/"}, "needs a host name"),
        ({"url": "http://x.example:99999/"}, "invalid port"),
        ({"url": "http://x.example/", "v4": "2001:db8::1"}, "targets[0].v4 = '2001:db8::1'"),
        ({"url": "http://x.example/", "v6": "198.18.0.1"}, "targets[0].v6 = '198.18.0.1'"),
        ({"url": "http://198.18.0.1/"}, "an IPv4 address; give v6 too"),
    ],
)
def test_constructor_names_the_bad_key(target: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=r"^measurements\.ipv6\.") as caught:
        Ipv6(_config(targets=[target]))
    assert problem in str(caught.value)


def test_constructor_reports_every_bad_target_at_once() -> None:
    targets = [
        {"url": "http://ok.example/"},
        {"url": "gopher://a/"},
        {"url": "http://b/", "v6": "x"},
    ]
    with pytest.raises(ValueError, match=r"targets\[1\]") as caught:
        Ipv6(_config(targets=targets))
    assert "targets[1].url" in str(caught.value)
    assert "targets[2].v6" in str(caught.value)


def test_config_table_loads_from_toml_and_rejects_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[probe]\nid = "t"\n[measurements.ipv6]\nconnects = 5\ntimeout_s = 0.5\n'
        '[[measurements.ipv6.targets]]\nurl = "http://portal.test/"\nv6 = "2001:db8::1"\n'
    )
    cfg = configkit.load(path, AgentConfig, env={}).measurements.ipv6
    assert cfg.targets == [Ipv6Target(url="http://portal.test/", v6="2001:db8::1")]
    assert (cfg.connects, cfg.timeout_s, cfg.max_duration_s) == (5, 0.5, 60.0)
    path.write_text('[probe]\nid = "t"\n[measurements.ipv6]\nconnects = 0\ntargets = []\n')
    with pytest.raises(configkit.ConfigError) as caught:
        configkit.load(path, AgentConfig, env={})
    assert any("measurements.ipv6.connects = 0: must be >= 1" in p for p in caught.value.problems)
    assert any(
        "measurements.ipv6.targets" in p and "at least 1" in p for p in caught.value.problems
    )


def test_default_targets_are_the_provinces_services_by_name() -> None:
    urls = [t.url for t in Ipv6Config().targets]
    assert "https://dongnai.gov.vn/" in urls
    assert all(t.v4 == t.v6 == "" for t in Ipv6Config().targets)  # looked up, never literal
    Ipv6(Ipv6Config())  # and they validate


# --- real servers on loopback --------------------------------------------------------------


def _dual(server: NginxTestServer, path: str = "/empty") -> dict[str, str]:
    if not server.has_ipv6:
        pytest.skip("::1 is not usable on this machine")
    return {"url": f"http://portal.test:{server.port}{path}", "v4": "127.0.0.1", "v6": "::1"}


def _by_check(data: Ipv6Data, target: str | None = None) -> dict[str, Ipv6Check]:
    return {c.check: c for c in data.checks if target is None or c.target in (None, target)}


@pytest.mark.integration
def test_dual_stack_loopback_target_passes_tcp_and_http_over_both(
    http_server: NginxTestServer,
) -> None:
    data = Ipv6(_config(targets=[_dual(http_server)], connects=3)).run(Link())
    checks = _by_check(data)
    assert data.works is True
    assert checks["aaaa"].verdict == "skip"  # the address was given
    assert checks["aaaa"].detail == "not looked up: address ::1 given"
    tcp, http = checks["tcp"], checks["http"]
    assert (tcp.verdict, http.verdict) == ("pass", "pass")
    assert tcp.target == http.target == "portal.test"
    for check in (tcp, http):
        assert check.rtt_v6_ms is not None
        assert 0 < check.rtt_v6_ms < 1000
        assert check.rtt_v4_ms is not None
        assert 0 < check.rtt_v4_ms < 1000
    assert tcp.detail == (
        f"IPv6 [::1]:{http_server.port}: 3/3 connected; "
        f"IPv4 127.0.0.1:{http_server.port}: 3/3 connected"
    )
    assert http.detail == "IPv6: HTTP 200; IPv4: HTTP 200"


@pytest.mark.integration
def test_an_http_error_fails_http_but_ipv6_still_works(http_server: NginxTestServer) -> None:
    data = Ipv6(_config(targets=[_dual(http_server, "/no-such-page")])).run(Link())
    checks = _by_check(data)
    assert (checks["tcp"].verdict, checks["http"].verdict) == ("pass", "fail")
    assert checks["http"].detail == "IPv6: HTTP 404; IPv4: HTTP 404"
    assert data.works is True  # the handshake over IPv6 did succeed


def test_refused_ipv6_fails_tcp_skips_http_and_does_not_work() -> None:
    port = _closed_port_v6()
    data = Ipv6(_config(targets=[{"url": f"http://[::1]:{port}/"}])).run(Link())
    checks = _by_check(data)
    assert checks["tcp"].verdict == "fail"
    assert checks["tcp"].detail == f"IPv6 [::1]:{port}: 0/2 connected, Connection refused"
    assert checks["tcp"].rtt_v6_ms is None
    assert (checks["http"].verdict, checks["http"].detail) == ("skip", "tcp over IPv6 failed")
    assert data.works is False


@pytest.fixture
def silent_v6_server() -> Iterator[int]:
    """Completes TCP handshakes on ::1 (the kernel does, from the backlog) and never answers."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as server:
        server.bind(("::1", 0))
        server.listen(64)
        yield server.getsockname()[1]


def test_a_server_that_never_answers_fails_http_within_the_timeout(silent_v6_server: int) -> None:
    target = {"url": f"http://[::1]:{silent_v6_server}/"}
    started = time.monotonic()
    data = Ipv6(_config(targets=[target], timeout_s=0.3)).run(Link())
    assert time.monotonic() - started < 2
    checks = _by_check(data)
    assert checks["tcp"].verdict == "pass"
    assert (checks["http"].verdict, checks["http"].detail) == (
        "fail",
        "IPv6: no HTTP answer within 0.3 s",
    )
    assert checks["http"].rtt_v6_ms is None


def test_the_total_time_is_bounded_and_leftovers_are_skipped(silent_v6_server: int) -> None:
    targets = [{"url": f"http://[::1]:{silent_v6_server}/t{i}"} for i in range(6)]
    started = time.monotonic()
    data = Ipv6(_config(targets=targets, timeout_s=0.4, max_duration_s=1.0)).run(Link())
    elapsed = time.monotonic() - started
    assert elapsed < 1.6, elapsed
    verdicts = [(c.check, c.verdict) for c in data.checks]
    assert len(verdicts) == 2 + 3 * 6  # every target still gets its three verdicts
    spent = [c for c in data.checks if c.detail and "time budget spent" in c.detail]
    assert spent
    assert all(c.verdict == "skip" for c in spent)
    assert spent[-1].detail == "time budget spent (max_duration_s = 1)"
    assert data.works is True  # the first target's handshakes did succeed


def test_a_lookup_that_hangs_is_abandoned_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*_: object, **__: object) -> list[Any]:
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "late")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.monotonic()
    try:
        with pytest.raises(reach.Unreachable, match=r"AAAA lookup: no answer within 0\.2 s"):
            reach.resolve("slow.test", 6, 0.2)
    finally:
        release.set()
    assert time.monotonic() - started < 1


def test_a_link_that_cannot_be_bound_fails_the_whole_run() -> None:
    target = {"url": f"http://[::1]:{_closed_port_v6()}/"}
    with pytest.raises(MeasurementError, match="nosuch0"):
        Ipv6(_config(targets=[target])).run(Link(interface="nosuch0"))


@pytest.fixture
def tls_v6_server(tmp_path: Path) -> Iterator[tuple[int, list[tuple[str | None, bytes]]]]:
    """HTTPS on ::1 with a self-signed certificate; records (SNI, request head) per request."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=other"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    seen: list[tuple[str | None, bytes]] = []
    names: list[str | None] = []

    def remember_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = remember_sni
    listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    listener.settimeout(0.05)  # so that the loop sees ``stop``
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(5)
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        head += chunk
                    seen.append((names[-1] if names else None, head))
                    conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            except OSError:
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_https_targets_get_sni_and_host_and_ignore_the_certificate(
    tls_v6_server: tuple[int, list[tuple[str | None, bytes]]],
) -> None:
    port, seen = tls_v6_server
    target = {"url": f"https://portal.test:{port}/status?x=1", "v6": "::1"}
    data = Ipv6(_config(targets=[target], connects=1)).run(Link())
    checks = _by_check(data)
    assert checks["http"].verdict == "pass", checks["http"]
    assert checks["http"].detail == "IPv6: HTTP 204"
    assert checks["http"].rtt_v4_ms is None  # no IPv4 address to compare with
    sni, head = seen[-1]
    assert sni == "portal.test"
    assert head.startswith(b"GET /status?x=1 HTTP/1.1\r\n")
    assert f"\r\nHost: portal.test:{port}\r\n".encode() in head


# --- network namespaces: the acceptance test ---------------------------------------------

NAME_DUAL = "dual.probefleet.test"
NAME_V4 = "v4name.probefleet.test"
PORT = 8080
needs_netns = pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))


def _listening(pair: NetnsPair, proto: str, port: int) -> bool:
    out = pair.run(pair.server_ns, ["ss", "-Hln", f"-{proto}", f"sport = :{port}"]).stdout
    return bool(out.strip())


def _serve_http(pair: NetnsPair, tmp_path: Path, bind: str) -> None:
    """python's http.server in the server namespace; ``::`` listens on both versions."""
    (tmp_path / "www").mkdir(exist_ok=True)
    (tmp_path / "www" / "index.html").write_text("ok\n")
    pair.popen(
        pair.server_ns,
        [sys.executable, "-m", "http.server", "--bind", bind, "--directory",
         str(tmp_path / "www"), str(PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    eventually(lambda: _listening(pair, "t", PORT), timeout_s=10, message="http.server not up")


def _serve_dns(pair: NetnsPair, tmp_path: Path) -> str:
    """dnsmasq in the server namespace: NAME_DUAL has A and AAAA, NAME_V4 only A. Returns
    the resolv.conf that points the client at it."""
    listen = [f"--listen-address={a}" for a in (pair.server_v4, pair.server_v6) if a]
    records = [f"{NAME_DUAL},{pair.server_v4 or '198.18.0.1'},{pair.server_v6 or '2001:db8::1'}"]
    records.append(f"{NAME_V4},{pair.server_v4 or '198.18.0.1'}")
    pair.popen(
        pair.server_ns,
        ["/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
         "--no-hosts", "--bind-interfaces", *listen, "--local=/probefleet.test/",
         *(f"--host-record={r}" for r in records), f"--pid-file={tmp_path / 'dnsmasq.pid'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    eventually(lambda: _listening(pair, "u", 53), timeout_s=10, message="dnsmasq not up")
    resolver = pair.server_v6 or pair.server_v4
    path = tmp_path / "resolv.conf"
    path.write_text(f"nameserver {resolver}\noptions timeout:1 attempts:1\n")
    return str(path)


def _measure(
    pair: NetnsPair,
    tmp_path: Path,
    targets: list[dict[str, str]],
    *,
    resolv_conf: str | None = None,
    timeout_s: float = 1.0,
) -> dict[str, Any]:
    """`probe-agent measure ipv6` in the client namespace, bound to veth0; the printed JSON,
    checked against the JSON Schema and the wire decoder."""
    lines = ['[probe]\nid = "ipv6-test"', "[[interfaces]]", 'name = "veth0"', 'access = "fixed"']
    lines += ["[measurements.ipv6]", f"timeout_s = {timeout_s}", "connects = 2"]
    for target in targets:
        lines.append("[[measurements.ipv6.targets]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in target.items()]
    config = tmp_path / "agent.toml"
    config.write_text("\n".join(lines) + "\n")
    argv = [
        sys.executable,
        "-m",
        "probefleet.agent.cli",
        "measure",
        "ipv6",
        "--config",
        str(config),
    ]
    if resolv_conf:
        # A private mount namespace: the client sees our resolv.conf, the host keeps its own.
        mount = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
        argv = ["unshare", "--mount", "sh", "-c", mount, resolv_conf, *argv]
    proc = pair.run(pair.client_ns, argv, check=False, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(result)
    decoded = wire.decode_result(proc.stdout)
    assert isinstance(decoded, Ipv6Result)
    assert (decoded.status, decoded.interface, decoded.access) == ("ok", "veth0", "fixed")
    return result


def _checks(result: dict[str, Any], target: str | None = None) -> dict[str, dict[str, Any]]:
    data = result["data"]["checks"]
    return {c["check"]: c for c in data if target is None or c.get("target") in (None, target)}


@pytest.mark.netns
@needs_netns
def test_dual_stack_namespace_is_capable_and_works(tmp_path: Path) -> None:
    with NetnsPair("v6dual") as pair:
        _serve_http(pair, tmp_path, "::")
        resolv = _serve_dns(pair, tmp_path)
        targets = [{"url": f"http://{NAME_DUAL}:{PORT}/"}, {"url": f"http://{NAME_V4}:{PORT}/"}]
        result = _measure(pair, tmp_path, targets, resolv_conf=resolv)
    data = result["data"]
    assert (data["capable"], data["works"], data["global_addresses"]) == (True, True, 1)
    link = _checks(result)
    assert link["global_address"] == {
        "check": "global_address", "verdict": "pass", "detail": "2001:db8::2/64"
    }  # fmt: skip
    assert link["default_route"]["detail"] == "via 2001:db8::1 dev veth0"
    dual = _checks(result, NAME_DUAL)
    assert dual["aaaa"]["verdict"] == "pass"
    assert dual["aaaa"]["detail"] == "2001:db8::1"
    assert dual["tcp"]["verdict"] == "pass"
    assert dual["tcp"]["detail"] == (
        f"IPv6 [2001:db8::1]:{PORT}: 2/2 connected; IPv4 198.18.0.1:{PORT}: 2/2 connected"
    )
    assert dual["tcp"]["rtt_v6_ms"] > 0
    assert dual["tcp"]["rtt_v4_ms"] > 0
    assert dual["http"]["verdict"] == "pass"
    assert dual["http"]["detail"] == "IPv6: HTTP 200; IPv4: HTTP 200"
    v4name = _checks(result, NAME_V4)
    assert (v4name["aaaa"]["verdict"], v4name["aaaa"]["detail"]) == (
        "fail",
        "AAAA lookup: no AAAA record",
    )
    assert [v4name[c]["verdict"] for c in ("tcp", "http")] == ["skip", "skip"]


@pytest.mark.netns
@needs_netns
def test_ipv4_only_namespace_is_neither_capable_nor_working(tmp_path: Path) -> None:
    with NetnsPair("v6none", ipv6=False) as pair:
        _serve_http(pair, tmp_path, "0.0.0.0")
        resolv = _serve_dns(pair, tmp_path)
        result = _measure(pair, tmp_path, [{"url": f"http://{NAME_DUAL}:{PORT}/"}],
                          resolv_conf=resolv)  # fmt: skip
    data = result["data"]
    assert (data["capable"], data["works"], data["global_addresses"]) == (False, False, 0)
    checks = _checks(result)
    assert checks["global_address"]["verdict"] == "fail"
    assert checks["default_route"] == {
        "check": "default_route", "verdict": "fail", "detail": "no IPv6 default route on veth0"
    }  # fmt: skip
    # The name has an AAAA record, but this line cannot carry IPv6 to it.
    assert checks["aaaa"]["verdict"] == "pass"
    assert checks["tcp"]["verdict"] == "fail"
    assert checks["tcp"]["detail"] == (
        f"IPv6 [2001:db8::1]:{PORT}: 0/2 connected, Network is unreachable; "
        f"IPv4 198.18.0.1:{PORT}: 2/2 connected"
    )
    assert "rtt_v6_ms" not in checks["tcp"]
    assert checks["tcp"]["rtt_v4_ms"] > 0
    assert checks["http"]["verdict"] == "skip"


@pytest.mark.netns
@needs_netns
def test_ipv6_only_namespace_works_over_ipv6_while_ipv4_fails(tmp_path: Path) -> None:
    with NetnsPair("v6only", ipv4=False) as pair:
        _serve_http(pair, tmp_path, "::")
        # Literal addresses: no resolver needed (and there is no IPv4 to reach one over).
        target = {"url": f"http://portal.test:{PORT}/", "v4": "198.18.0.1", "v6": "2001:db8::1"}
        result = _measure(pair, tmp_path, [target], timeout_s=0.5)
    data = result["data"]
    assert (data["capable"], data["works"], data["global_addresses"]) == (True, True, 1)
    checks = _checks(result)
    assert checks["aaaa"]["verdict"] == "skip"
    assert checks["tcp"]["verdict"] == "pass"
    v6_part, v4_part = checks["tcp"]["detail"].split("; ")
    assert v6_part == f"IPv6 [2001:db8::1]:{PORT}: 2/2 connected"
    # Bound to veth0, the kernel tries the address on-link (ARP, unanswered) rather than
    # saying "no route": a timeout, as on a real probe bound to its interface.
    assert v4_part == f"IPv4 198.18.0.1:{PORT}: 0/2 connected, timed out"
    assert checks["tcp"]["rtt_v6_ms"] > 0
    assert "rtt_v4_ms" not in checks["tcp"]
    assert checks["http"]["verdict"] == "pass"
    assert checks["http"]["detail"] == "IPv6: HTTP 200"  # IPv4 not tried: it cannot connect


@pytest.mark.netns
@needs_netns
@pytest.mark.parametrize("fault", ["no-v6-listener", "v6-blackhole"])
def test_capable_but_broken_ipv6_is_capable_and_does_not_work(tmp_path: Path, fault: str) -> None:
    with NetnsPair("v6broken") as pair:
        if fault == "no-v6-listener":
            _serve_http(pair, tmp_path, "198.18.0.1")
            why = "Connection refused"
        else:
            _serve_http(pair, tmp_path, "::")
            # The server's answers to the client's IPv6 address vanish: a broken upstream.
            pair.run(pair.server_ns, ["ip", "-6", "route", "add", "blackhole", "2001:db8::2/128"])
            why = "timed out"
        target = {"url": f"http://portal.test:{PORT}/", "v4": "198.18.0.1", "v6": "2001:db8::1"}
        started = time.monotonic()
        result = _measure(pair, tmp_path, [target], timeout_s=0.5)
        elapsed = time.monotonic() - started
    data = result["data"]
    assert (data["capable"], data["works"]) == (True, False)
    checks = _checks(result)
    assert checks["tcp"]["verdict"] == "fail"
    assert checks["tcp"]["detail"] == (
        f"IPv6 [2001:db8::1]:{PORT}: 0/2 connected, {why}; IPv4 198.18.0.1:{PORT}: 2/2 connected"
    )
    assert checks["tcp"]["rtt_v4_ms"] > 0
    assert (checks["http"]["verdict"], checks["http"]["detail"]) == (
        "skip",
        "tcp over IPv6 failed",
    )
    assert elapsed < 10
