"""The communes' links: a bridge plus one shaped network namespace per commune, or loopback.

    root namespace                              namespace pfdemo-<commune>
    pfdemo0 (bridge) 10.99.0.1, 2001:db8:99::1 ── veth ── eth0 / wwan0  10.99.0.1x
      Mosquitto, nginx (test server) listen here      probe-agent run (bound to eth0/wwan0)

tbf shapes each veth on both ends (each end its egress: the root end = the commune's
download, the namespace end = its upload). No namespace gets an IPv4 default route, and an
IPv6 one only while the host does not forward IPv6: the communes reach the bridge's
addresses and nothing else, so no packet can leave the machine. 2001:db8::/32 is the
documentation range (never routed on the Internet); the agent counts it as global on purpose.

Without root or iproute2 (or where namespaces cannot be created) :class:`LoopbackLinks`
runs every agent in this namespace over ``lo``, unshaped, and says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from demo.province import Commune

log = logging.getLogger(__name__)

BRIDGE = "pfdemo0"
NS_PREFIX = "pfdemo-"
VETH_PREFIX = "pfdv"
BRIDGE_V4 = "10.99.0.1"
BRIDGE_V6 = "2001:db8:99::1"
PREFIX_V4 = 24
PREFIX_V6 = 64


class LinkError(RuntimeError):
    """The bridge or a namespace could not be set up (the message says which command)."""


def _run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise LinkError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def namespaces_unavailable() -> str | None:
    """None when this process can build namespaces and shape them; else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found (Debian package iproute2)"
    probe = f"{NS_PREFIX}probe"
    made = _run(["ip", "netns", "add", probe], check=False)
    _run(["ip", "netns", "del", probe], check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    return None


@dataclass(frozen=True)
class CommuneLink:
    """Where one commune's agent runs and how it reaches the centre."""

    probe: str
    interface: str  # the interface its agent binds to
    address_v4: str
    address_v6: str | None
    netns: str | None  # None: the root namespace (loopback mode)
    shaped_mbit: float | None

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this commune's namespace (``ip netns exec`` execs it: the
        pid we get is the program's own)."""
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv


@dataclass
class NamespaceLinks:
    """The bridge and the communes' namespaces; :meth:`stop` deletes all of them."""

    mode = "netns"
    host_v4: str = BRIDGE_V4
    host_v6: str | None = BRIDGE_V6
    links: dict[str, CommuneLink] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _made_bridge: bool = False
    _made_ns: list[str] = field(default_factory=list)

    def start(self, communes: tuple[Commune, ...]) -> NamespaceLinks:
        try:
            self._clear_leftovers()
            self._bridge()
            forwarding = Path("/proc/sys/net/ipv6/conf/all/forwarding")
            v6_route = forwarding.exists() and forwarding.read_text().strip() == "0"
            if not v6_route:
                self.notes.append(
                    "this host forwards IPv6: the communes get no IPv6 default route (so "
                    "nothing can leave), and the ipv6 test reports them not 'capable'"
                )
            for index, commune in enumerate(communes):
                self._commune(index, commune, v6_route=v6_route)
        except BaseException:
            self.stop()
            raise
        return self

    def _clear_leftovers(self) -> None:
        # A previous demo killed with SIGKILL could not clean up: its names are ours.
        listed = _run(["ip", "netns", "list"], check=False).stdout.split()
        for name in listed:
            if name.startswith(NS_PREFIX):
                _run(["ip", "netns", "del", name], check=False)
                self.notes.append(f"deleted namespace {name} left by an earlier demo")
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            _run(["ip", "link", "del", BRIDGE], check=False)
            self.notes.append(f"deleted bridge {BRIDGE} left by an earlier demo")
        # A veth outlives its namespace's name while a process still runs inside it.
        for line in _run(["ip", "-o", "link", "show"], check=False).stdout.splitlines():
            name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
            if name.startswith(VETH_PREFIX):
                _run(["ip", "link", "del", name], check=False)
                self.notes.append(f"deleted link {name} left by an earlier demo")
        clash = _run(["ip", "-4", "route", "show", "to", "match", BRIDGE_V4], check=False)
        for line in clash.stdout.splitlines():
            if not line.startswith("default"):
                raise LinkError(
                    f"{BRIDGE_V4}/{PREFIX_V4} is already routed here ({line.strip()}): the "
                    "demo would hide that network; run it with --loopback instead"
                )

    def _bridge(self) -> None:
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        self._made_bridge = True
        _run(["ip", "addr", "add", f"{BRIDGE_V4}/{PREFIX_V4}", "dev", BRIDGE])
        _run(["ip", "-6", "addr", "add", f"{BRIDGE_V6}/{PREFIX_V6}", "dev", BRIDGE, "nodad"])
        _run(["ip", "link", "set", BRIDGE, "up"])

    def _commune(self, index: int, commune: Commune, *, v6_route: bool) -> None:
        ns = f"{NS_PREFIX}{commune.probe.split('-')[1][:8]}{index}"
        _run(["ip", "netns", "add", ns])
        self._made_ns.append(ns)
        outer, inner = f"{VETH_PREFIX}{index}r", f"{VETH_PREFIX}{index}n"
        _run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner])
        # The outer end lives in the root namespace until the namespace goes: deleting the
        # namespace deletes the inner end and with it the pair.
        _run(["ip", "link", "set", inner, "netns", ns])
        _run(["ip", "link", "set", outer, "master", BRIDGE])
        _run(["ip", "link", "set", outer, "up"])
        ifname = commune.interface
        nsip = ["ip", "-n", ns]
        _run([*nsip, "link", "set", inner, "name", ifname])
        _run([*nsip, "link", "set", "lo", "up"])
        v4 = f"10.99.0.{10 + index}"
        _run([*nsip, "addr", "add", f"{v4}/{PREFIX_V4}", "dev", ifname])
        v6: str | None = None
        if commune.ipv6:
            v6 = f"2001:db8:99::{10 + index:x}"
            _run([*nsip, "-6", "addr", "add", f"{v6}/{PREFIX_V6}", "dev", ifname, "nodad"])
        else:
            sysctl = f"net.ipv6.conf.{ifname}.disable_ipv6=1"
            _run(["ip", "netns", "exec", ns, "sysctl", "-qw", sysctl])
        _run([*nsip, "link", "set", ifname, "up"])
        if v6 and v6_route:
            _run([*nsip, "-6", "route", "add", "default", "via", BRIDGE_V6, "dev", ifname])
        self._shape(None, outer, commune.shaped_mbit)
        self._shape(ns, ifname, commune.shaped_mbit)
        self.links[commune.probe] = CommuneLink(
            commune.probe, ifname, v4, v6, ns, commune.shaped_mbit
        )

    @staticmethod
    def _shape(ns: str | None, dev: str, rate_mbit: float) -> None:
        # As tests/harness/netns.py: the burst holds one timer tick of traffic and at least
        # one GSO super-packet, so tbf does not undershoot its rate.
        burst = max(64 * 1024, int(rate_mbit * 1e6 / 8 / 250))
        prefix = ["ip", "netns", "exec", ns] if ns else []
        tbf = ["tbf", "rate", f"{rate_mbit}mbit", "burst", str(burst), "latency", "50ms"]
        _run([*prefix, "tc", "qdisc", "replace", "dev", dev, "root", *tbf])

    def stop(self) -> None:
        for ns in reversed(self._made_ns):
            _run(["ip", "netns", "del", ns], check=False)
        self._made_ns.clear()
        if self._made_bridge:
            _run(["ip", "link", "del", BRIDGE], check=False)
            self._made_bridge = False
        self.links.clear()

    def leftovers(self) -> list[str]:
        """Namespaces or the bridge still present (empty after a clean stop)."""
        found = [
            f"namespace {name}"
            for name in _run(["ip", "netns", "list"], check=False).stdout.split()
            if name.startswith(NS_PREFIX)
        ]
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            found.append(f"bridge {BRIDGE}")
        return found


@dataclass
class LoopbackLinks:
    """Every commune in this namespace over ``lo``: real measurements, no shaping."""

    mode = "loopback"
    host_v4: str = "127.0.0.1"
    host_v6: str | None = "::1"
    links: dict[str, CommuneLink] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def start(self, communes: tuple[Commune, ...]) -> LoopbackLinks:
        if not Path("/proc/net/if_inet6").exists():
            self.host_v6 = None
        for commune in communes:
            v6 = self.host_v6 if commune.ipv6 else None
            self.links[commune.probe] = CommuneLink(
                commune.probe, "lo", "127.0.0.1", v6, None, None
            )
        return self

    def stop(self) -> None:
        self.links.clear()

    def leftovers(self) -> list[str]:
        return []


Links = NamespaceLinks | LoopbackLinks


def make_links(force_loopback: bool) -> tuple[Links, str | None]:
    """The links to use and, when falling back to loopback, why."""
    if force_loopback:
        return LoopbackLinks(), "--loopback given"
    reason = namespaces_unavailable()
    if reason is not None:
        return LoopbackLinks(), reason
    return NamespaceLinks(), None
