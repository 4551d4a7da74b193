"""Reaching a target over one IP version: bounded name lookup, TCP connects and an HTTP GET.

Each function either returns what it measured or raises :class:`Unreachable` with a short,
human-readable reason; the caller turns both into verdicts. Sockets go through
:mod:`agent.measurements.net`, so they are bound to the link like every other measurement's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import socket
import threading
import time
from typing import Literal

from probefleet.kinds.base import Link
from probefleet.kinds.common import net
from probefleet.kinds.errors import MeasurementError

Version = Literal[4, 6]
_STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)? (\d{3})[ \r]")
_MAX_HEAD_BYTES = 8192
# Below this, an operation cannot even complete a LAN round trip: call the budget spent.
_MIN_USEFUL_S = 0.05


class Unreachable(Exception):
    """One attempt failed; ``str(exc)`` is the reason that goes into a verdict's detail."""


class BudgetSpent(Exception):
    """The measurement's total time budget is used up; the remaining checks are skipped."""


class Budget:
    """A total time budget, handed out as per-operation timeouts (never above ``per_op_s``)."""

    def __init__(self, total_s: float, per_op_s: float) -> None:
        self.total_s = total_s
        self.per_op_s = per_op_s
        self._deadline = time.monotonic() + total_s

    def timeout(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining < _MIN_USEFUL_S:
            raise BudgetSpent(f"time budget spent (max_duration_s = {self.total_s:g})")
        return min(self.per_op_s, remaining)


def bracket(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def link_for(link: Link, version: Version) -> Link:
    """``link`` without a source address of the other family (an IPv6 source address cannot
    bind an IPv4 socket; the interface binding still applies)."""
    source = link.source_address
    if source and (":" in source) != (version == 6):
        return dataclasses.replace(link, source_address=None)
    return link


def resolve(host: str, version: Version, timeout_s: float) -> list[str]:
    """The addresses of ``host`` for one family (A or AAAA), in the resolver's order.

    getaddrinfo has no timeout of its own (glibc may wait attempts x servers x 5 s), so it
    runs in a daemon thread that is abandoned, not waited for, when ``timeout_s`` passes."""
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    rrtype = "AAAA" if version == 6 else "A"
    outcome: list[list[str] | OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM)
        except OSError as exc:
            outcome.append(exc)
        else:
            outcome.append(list(dict.fromkeys(str(info[4][0]) for info in infos)))

    worker = threading.Thread(target=lookup, name=f"resolve-{rrtype}-{host}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise Unreachable(f"{rrtype} lookup: no answer within {timeout_s:g} s")
    result = outcome[0]
    if isinstance(result, OSError):
        raise Unreachable(f"{rrtype} lookup: {_gai_reason(result, rrtype)}")
    if not result:
        raise Unreachable(f"{rrtype} lookup: no {rrtype} record")
    return result


def _gai_reason(exc: OSError, rrtype: str) -> str:
    code = exc.errno
    if code == getattr(socket, "EAI_NODATA", None):  # NOERROR, but no answer of this type
        return f"no {rrtype} record"
    if code == socket.EAI_NONAME:  # NXDOMAIN (some resolvers say this for NODATA too)
        return "name not found"
    if code == socket.EAI_AGAIN:
        return "the resolver did not answer (temporary failure)"
    return exc.strerror or str(exc)


def _short(exc: MeasurementError | OSError) -> str:
    # net.connect's reasons read "cannot connect to H port P: ADDR: why"; keep the why.
    text = exc.reason if isinstance(exc, MeasurementError) else (exc.strerror or str(exc))
    return text.rsplit(": ", 1)[-1]


def connect_ms(address: str, port: int, link: Link, version: Version, timeout_s: float) -> float:
    """One TCP handshake to a literal ``address``; its duration in ms."""
    try:
        sock, elapsed_ms = net.connect(
            address, port, link_for(link, version), ip_version=version, timeout_s=timeout_s
        )
    except (MeasurementError, OSError) as exc:  # OSError: no such family in this kernel
        raise Unreachable(_short(exc)) from None
    sock.close()
    return elapsed_ms


@dataclasses.dataclass(frozen=True)
class Request:
    """An HTTP GET of ``path`` with ``host_header``, TLS (with SNI ``server_name``) if asked."""

    path: str
    host_header: str
    tls: bool
    server_name: str | None


def http_status(
    address: str, port: int, link: Link, version: Version, *, request: Request, timeout_s: float
) -> tuple[int, float]:
    """GET over one literal ``address``; returns (status code, ms from the start of the
    connect to the status line). The whole exchange fits in ``timeout_s``."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    try:
        sock, _ = net.connect(
            address, port, link_for(link, version), ip_version=version, timeout_s=timeout_s
        )
    except (MeasurementError, OSError) as exc:
        raise Unreachable(_short(exc)) from None
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        try:
            if request.tls:
                sock = _wrap_tls(sock, request.server_name, deadline)
                stack.callback(sock.close)
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.sendall(
                f"GET {request.path} HTTP/1.1\r\nHost: {request.host_header}\r\n"
                "User-Agent: probefleet-ipv6\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode()
            )
            head = b""
            while b"\n" not in head and len(head) < _MAX_HEAD_BYTES:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(_MAX_HEAD_BYTES)
                if not chunk:
                    break
                head += chunk
        except TimeoutError:
            raise Unreachable(f"no HTTP answer within {timeout_s:g} s") from None
        except OSError as exc:  # ssl.SSLError is an OSError too
            raise Unreachable(f"HTTP: {exc.strerror or exc}") from None
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    match = _STATUS_LINE.match(head)
    if match is None:
        shown = head[:40].decode("ascii", "replace") if head else "nothing"
        raise Unreachable(f"not an HTTP answer (got {shown!r})")
    return int(match[1]), elapsed_ms


def _wrap_tls(sock: socket.socket, server_name: str | None, deadline: float) -> socket.socket:
    import ssl  # lazily: OpenSSL is only loaded when a target is https

    # Whether the certificate is valid is the service measurement's question, and it is the
    # same over both IP versions; here we only ask whether the site answers over IPv6.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock.settimeout(max(deadline - time.monotonic(), 0.001))
    return context.wrap_socket(sock, server_hostname=server_name)
