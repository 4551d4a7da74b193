"""What the probe itself knows about IPv6: its global addresses and its default routes.

Pure functions over psutil-shaped address lists and the text of ``/proc/net/ipv6_route``,
plus :class:`LocalView`, the seam that reads the real ones (tests pass their own).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROUTE_TABLE = Path("/proc/net/ipv6_route")

_ULA = ipaddress.IPv6Network("fc00::/7")
# Route flags from linux/ipv6_route.h.
_RTF_UP = 0x0001
_RTF_GATEWAY = 0x0002
_RTF_REJECT = 0x0200


def classify(address: str) -> str:
    """``"global"`` or why an IPv6 address is not global ("link-local", "ULA" ...).

    2001:db8::/32 (documentation) counts as global on purpose: the namespace tests use it,
    and no real network routes it, so it cannot make a probe look better than it is."""
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return "invalid"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_multicast:
        return "multicast"
    if ip.is_link_local:
        return "link-local"
    if ip.is_site_local:  # fec0::/10, deprecated by RFC 3879 but still seen
        return "site-local"
    if ip in _ULA:
        return "ULA"
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped"
    return "global"


def _prefix_len(netmask: str | None) -> int | None:
    if not netmask:
        return None
    try:
        return bin(int(ipaddress.IPv6Address(netmask))).count("1")
    except ValueError:
        return None


@dataclass(frozen=True)
class Address:
    interface: str
    address: str  # without any %scope suffix
    prefix_len: int | None
    kind: str  # classify()'s answer

    def __str__(self) -> str:
        suffix = f"/{self.prefix_len}" if self.prefix_len is not None else ""
        return f"{self.address}{suffix}"


def ipv6_addresses(if_addrs: Mapping[str, Sequence[Any]], interface: str | None) -> list[Address]:
    """Every IPv6 address of ``interface`` (or of all interfaces when None), classified.
    ``if_addrs`` is shaped like ``psutil.net_if_addrs()``: name -> [(family, address,
    netmask, ...)]."""
    found = []
    for name, entries in if_addrs.items():
        if interface is not None and name != interface:
            continue
        for entry in entries:
            if entry.family != socket.AF_INET6:
                continue
            address = str(entry.address).split("%", 1)[0]
            found.append(Address(name, address, _prefix_len(entry.netmask), classify(address)))
    return found


@dataclass(frozen=True)
class DefaultRoute:
    interface: str
    gateway: str | None  # None: a point-to-point link (``default dev wwan0``)

    def __str__(self) -> str:
        via = f"via {self.gateway} " if self.gateway else ""
        return f"{via}dev {self.interface}"


def default_routes(table: str, interface: str | None) -> list[DefaultRoute]:
    """Usable ::/0 routes in ``/proc/net/ipv6_route`` text, on ``interface`` when given.

    Skips what the kernel lists but cannot forward through: routes not up, reject routes
    (the "unreachable default" every kernel keeps on lo) and anything on lo."""
    routes = []
    for line in table.splitlines():
        fields = line.split()
        if len(fields) != 10:
            continue
        dest, dest_len, _src, _src_len, hop, _metric, _ref, _use, flags_hex, dev = fields
        try:
            flags = int(flags_hex, 16)
            is_default = int(dest, 16) == 0 and int(dest_len, 16) == 0
        except ValueError:
            continue
        if not is_default or not flags & _RTF_UP or flags & _RTF_REJECT or dev == "lo":
            continue
        if interface is not None and dev != interface:
            continue
        gateway = None
        if flags & _RTF_GATEWAY:
            gateway = str(ipaddress.IPv6Address(int(hop, 16)))
        routes.append(DefaultRoute(dev, gateway))
    return routes


def _psutil_addrs() -> Mapping[str, Sequence[Any]]:
    import psutil  # lazily: a probe starts fast

    return psutil.net_if_addrs()


def _read_route_table() -> str:
    return ROUTE_TABLE.read_text(encoding="ascii")


@dataclass(frozen=True)
class LocalView:
    """Where the addresses and routes come from; unit tests inject fakes here."""

    if_addrs: Callable[[], Mapping[str, Sequence[Any]]] = _psutil_addrs
    route_table: Callable[[], str] = _read_route_table
