"""The `dns` measurement: config rules, resolver parsing, and lookups against a real dnsmasq
(answers, NXDOMAIN, REFUSED, truncation -> TCP), a silent server (TIMEOUT within the
timeout), the "system" resolver from a resolv.conf, and `probe-agent measure dns`."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # untyped; types-jsonschema is not locked
import pytest
from dnsmasq_server import (
    RECORDS,
    Dnsmasq,
    free_dns_port,
    udp_and_tcp_port_free,
)
from probefleet.core import configkit, wire
from probefleet.kinds.base import Link
from probefleet.kinds.dns.measure import Dns, DnsConfig
from probefleet.kinds.dns.payload import DnsData, DnsQuery, DnsResult
from probefleet.kinds.dns.query import Server, parse_server
from probefleet.kinds.errors import MeasurementError

ROOT = Path(__file__).resolve().parents[3]
PROBE_AGENT = Path(sys.executable).with_name("probe-agent")


def _cfg(**options: Any) -> DnsConfig:
    options.setdefault("names", ["dual.test"])
    return configkit.build(options, DnsConfig)


def _table(data: DnsData) -> dict[tuple[str, str, str], DnsQuery]:
    return {(q.resolver, q.name, q.rrtype): q for q in data.queries}


@pytest.fixture
def silent_udp() -> Iterator[str]:
    """A UDP socket that receives queries and never answers: "127.0.0.1:port"."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dnsmasq]:
    port = free_dns_port()
    with Dnsmasq(tmp_path_factory.mktemp("dnsmasq"), ["127.0.0.1", "::1"], port) as server:
        yield server


# --- config and parsing (no network) -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "server", "label"),
    [
        ("192.0.2.53", Server("192.0.2.53", 53), "192.0.2.53"),
        ("192.0.2.53:5353", Server("192.0.2.53", 5353), "192.0.2.53:5353"),
        ("2001:db8::53", Server("2001:db8::53", 53), "2001:db8::53"),
        ("[2001:db8::53]", Server("2001:db8::53", 53), "2001:db8::53"),
        ("[2001:DB8::53]:5353", Server("2001:db8::53", 5353), "[2001:db8::53]:5353"),
        ("192.0.2.53:53", Server("192.0.2.53", 53), "192.0.2.53"),
    ],
)
def test_resolver_forms(text: str, server: Server, label: str) -> None:
    assert parse_server(text) == server
    assert server.label == label


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"resolvers": ["dns.google"]}, "measurements.dns.resolvers[0] = 'dns.google': not an IP"),
        ({"resolvers": ["system", "192.0.2.1:0"]}, "resolvers[1] = '192.0.2.1:0': port 0 is"),
        ({"resolvers": ["192.0.2.1:70000"]}, "resolvers[0] = '192.0.2.1:70000': port 70000"),
        ({"resolvers": ["2001:db8::1]:53"]}, "resolvers[0] = '2001:db8::1]:53': not an IP"),
        ({"resolvers": ["192.0.2.1", "192.0.2.1:53"]}, "resolvers[1] = '192.0.2.1:53': listed"),
        ({"names": ["dual.test", "bad name"]}, "measurements.dns.names[1] = 'bad name': not a"),
        ({"names": ["a.test", "A.test."]}, "measurements.dns.names: list each name once"),
        ({"names": [f"n{i}.test" for i in range(22)]}, "3 x 22 x 2 = 132 lookups; at most 128"),
        ({"timeout_s": 5, "max_duration_s": 2}, "measurements.dns.timeout_s = 5: longer than"),
    ],
)
def test_constructor_names_the_key(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        Dns(_cfg(**options))


def test_types_are_checked_by_the_config_loader() -> None:
    problems = configkit.problems_in({"resolvers": [], "timeout_s": 0}, DnsConfig)
    assert [(k, why) for k, _, why in problems] == [
        ("resolvers", "at least 1 entries"),
        ("timeout_s", "must be > 0.0"),
    ]


def test_defaults_are_valid_and_never_used_by_tests() -> None:
    cfg = DnsConfig()
    assert cfg.resolvers[0] == "system"
    assert cfg.resolv_conf == "/etc/resolv.conf"
    assert len(cfg.resolvers) * len(cfg.names) * 2 <= 128
    Dns(cfg)  # valid; never run here: it would query resolvers on the Internet


# --- against a real dnsmasq ----------------------------------------------------------------


@pytest.mark.integration
def test_answers_nxdomain_refused_and_truncation(dnsmasq: Dnsmasq) -> None:
    resolver = f"127.0.0.1:{dnsmasq.port}"
    names = ["dual.test", "v4only.test", "v6only.test", "nope.test", "big.test", "example.com"]
    before = dnsmasq.queries_logged()
    data = Dns(_cfg(resolvers=[resolver], names=names, timeout_s=2)).run(Link())
    got = {(q.name, q.rrtype): (q.rcode, q.answers) for q in data.queries}
    assert got == {
        ("dual.test", "A"): ("NOERROR", 2),
        ("dual.test", "AAAA"): ("NOERROR", 1),
        ("v4only.test", "A"): ("NOERROR", 1),
        ("v4only.test", "AAAA"): ("NOERROR", 0),
        ("v6only.test", "A"): ("NOERROR", 0),
        ("v6only.test", "AAAA"): ("NOERROR", 1),
        ("nope.test", "A"): ("NXDOMAIN", 0),
        ("nope.test", "AAAA"): ("NXDOMAIN", 0),
        # 40 A records do not fit 512 bytes: TC over UDP, then the full answer over TCP.
        ("big.test", "A"): ("NOERROR", len(RECORDS["big.test"])),
        ("big.test", "AAAA"): ("NOERROR", 0),
        # No upstream: dnsmasq refuses what it is not authoritative for, and forwards nothing.
        ("example.com", "A"): ("REFUSED", 0),
        ("example.com", "AAAA"): ("REFUSED", 0),
    }
    assert [(q.name, q.rrtype) for q in data.queries] == [
        (n, t) for n in names for t in ("A", "AAAA")
    ]
    assert {q.resolver for q in data.queries} == {resolver}
    for q in data.queries:
        assert q.time_ms is not None, q
        assert 0 < q.time_ms < 2000, q
    # Each lookup is one query (big.test A: one over UDP, one over TCP).
    assert dnsmasq.queries_logged() - before == len(names) * 2 + 1


@pytest.mark.integration
def test_ipv6_resolver_and_bound_links(dnsmasq: Dnsmasq) -> None:
    v6 = f"[::1]:{dnsmasq.port}"
    v4 = f"127.0.0.1:{dnsmasq.port}"
    for link in (Link(interface="lo"), Link(source_address="127.0.0.1"), Link()):
        data = Dns(_cfg(resolvers=[v6, v4])).run(link)
        table = _table(data)
        assert table[v6, "dual.test", "AAAA"].rcode == "NOERROR", link
        assert table[v6, "dual.test", "A"].answers == 2, link
        assert table[v4, "dual.test", "A"].answers == 2, link


@pytest.mark.integration
def test_an_unbindable_link_fails_the_run_instead_of_timing_out(dnsmasq: Dnsmasq) -> None:
    dns = Dns(_cfg(resolvers=[f"127.0.0.1:{dnsmasq.port}"]))
    with pytest.raises(MeasurementError, match="pf-nosuch0"):
        dns.run(Link(interface="pf-nosuch0"))
    with pytest.raises(MeasurementError, match=r"192\.0\.2\.7"):
        dns.run(Link(source_address="192.0.2.7"))  # not an address of this host


def test_a_silent_server_is_timeout_within_the_timeout(silent_udp: str) -> None:
    names = ["a.test", "b.test"]
    started = time.monotonic()
    data = Dns(_cfg(resolvers=[silent_udp], names=names, timeout_s=0.3)).run(Link())
    elapsed = time.monotonic() - started
    assert [(q.rcode, q.answers, q.time_ms) for q in data.queries] == [("TIMEOUT", 0, None)] * 4
    assert 4 * 0.3 <= elapsed < 4 * 0.3 + 0.5


def test_total_time_is_bounded_and_unsent_lookups_are_not_reported(silent_udp: str) -> None:
    names = [f"n{i}.test" for i in range(10)]
    cfg = _cfg(resolvers=[silent_udp], names=names, timeout_s=0.4, max_duration_s=1.0)
    started = time.monotonic()
    data = Dns(cfg).run(Link())
    elapsed = time.monotonic() - started
    # 0.4 + 0.4 fit in 1.0 s, a third would not: two lookups, A and AAAA of the first name.
    assert [(q.name, q.rrtype, q.rcode) for q in data.queries] == [
        ("n0.test", "A", "TIMEOUT"),
        ("n0.test", "AAAA", "TIMEOUT"),
    ]
    assert elapsed < 1.0 + 0.2


@pytest.mark.integration
def test_resolvers_are_asked_side_by_side(dnsmasq: Dnsmasq, silent_udp: str) -> None:
    good = f"127.0.0.1:{dnsmasq.port}"
    started = time.monotonic()
    data = Dns(_cfg(resolvers=[silent_udp, good], timeout_s=0.5)).run(Link())
    elapsed = time.monotonic() - started
    table = _table(data)
    assert table[good, "dual.test", "A"].rcode == "NOERROR"
    assert table[silent_udp, "dual.test", "A"].rcode == "TIMEOUT"
    assert [q.resolver for q in data.queries] == [silent_udp] * 2 + [good] * 2  # config order
    assert elapsed < 2 * 0.5 + 0.4  # the silent one's two timeouts, not more


# --- the system resolver -------------------------------------------------------------------


def _loopback_port_53() -> str:
    """A random 127.x.y.z whose port 53 is free: resolv.conf cannot name another port."""
    for _ in range(20):
        a, b, c = secrets.randbelow(254) + 1, secrets.randbelow(256), secrets.randbelow(254) + 1
        address = f"127.{a}.{b}.{c}"
        if udp_and_tcp_port_free(address, 53):
            return address
    pytest.skip("port 53 is taken on every loopback address tried (binding it needs root)")


@pytest.fixture(scope="module")
def dnsmasq_53(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dnsmasq]:
    address = _loopback_port_53()
    with Dnsmasq(tmp_path_factory.mktemp("dnsmasq53"), [address], 53) as server:
        yield server


@pytest.mark.integration
def test_system_resolver_reads_resolv_conf(dnsmasq_53: Dnsmasq, tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"# test\nsearch example.com\nnameserver {dnsmasq_53.addresses[0]}\n")
    cfg = _cfg(resolvers=["system"], names=["dual.test", "nope.test"], resolv_conf=str(resolv))
    data = Dns(cfg).run(Link())
    assert [(q.resolver, q.name, q.rrtype, q.rcode, q.answers) for q in data.queries] == [
        ("system", "dual.test", "A", "NOERROR", 2),
        ("system", "dual.test", "AAAA", "NOERROR", 1),
        # An absolute name: the search list is not tried (nope.test.example.com would be).
        ("system", "nope.test", "A", "NXDOMAIN", 0),
        ("system", "nope.test", "AAAA", "NXDOMAIN", 0),
    ]


@pytest.mark.integration
def test_system_resolver_moves_on_after_a_silent_nameserver(
    dnsmasq_53: Dnsmasq, tmp_path: Path
) -> None:
    dead = _loopback_port_53()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((dead, 53))
        resolv = tmp_path / "resolv.conf"
        resolv.write_text(f"nameserver {dead}\nnameserver {dnsmasq_53.addresses[0]}\n")
        cfg = _cfg(resolvers=["system"], resolv_conf=str(resolv), timeout_s=0.3)
        data = Dns(cfg).run(Link())
    for q in data.queries:
        assert (q.rcode, q.answers > 0) == ("NOERROR", True), q
        # The time the user waits: the dead server's timeout, then the answer.
        assert q.time_ms is not None, q
        assert 300 <= q.time_ms < 300 + 200, q


def test_unreadable_resolv_conf(tmp_path: Path, silent_udp: str) -> None:
    missing = str(tmp_path / "nope.conf")
    with pytest.raises(MeasurementError, match=r"nope\.conf"):
        Dns(_cfg(resolvers=["system"], resolv_conf=missing)).run(Link())
    # With another resolver the run goes on; the system's lookups say ERROR.
    cfg = _cfg(resolvers=["system", silent_udp], resolv_conf=missing, timeout_s=0.1)
    table = _table(Dns(cfg).run(Link()))
    assert table["system", "dual.test", "A"].rcode == "ERROR"
    assert table[silent_udp, "dual.test", "A"].rcode == "TIMEOUT"


# --- probe-agent measure dns ---------------------------------------------------------------


@pytest.mark.integration
def test_probe_agent_measure_dns_prints_a_valid_result(
    dnsmasq: Dnsmasq, silent_udp: str, tmp_path: Path
) -> None:
    resolvers = [f"127.0.0.1:{dnsmasq.port}", f"[::1]:{dnsmasq.port}", silent_udp]
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[probe]\nid = "test-dns"\nstate_dir = "{tmp_path}"\n'
        f"[measurements.dns]\nresolvers = {json.dumps(resolvers)}\n"
        'names = ["dual.test", "nope.test"]\ntimeout_s = 0.5\nmax_duration_s = 5\n',
        encoding="utf-8",
    )
    proc = subprocess.run(
        [str(PROBE_AGENT), "measure", "dns", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    schema = json.loads((ROOT / "schema" / "result.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(payload)
    result = wire.decode_result(proc.stdout)
    assert isinstance(result, DnsResult)
    assert result.status == "ok"
    assert result.data is not None
    rows = [(q.resolver, q.name, q.rrtype, q.rcode, q.answers) for q in result.data.queries]
    good = [
        ("dual.test", "A", "NOERROR", 2),
        ("dual.test", "AAAA", "NOERROR", 1),
        ("nope.test", "A", "NXDOMAIN", 0),
        ("nope.test", "AAAA", "NXDOMAIN", 0),
    ]
    silent = [(n, t, "TIMEOUT", 0) for n, t, _, _ in good]
    assert rows == [
        *[(resolvers[0], *row) for row in good],
        *[(resolvers[1], *row) for row in good],
        *[(resolvers[2], *row) for row in silent],
    ]
    timeouts = [q for q in payload["data"]["queries"] if q["rcode"] == "TIMEOUT"]
    assert len(timeouts) == 4
    assert all("time_ms" not in q for q in timeouts)  # absent, not null
