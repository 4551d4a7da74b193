"""The namespace harness itself: addresses, routes, isolation, shaping, clean-up."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.harness.netns import NetnsPair, netns_unavailable

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable())),
]


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_dual_stack_pair_reaches_both_ways_and_is_removed() -> None:
    with NetnsPair("dual") as pair:
        assert {pair.client_ns, pair.server_ns} <= _namespaces()
        for version, target in ((4, pair.server_v4), (6, pair.server_v6)):
            assert target is not None
            pair.run(pair.client_ns, ["ping", f"-{version}", "-c", "1", "-W", "2", target])
        routes = pair.run(pair.client_ns, ["ip", "-6", "route", "show", "default"]).stdout
        assert f"via {pair.server_v6}" in routes
    assert not {pair.client_ns, pair.server_ns} & _namespaces()


def test_ipv4_only_pair_has_no_ipv6() -> None:
    with NetnsPair("v4only", ipv6=False) as pair:
        assert pair.server_v6 is None
        addrs = pair.run(pair.client_ns, ["ip", "-6", "addr", "show", "dev", "veth0"]).stdout
        assert "inet6" not in addrs


def test_namespaced_processes_are_killed_on_exit() -> None:
    with NetnsPair("procs", ipv6=False) as pair:
        proc = pair.popen(pair.server_ns, ["sleep", "300"])
    assert proc.poll() is not None


@pytest.mark.timeout(60)
def test_shaping_limits_the_rate() -> None:
    """A UDP-free, dependency-free check: push bytes through nc-less Python sockets."""
    with NetnsPair("shape", ipv6=False, rate_mbit=20) as pair:
        server = pair.popen(
            pair.server_ns,
            [
                "python3",
                "-c",
                "import socket;s=socket.create_server(('0.0.0.0',5001));c,_=s.accept()\n"
                "b=bytearray(1<<20)\nwhile c.recv_into(b): pass",
            ],
        )
        assert server.poll() is None
        started = time.monotonic()
        sent = pair.run(
            pair.client_ns,
            [
                "python3",
                "-c",
                "import socket,time\n"
                # The server may still be starting: retry the connect for a few seconds.
                "for _ in range(100):\n"
                " try:\n"
                f"  s=socket.create_connection(('{pair.server_v4}',5001),timeout=5); break\n"
                " except ConnectionRefusedError: time.sleep(0.05)\n"
                "b=bytes(1<<16);n=0;t=time.monotonic()\n"
                "while time.monotonic()-t<3: n+=s.send(b)\n"
                "print(n)",
            ],
            timeout=30,
        ).stdout
        elapsed = time.monotonic() - started
        mbit = int(sent) * 8 / 1e6 / 3
        # Send-buffer bytes inflate the count a little; the point is that 20 Mbit/s holds.
        assert 10 < mbit < 30, (mbit, elapsed)
