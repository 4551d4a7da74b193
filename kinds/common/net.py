"""Sockets bound to a link: the one place that knows how to pin traffic to FTTH or to 4G.

Every measurement that opens a socket goes through here, so `interface`, `source_address`
and a forced IP version mean the same thing everywhere; and every name it resolves passes the
run's destination guard (kinds.common.destinations), if one is installed, before a connect.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Literal

from probefleet.kinds.base import Link
from probefleet.kinds.common import destinations
from probefleet.kinds.errors import MeasurementError

if TYPE_CHECKING:
    import httpx

IpPreference = Literal[0, 4, 6]  # 0: whatever the resolver returns first
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}


def family_of(ip_version: IpPreference) -> int:
    return _FAMILY.get(ip_version, socket.AF_UNSPEC)


def version_of(family: int) -> Literal[4, 6]:
    return 6 if family == socket.AF_INET6 else 4


def resolve(
    host: str, port: int, ip_version: IpPreference = 0
) -> list[tuple[int, tuple[str, int] | tuple[str, int, int, int]]]:
    """(family, sockaddr) for ``host``, in the resolver's order; MeasurementError if none.
    Under a destination guard: only the addresses it admits (destinations.Refused if none)."""
    guard = destinations.current()
    if guard is not None:
        guard.check_name(host)
    try:
        infos = socket.getaddrinfo(host, port, family_of(ip_version), socket.SOCK_STREAM)
    except socket.gaierror as exc:
        want = f" over IPv{ip_version}" if ip_version else ""
        raise MeasurementError(f"cannot resolve {host!r}{want}: {exc.strerror}") from None
    found: list[tuple[int, tuple[str, int] | tuple[str, int, int, int]]]
    found = [(info[0], info[4]) for info in infos]  # type: ignore[misc]
    return found if guard is None else guard.admit(host, found)


def bind(sock: socket.socket, link: Link) -> None:
    """Pin ``sock`` to the link's interface and/or source address before connecting."""
    if link.interface:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, link.interface.encode())
        except PermissionError:
            raise MeasurementError(
                f"binding to interface {link.interface} needs CAP_NET_RAW "
                "(the systemd unit grants it; run as root to test by hand)"
            ) from None
        except OSError as exc:
            raise MeasurementError(
                f"cannot bind to interface {link.interface}: {exc.strerror}"
            ) from None
    if link.source_address:
        try:
            sock.bind((link.source_address, 0))
        except OSError as exc:
            raise MeasurementError(
                f"cannot bind to source address {link.source_address}: {exc.strerror}"
            ) from None


def connect(
    host: str,
    port: int,
    link: Link,
    *,
    ip_version: IpPreference = 0,
    timeout_s: float = 5.0,
) -> tuple[socket.socket, float]:
    """A connected TCP socket to ``host`` over ``link`` and the connect time in ms; tries
    each resolved address in turn (happy-eyeballs is not wanted here: we measure one path)."""
    last: str = "no address"
    for family, sockaddr in resolve(host, port, ip_version):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            bind(sock, link)
            sock.settimeout(timeout_s)
            started = time.perf_counter()
            sock.connect(sockaddr)
            return sock, (time.perf_counter() - started) * 1000.0
        except MeasurementError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = f"{sockaddr[0]}: {exc.strerror or exc}"
    raise MeasurementError(f"cannot connect to {host} port {port}: {last}")


def screen(host: str, port: int) -> None:
    """Under a destination guard, refuse ``host`` now (destinations.Refused) when a client
    that resolves it by itself (httpx) is about to connect to it; no-op otherwise."""
    if destinations.current() is not None:
        resolve(host, port)


def httpx_transport(link: Link, ip_version: IpPreference = 0) -> httpx.HTTPTransport:
    """An httpx transport for the control plane (server lists, pings) bound like ``connect``."""
    import httpx

    options = []
    if link.interface:
        options.append((socket.SOL_SOCKET, socket.SO_BINDTODEVICE, link.interface.encode()))
    local = link.source_address or {4: "0.0.0.0", 6: "::"}.get(ip_version)  # noqa: S104
    return httpx.HTTPTransport(local_address=local, socket_options=options or None, retries=0)
