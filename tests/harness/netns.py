"""Test hosts in network namespaces: a client and a server joined by veth, optionally shaped.

Addresses come from ranges that mean "test network" (198.18.0.0/15 for benchmarking,
2001:db8::/32 for documentation); each pair is isolated in its own namespaces, so every pair
can use the same ones and nothing can reach or leave the machine. Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from .wait import eventually

SERVER_V4 = "198.18.0.1"
CLIENT_V4 = "198.18.0.2"
SERVER_V6 = "2001:db8::1"
CLIENT_V6 = "2001:db8::2"
IFNAME = "veth0"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


@functools.cache
def netns_unavailable() -> str | None:
    """None when namespaces work here; otherwise the reason to skip, for pytest.skip()."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "iproute2 (ip, tc) is not installed"
    name = f"pf-probe-{secrets.token_hex(3)}"
    try:
        made = _ip("netns", "add", name, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace: {made.stderr.strip()}"
    finally:
        _ip("netns", "del", name, check=False)
    return None


class NetnsPair:
    """Namespaces ``client_ns`` and ``server_ns``, each with interface ``veth0``; the client's
    default routes point at the server. ``rate_mbit`` shapes both directions with tbf.

        with NetnsPair("tp60", rate_mbit=60) as pair:
            pair.popen(pair.server_ns, ["nginx", ...])
            pair.run(pair.client_ns, ["curl", f"http://{pair.server_v4}/"])
    """

    def __init__(
        self, name: str, *, ipv4: bool = True, ipv6: bool = True, rate_mbit: float | None = None
    ) -> None:
        if not (ipv4 or ipv6):
            raise ValueError("a pair needs IPv4, IPv6 or both")
        tag = secrets.token_hex(2)
        self.client_ns = f"pf-{name}-{tag}-c"
        self.server_ns = f"pf-{name}-{tag}-s"
        self.client_if = self.server_if = IFNAME
        self.client_v4 = CLIENT_V4 if ipv4 else None
        self.server_v4 = SERVER_V4 if ipv4 else None
        self.client_v6 = CLIENT_V6 if ipv6 else None
        self.server_v6 = SERVER_V6 if ipv6 else None
        self.rate_mbit = rate_mbit
        self._tag = tag
        self._procs: list[subprocess.Popen[Any]] = []
        self._created: list[str] = []

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> NetnsPair:
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self) -> None:
        for ns in (self.client_ns, self.server_ns):
            _ip("netns", "add", ns)
            self._created.append(ns)
        # veth names must be unique in the root namespace while they pass through it.
        c_tmp, s_tmp = f"pfc{self._tag}", f"pfs{self._tag}"
        _ip("link", "add", c_tmp, "type", "veth", "peer", "name", s_tmp)
        _ip("link", "set", c_tmp, "netns", self.client_ns)
        _ip("link", "set", s_tmp, "netns", self.server_ns)
        for ns, tmp in ((self.client_ns, c_tmp), (self.server_ns, s_tmp)):
            self._ns_ip(ns, "link", "set", tmp, "name", IFNAME)
            self._ns_ip(ns, "link", "set", "lo", "up")
        if self.client_v4 and self.server_v4:
            self._ns_ip(self.client_ns, "addr", "add", f"{self.client_v4}/24", "dev", IFNAME)
            self._ns_ip(self.server_ns, "addr", "add", f"{self.server_v4}/24", "dev", IFNAME)
        if self.client_v6 and self.server_v6:
            for ns, addr in ((self.client_ns, self.client_v6), (self.server_ns, self.server_v6)):
                # nodad: usable at once instead of after duplicate address detection.
                self._ns_ip(ns, "-6", "addr", "add", f"{addr}/64", "dev", IFNAME, "nodad")
        else:
            for ns in (self.client_ns, self.server_ns):
                self.run(ns, ["sysctl", "-qw", f"net.ipv6.conf.{IFNAME}.disable_ipv6=1"])
        for ns in (self.client_ns, self.server_ns):
            self._ns_ip(ns, "link", "set", IFNAME, "up")
        if self.server_v4:
            self._ns_ip(self.client_ns, "route", "add", "default", "via", self.server_v4)
        if self.server_v6:
            self._ns_ip(self.client_ns, "-6", "route", "add", "default", "via", self.server_v6)
        if self.rate_mbit is not None:
            self.shape(self.rate_mbit)
        if self.server_v4:
            eventually(lambda: self._pings(4), timeout_s=10, message="veth IPv4 not up")
        if self.server_v6:
            eventually(lambda: self._pings(6), timeout_s=10, message="veth IPv6 not up")

    def _pings(self, version: int) -> bool:
        target = self.server_v4 if version == 4 else self.server_v6
        assert target is not None
        proc = self.run(
            self.client_ns, ["ping", f"-{version}", "-c", "1", "-W", "1", target], check=False
        )
        return proc.returncode == 0

    def stop(self) -> None:
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._procs.clear()
        for ns in reversed(self._created):
            _ip("netns", "del", ns, check=False)  # takes the veth ends with it
        self._created.clear()

    def __enter__(self) -> NetnsPair:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- use -------------------------------------------------------------------------------

    def _ns_ip(self, ns: str, *args: str) -> None:
        _ip("-n", ns, *args)

    def shape(self, rate_mbit: float) -> None:
        """tbf on both veth ends (each shapes its egress): the link runs at ``rate_mbit``."""
        rate_bps = rate_mbit * 1e6
        # Burst must hold at least one timer tick of traffic and one GSO super-packet.
        burst = max(64 * 1024, int(rate_bps / 8 / 250))
        for ns in (self.client_ns, self.server_ns):
            self._ns_ip_tc(
                ns,
                "qdisc",
                "replace",
                "dev",
                IFNAME,
                "root",
                "tbf",
                "rate",
                f"{rate_mbit}mbit",
                "burst",
                str(burst),
                "latency",
                "50ms",
            )
        self.rate_mbit = rate_mbit

    def _ns_ip_tc(self, ns: str, *args: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", ns, "tc", *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=20,
        )

    def run(
        self, ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 120, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to completion inside namespace ``ns``; output captured as text."""
        kw.setdefault("capture_output", True)
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv], check=check, text=True, timeout=timeout, **kw
        )

    def popen(self, ns: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``ns`` in its own process group; killed by stop()."""
        proc: subprocess.Popen[Any] = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], start_new_session=True, **kw
        )
        self._procs.append(proc)
        return proc
