"""One server address per test, chosen once: every stream and ping then takes the same path."""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from typing import Literal

from probefleet.kinds.base import Link
from probefleet.kinds.common import net
from probefleet.kinds.common.http import Target

SockAddr = tuple[str, int] | tuple[str, int, int, int]


@dataclass(frozen=True)
class Endpoint:
    """A URL and the address it resolved to (the first that accepted a connection)."""

    target: Target
    family: int
    sockaddr: SockAddr

    @property
    def ip_version(self) -> Literal[4, 6]:
        return net.version_of(self.family)


def effective_ip_version(link: Link, ip_version: net.IpPreference) -> net.IpPreference:
    """A link bound to a source address can only speak that address's family."""
    if ip_version == 0 and link.source_address:
        return 6 if ":" in link.source_address else 4
    return ip_version


def reach(
    target: Target, link: Link, ip_version: net.IpPreference, timeout_s: float
) -> tuple[Endpoint, socket.socket]:
    """Connect to ``target`` over ``link`` (each resolved address in turn, as net.connect
    does); return the endpoint it reached and that connected, blocking socket."""
    sock, _ = net.connect(
        target.host,
        target.port,
        link,
        ip_version=effective_ip_version(link, ip_version),
        timeout_s=timeout_s,
    )
    sockaddr: SockAddr = sock.getpeername()
    return Endpoint(target, sock.family, sockaddr), sock


def open_socket(endpoint: Endpoint, link: Link) -> socket.socket:
    """A new non-blocking TCP socket bound to ``link``, its connect to ``endpoint`` started
    (the caller waits for it to become writable and reads SO_ERROR); OSError if the connect
    failed at once."""
    sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    try:
        net.bind(sock, link)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # SO_RCVBUF / SO_SNDBUF stay unset on purpose: setting them turns off the kernel's
        # buffer autotuning, which is what lets one stream fill a long fat pipe.
        sock.setblocking(False)
        code = sock.connect_ex(endpoint.sockaddr)
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, os.strerror(code))
    except BaseException:
        sock.close()
        raise
    return sock


def connect_blocking(endpoint: Endpoint, link: Link, timeout_s: float) -> socket.socket:
    """A connected blocking socket to ``endpoint`` with ``timeout_s`` on every operation."""
    sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    try:
        net.bind(sock, link)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout_s)
        sock.connect(endpoint.sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock
