"""One service check's I/O: connect over the link, TLS, a hand-written GET, curl-like timings.

Timings start when the TCP connect starts (name resolution is the dns measurement's job, so
a slow resolver does not make a service look slow) and are cumulative, like curl's ``-w``:
``connect_ms`` (``time_connect``), ``ttfb_ms`` (``time_starttransfer``: TCP + TLS handshakes,
request, the server's think time, first response byte) and ``total_ms`` (``time_total``: the
body read to its end, or to ``max_body_bytes``). The whole check, resolution included, ends
within its ``timeout_s``; a failure of the service is an ``up = false`` check with a short
``error``, never an exception (only a link that cannot be bound raises MeasurementError).
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from probefleet.core import wire
from probefleet.kinds.base import Link
from probefleet.kinds.common import destinations, net
from probefleet.kinds.common.http import USER_AGENT, Dechunker, HttpError, ResponseHead, parse_head
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.service.payload import ServiceCheck
from probefleet.kinds.service.x509 import not_after

if TYPE_CHECKING:
    import ssl

Protocol = Literal["http", "https", "tcp"]
MAX_HEAD_BYTES = 64 * 1024
_RECV_BYTES = 64 * 1024
_MAX_ERROR = 500  # wire.Text


@dataclass(frozen=True)
class Plan:
    """One check, parsed and validated by the measurement's constructor."""

    name: str
    target: str  # as configured: the wire's ServiceCheck.target
    protocol: Protocol
    host: str  # no brackets
    port: int
    timeout_s: float
    path: str = "/"  # with the query
    host_header: str = ""
    expect_status: frozenset[int] = frozenset()
    verify: bool = True
    ca_file: str = ""


@dataclass
class _Outcome:
    """What one check found so far; becomes a ServiceCheck."""

    status_code: int | None = None
    connect_ms: float | None = None
    ttfb_ms: float | None = None
    total_ms: float | None = None
    tls_days_left: float | None = None
    errors: list[str] = field(default_factory=list)


class _Down(Exception):
    """The check failed; ``str(exc)`` is the short error for the wire."""


class _Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.at = time.monotonic() + timeout_s

    def left(self, doing: str) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise _Down(self.expired(doing))
        return remaining

    def expired(self, doing: str) -> str:
        return f"timed out after {self.timeout_s:g} s {doing}"


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 3)


def _describe(exc: OSError, doing: str, deadline: _Deadline) -> str:
    """A short, stable error text: "connection refused", "timed out after 5 s ...", ..."""
    import ssl

    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return deadline.expired(doing)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).lower().replace("_", " ")  # WRONG_VERSION_NUMBER
        if doing == "during the TLS handshake":
            return f"TLS handshake failed: {reason}"
        return f"TLS error {doing}: {reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = (exc.strerror or str(exc) or type(exc).__name__).lower()
    return text if doing == "while connecting" else f"{text} {doing}"


def _resolve(
    plan: Plan, deadline: _Deadline
) -> list[tuple[int, tuple[str, int] | tuple[str, int, int, int]]]:
    """net.resolve within the deadline: getaddrinfo has no timeout of its own, so it runs in
    a daemon thread that is abandoned (and ends with the resolver's own timeout) if slow.
    The thread carries the run's destination guard: a refused address is an error here."""
    box: list[object] = []

    def lookup() -> None:
        try:
            box.append(net.resolve(plan.host, plan.port))
        except MeasurementError as exc:
            box.append(exc)

    thread = threading.Thread(
        target=destinations.carried(lookup), name=f"resolve-{plan.name}", daemon=True
    )
    thread.start()
    thread.join(deadline.left("resolving the name"))
    if not box:
        raise _Down(deadline.expired("resolving the name"))
    found = box[0]
    if isinstance(found, MeasurementError):
        raise _Down(found.reason)
    return found  # type: ignore[return-value]


def _connect(
    plan: Plan, link: Link, deadline: _Deadline, out: _Outcome
) -> tuple[socket.socket, float]:
    """A socket connected over ``link`` and the perf_counter time the connect started; each
    resolved address in turn (no happy-eyeballs: one path is measured). Built from
    net.resolve and net.bind rather than net.connect: that one folds the errno into its
    message, and the error on the wire ("connection refused", "timed out ...") needs it."""
    addresses = _resolve(plan, deadline)
    if link.source_address:
        # A socket bound to an IPv4 source cannot reach an IPv6 address, and vice versa.
        source_v6 = ":" in link.source_address
        wanted = socket.AF_INET6 if source_v6 else socket.AF_INET
        addresses = [a for a in addresses if a[0] == wanted]
        if not addresses:
            version = 6 if source_v6 else 4
            raise _Down(f"no IPv{version} address (the link's source address is IPv{version})")
    last = "no address"
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            net.bind(sock, link)  # MeasurementError: the link, not the service, is broken
            sock.settimeout(deadline.left("while connecting"))
            started = time.perf_counter()
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = _describe(exc, "while connecting", deadline)
            continue
        except BaseException:
            sock.close()
            raise
        out.connect_ms = _ms(started)
        return sock, started
    raise _Down(last)


def _days_left(der: bytes | None) -> float | None:
    now = dt.datetime.now(dt.UTC)
    # A Pi boots in 1970 until NTP answers: days counted from that clock would be fiction.
    if not der or now < wire.SANE_AFTER:
        return None
    try:
        expiry = not_after(der)
    except ValueError:
        return None
    days = (expiry - now).total_seconds() / 86_400.0
    return round(max(-36_500.0, min(36_500.0, days)), 3)


def _handshake(
    context: ssl.SSLContext, sock: socket.socket, plan: Plan, deadline: _Deadline
) -> ssl.SSLSocket:
    sock.settimeout(deadline.left("during the TLS handshake"))
    # An IP literal as server_hostname sends no SNI and is matched against IP SANs.
    return context.wrap_socket(sock, server_hostname=plan.host)


def _read_expiry_unverified(
    plan: Plan, link: Link, deadline: _Deadline, unverified: ssl.SSLContext
) -> float | None:
    """The certificate's days left, from a second handshake that does not verify: a service
    whose certificate fails verification (expired, unknown CA) still shows when it expires.
    Best effort within what is left of the deadline; None when that fails too."""
    try:
        sock, _ = _connect(plan, link, deadline, _Outcome())
    except _Down:
        return None
    try:
        tls = _handshake(unverified, sock, plan, deadline)
    except (OSError, _Down):
        sock.close()
        return None
    with tls:
        return _days_left(tls.getpeercert(binary_form=True))


def _request(plan: Plan) -> bytes:
    lines = [
        f"GET {plan.path} HTTP/1.1",
        f"Host: {plan.host_header}",
        f"User-Agent: {USER_AGENT}",
        "Accept: */*",
        "Accept-Encoding: identity",  # the body's size and time, not a compressor's
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _read_head(
    conn: socket.socket, deadline: _Deadline, started: float, out: _Outcome
) -> tuple[ResponseHead, bytes]:
    """Read one response head; return it and the bytes after it. Interim 1xx heads are
    skipped; ``ttfb_ms`` is set by the very first byte."""
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head, buf = parse_head(buf[:end]), buf[end + 4 :]
            if 100 <= head.status < 200:
                continue
            return head, buf
        if len(buf) > MAX_HEAD_BYTES:
            raise _Down(f"response head longer than {MAX_HEAD_BYTES} bytes")
        conn.settimeout(deadline.left("waiting for the response"))
        chunk = conn.recv(_RECV_BYTES)
        if not chunk:
            what = "without a response" if out.ttfb_ms is None else "inside the response head"
            raise _Down(f"connection closed {what}")
        if out.ttfb_ms is None:
            out.ttfb_ms = _ms(started)
        buf += chunk


def _read_body(
    conn: socket.socket, head: ResponseHead, rest: bytes, max_body_bytes: int, deadline: _Deadline
) -> None:
    """Read the body to its end (Content-Length, last chunk, or EOF) or to max_body_bytes."""
    if head.status in (204, 304):
        return
    length = head.content_length
    want = max_body_bytes if length is None else min(length, max_body_bytes)
    dechunker = Dechunker() if head.chunked else None
    got = 0
    data = rest
    while True:
        got += dechunker.feed(data, 0, len(data)) if dechunker else len(data)
        if got >= want or (dechunker is not None and dechunker.done):
            return
        conn.settimeout(deadline.left("reading the body"))
        data = conn.recv(_RECV_BYTES)
        if not data:
            if length is None and dechunker is None:
                return  # no framing: the body ends when the server closes
            raise _Down(f"connection closed after {got} bytes of the body")


def _status_error(plan: Plan, head: ResponseHead) -> str | None:
    """None when the status means "up": one of expect_status, or 2xx/3xx by default
    (redirects are not followed: a redirecting service is answering)."""
    if plan.expect_status:
        if head.status in plan.expect_status:
            return None
        expected = ", ".join(map(str, sorted(plan.expect_status)))
    else:
        if 200 <= head.status < 400:
            return None
        expected = "2xx or 3xx"
    return f"{head.describe()} (expected {expected})"


def run_check(
    plan: Plan,
    link: Link,
    *,
    max_body_bytes: int,
    context: ssl.SSLContext | None,
    unverified: ssl.SSLContext | None,
) -> ServiceCheck:
    """Measure ``plan`` once over ``link``. ``context`` is the TLS context of an https check
    (built beforehand: loading a CA store is not the service's time); ``unverified`` reads the
    certificate of a service that failed verification."""
    deadline = _Deadline(plan.timeout_s)
    out = _Outcome()
    conn: socket.socket | None = None
    doing = "while connecting"
    try:
        conn, started = _connect(plan, link, deadline, out)
        if plan.protocol == "tcp":
            return _check(plan, out)
        if context is not None:
            doing = "during the TLS handshake"
            try:
                conn = _handshake(context, conn, plan, deadline)
            except OSError:
                if unverified is not None:
                    out.tls_days_left = _read_expiry_unverified(plan, link, deadline, unverified)
                raise
            out.tls_days_left = _days_left(conn.getpeercert(binary_form=True))
        doing = "sending the request"
        conn.settimeout(deadline.left(doing))
        conn.sendall(_request(plan))
        doing = "waiting for the response"
        head, rest = _read_head(conn, deadline, started, out)
        out.status_code = head.status
        bad_status = _status_error(plan, head)
        if bad_status:
            out.errors.append(bad_status)
        doing = "reading the body"
        _read_body(conn, head, rest, max_body_bytes, deadline)
        out.total_ms = _ms(started)
    except _Down as down:
        out.errors.append(str(down))
    except HttpError as exc:
        out.errors.append(f"bad response: {exc}")
    except OSError as exc:
        out.errors.append(_describe(exc, doing, deadline))
    finally:
        if conn is not None:
            conn.close()
    return _check(plan, out)


def _check(plan: Plan, out: _Outcome) -> ServiceCheck:
    """Up when nothing went wrong: connected (tcp), or a full answer with a good status."""
    error = "; ".join(out.errors) or None
    if error is not None and len(error) > _MAX_ERROR:
        error = error[: _MAX_ERROR - 3] + "..."
    return ServiceCheck(
        name=plan.name,
        target=plan.target,
        protocol=plan.protocol,
        up=not out.errors,
        status_code=out.status_code,
        connect_ms=out.connect_ms,
        ttfb_ms=out.ttfb_ms,
        total_ms=out.total_ms,
        tls_days_left=out.tls_days_left,
        error=error,
    )
