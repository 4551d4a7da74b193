"""Where the centre may point a measurement (kinds.common.destinations): hosts read out of
config values, the address policy, and the run-time guard behind net.resolve — a name that
resolves to the office LAN is refused after the lookup, before any connect."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from probefleet.kinds.base import Link
from probefleet.kinds.common import destinations, net
from probefleet.kinds.common.destinations import Guard, Policy, Refused, guarded
from probefleet.kinds.common.parallel import run_bounded

from tests.hostile.listener import CountingListener


@pytest.mark.parametrize(
    ("fmt", "value", "host"),
    [
        ("url", "http://Speed.Example.org:8080/x?y", "speed.example.org"),
        ("url", "//librespeed.example/backend/", "librespeed.example"),
        ("url", "http://[::1]:80/", "::1"),
        ("url", "", None),
        ("url_or_path", "/etc/probefleet/servers.json", None),
        ("service", "https://dichvucong.dongnai.gov.vn/", "dichvucong.dongnai.gov.vn"),
        ("service", "10.0.0.1:22", "10.0.0.1"),
        ("service", "[fe80::1]:443", "fe80::1"),
        ("host", "vnnic.vn.", "vnnic.vn"),
        ("host", "192.168.1.1", "192.168.1.1"),
        ("resolver", "system", None),
        ("resolver", "8.8.8.8:53", "8.8.8.8"),
        ("resolver", "2001:4860:4860::8888", "2001:4860:4860::8888"),
        ("resolver", "[::1]:5353", "::1"),
    ],
)
def test_the_host_a_config_value_names(fmt: Any, value: str, host: str | None) -> None:
    assert destinations.host_of(fmt, value) == host


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", "127.0.0.1 is loopback"),
        ("10.0.0.1", "10.0.0.1 is private"),
        ("192.168.1.1", "192.168.1.1 is private"),
        ("172.31.255.255", "172.31.255.255 is private"),
        ("169.254.169.254", "169.254.169.254 is link-local"),
        ("100.64.0.1", "100.64.0.1 is shared (CGNAT)"),
        ("224.0.0.251", "224.0.0.251 is multicast"),
        ("0.0.0.0", "0.0.0.0 is unspecified"),
        ("255.255.255.255", "255.255.255.255 is reserved"),
        ("::1", "::1 is loopback"),
        ("fd00::1", "fd00::1 is private (ULA)"),
        ("fe80::1", "fe80::1 is link-local"),
        ("::ffff:192.168.1.1", "192.168.1.1 is private"),  # IPv4-mapped: the v4 address
        ("ff02::1", "ff02::1 is multicast"),
        ("evil.example", "evil.example is not in [remote] allow_destinations"),
        ("notspeed.example.org", "notspeed.example.org is not in [remote] allow_destinations"),
    ],
)
def test_a_broad_allow_list_never_opens_the_office_lan(host: str, why: str) -> None:
    policy = Policy(["0.0.0.0/0", "::/0", "speed.example.org", "*.dongnai.gov.vn"])
    assert policy.refusal(host) == f"{why}" + (
        " ([remote] allow_private = false)" if "allow_destinations" not in why else ""
    )


def test_what_the_allow_list_does_allow() -> None:
    policy = Policy(["speed.example.org", "*.dongnai.gov.vn", "203.0.113.0/24", "10.20.0.0/16"])
    for host in (
        "speed.example.org",
        "Speed.Example.Org.",
        "a.dongnai.gov.vn",
        "x.y.dongnai.gov.vn",
    ):
        assert policy.refusal(host) is None, host
    assert policy.refusal("dongnai.gov.vn") is not None  # *.x is the subdomains only
    # Listed networks of non-public addresses are the operator's explicit choice (203.0.113/24
    # is documentation space; 10.20/16 the province's own data network).
    assert policy.refusal("203.0.113.9") is None
    assert policy.refusal("10.20.1.1") is None
    assert policy.refusal("10.21.0.1") == "10.21.0.1 is private ([remote] allow_private = false)"
    assert policy.refusal("8.8.8.8") == "8.8.8.8 is not in [remote] allow_destinations"
    assert Policy(["0.0.0.0/0"], allow_private=True).refusal("192.168.1.1") is None


@pytest.mark.parametrize("entry", ["http://x/", "a b", "10.0.0.1/33", "*.", "1.2.3"])
def test_an_allow_list_entry_that_is_nothing_known_is_an_error(entry: str) -> None:
    with pytest.raises(ValueError, match="expected a host name"):
        Policy([entry])


def _addr(ip: str, port: int = 80) -> tuple[int, tuple[str, int]]:
    return (socket.AF_INET6 if ":" in ip else socket.AF_INET, (ip, port))


def test_the_guard_keeps_only_admitted_addresses_and_remembers_them() -> None:
    guard = Guard(Policy(["*.example.org"]), trusted=["dongnai.gov.vn"])
    mixed = [_addr("10.0.0.1"), _addr("93.184.216.34")]
    assert guard.admit("speed.example.org", mixed) == [_addr("93.184.216.34")]
    # The address a lookup gave passes again as a literal (a prober connecting to it).
    assert guard.admit("93.184.216.34", [_addr("93.184.216.34")]) == [_addr("93.184.216.34")]
    with pytest.raises(Refused, match=r"speed\.example\.org resolves to 10\.0\.0\.1 is private"):
        guard.admit("speed.example.org", [_addr("10.0.0.1")])
    with pytest.raises(Refused, match=r"8\.8\.8\.8 is not in \[remote\] allow_destinations"):
        guard.admit("8.8.8.8", [_addr("8.8.8.8")])
    # The probe's own file is trusted, wherever its names resolve.
    assert guard.admit("dongnai.gov.vn", [_addr("192.168.1.1")]) == [_addr("192.168.1.1")]
    guard.trust(["router.lan"])
    assert guard.trusts("ROUTER.lan")


def test_a_name_the_policy_does_not_list_is_not_even_looked_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def lookup(host: str, *_args: Any) -> Any:
        asked.append(host)
        raise AssertionError("looked up")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    with guarded(Guard(Policy(["*.example.org"]))), pytest.raises(Refused, match=r"evil\.example"):
        net.resolve("evil.example", 80)
    assert asked == []


def test_a_listed_name_resolving_to_loopback_is_refused_before_any_connect() -> None:
    with CountingListener() as router:
        guard = Guard(Policy(["localhost"]))
        with guarded(guard), pytest.raises(Refused) as refused:
            net.connect("localhost", router.port, Link(), timeout_s=2)
        assert "localhost resolves to" in refused.value.reason
        assert "is loopback ([remote] allow_private = false)" in refused.value.reason
        with guarded(None):  # unguarded (the probe's own file): it connects
            sock, _ = net.connect("127.0.0.1", router.port, Link(), ip_version=4, timeout_s=2)
            sock.close()
    assert router.connections == 1


def test_threads_a_measurement_starts_carry_its_guard() -> None:
    guard = Guard(Policy())
    seen: list[Guard | None] = []
    with guarded(guard):
        deadline = time.monotonic() + 5
        assert run_bounded([destinations.current] * 2, deadline) == [guard, guard]
        plain = threading.Thread(target=lambda: seen.append(destinations.current()))
        plain.start()
        plain.join()
    assert seen == [None]  # a bare thread: only the process-wide fallback reaches it


def test_a_heavy_runs_guard_reaches_threads_third_party_code_starts() -> None:
    guard = Guard(Policy())
    seen: list[Guard | None] = []

    def bare() -> None:
        seen.append(destinations.current())

    with guarded(guard, process_wide=True):
        thread = threading.Thread(target=bare)
        thread.start()
        thread.join()
    thread = threading.Thread(target=bare)
    thread.start()
    thread.join()
    assert seen == [guard, None]
