"""Loopback port helpers: pick a free TCP port, wait until one accepts connections."""

from __future__ import annotations

import socket

from .wait import eventually


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago (bind port 0, read, close).

    Another process may grab it before the caller binds it; services are started right after.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True if ``port`` can be bound on ``host`` right now (False also if ``host`` is unusable)."""
    try:
        with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
            sock.bind((host, port))
    except OSError:
        return False
    return True


def connect_once(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Open and close one TCP connection to ``host:port``; OSError if nothing accepts it."""
    with socket.create_connection((host, port), timeout=timeout_s):
        return True


def wait_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Wait until ``host:port`` accepts TCP connections; AssertionError on timeout."""
    eventually(
        lambda: connect_once(host, port),
        timeout_s=timeout_s,
        message=f"nothing accepts connections on {host}:{port}",
    )
