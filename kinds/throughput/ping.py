"""HTTP pings: serial requests for an empty document over one keep-alive connection.

The method VNNIC i-Speed and LibreSpeed publish: the round trip of a tiny HTTP request on a
connection already open, so no handshake is timed. Used for choosing a server, for idle
latency and, from a thread beside the transfer, for latency under load (bufferbloat). Over
https:// the connection is TLS (its handshake, like TCP's, is not timed).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import statistics
import threading
import time

from probefleet.kinds.base import Link
from probefleet.kinds.common.endpoint import Endpoint, connect_blocking
from probefleet.kinds.common.http import (
    MAX_HEAD_BYTES,
    Dechunker,
    HttpError,
    cache_buster,
    parse_head,
    request_head,
)
from probefleet.kinds.common.tls import TlsClient, TlsRefused


class Refused(HttpError):
    """The server answered with a 4xx/5xx: it is up but will not serve us."""


class HttpPinger:
    """Pings one endpoint; reconnects when the server closes (the handshake is not timed)."""

    def __init__(
        self,
        endpoint: Endpoint,
        link: Link,
        *,
        timeout_s: float,
        bust_cache: bool,
        sock: socket.socket | None = None,
        tls: TlsClient | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.link = link
        self.timeout_s = timeout_s
        self.bust_cache = bust_cache
        self.tls = tls
        self._sock = sock
        self._wrapped = False
        if sock is not None:
            sock.settimeout(timeout_s)
        self._buf = bytearray(16 * 1024)

    def _connect(self) -> socket.socket:
        """The connection to ping over, opened (and TLS negotiated) if need be; TlsRefused
        if the server's certificate cannot be trusted."""
        if self._sock is None:
            self._sock = connect_blocking(self.endpoint, self.link, self.timeout_s)
            self._wrapped = False
        if self.tls is not None and not self._wrapped:
            sock, self._sock = self._sock, None
            self._sock = self.tls.handshake(sock, self.timeout_s)  # closes sock on failure
            self._wrapped = True
        return self._sock

    def ping(self) -> float:
        """One round trip in ms. OSError (timeout, reset), HttpError, Refused or TlsRefused
        otherwise."""
        sock = self._connect()
        target = self.endpoint.target
        if self.bust_cache:
            target = target.with_query(cache_buster())
        head = request_head("GET", target, keep_alive=True)
        try:
            started = time.perf_counter()
            sock.sendall(head)
            keep = self._read_response()
            rtt_ms = (time.perf_counter() - started) * 1000.0
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return rtt_ms

    def _read_response(self) -> bool:
        """Read one whole response; True if the connection can carry the next ping."""
        assert self._sock is not None
        sock, buf, view = self._sock, self._buf, memoryview(self._buf)
        head = bytearray()
        while True:
            n = sock.recv_into(view)
            if n == 0:
                raise HttpError("connection closed before the response head")
            head += view[:n]
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(head) > MAX_HEAD_BYTES:
                raise HttpError("response head too long")
        response = parse_head(bytes(head[:end]))
        if not response.ok:
            raise Refused(response.describe())
        rest = bytes(head[end + 4 :])
        if response.chunked:
            chunks = Dechunker()
            chunks.feed(rest, 0, len(rest))
            while not chunks.done:
                n = sock.recv_into(view)
                if n == 0:
                    raise HttpError("connection closed inside a chunked body")
                chunks.feed(buf, 0, n)
        elif response.content_length is not None:
            left = response.content_length - len(rest)
            while left > 0:
                n = sock.recv_into(view, min(left, len(buf)))
                if n == 0:
                    raise HttpError("connection closed inside the body")
                left -= n
        else:  # delimited by the server closing: read to the end
            while sock.recv_into(view):
                pass
        return response.keep_alive

    def abort(self) -> None:
        """Unblock a ping waiting in another thread (its recv returns at once)."""
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def ping_series(pinger: HttpPinger, count: int, deadline: float) -> list[float]:
    """Up to ``count`` serial pings before ``deadline`` (time.monotonic()); errors propagate
    only when not a single ping came back."""
    rtts: list[float] = []
    try:
        for _ in range(count):
            if time.monotonic() >= deadline:
                break
            rtts.append(pinger.ping())
    except (OSError, HttpError):
        if not rtts:
            raise
    return rtts


def jitter_ms(rtts: list[float]) -> float | None:
    """Mean |difference| of consecutive RTTs: the definition of LatencyTarget.jitter_ms
    (the latency measurement's), not LibreSpeed's asymmetric moving average."""
    if len(rtts) < 2:
        return None
    return sum(abs(b - a) for a, b in itertools.pairwise(rtts)) / (len(rtts) - 1)


def median_ms(rtts: list[float]) -> float | None:
    return statistics.median(rtts) if rtts else None


class LoadedPings:
    """Pings every ``interval_s`` from a thread while a transfer runs; a ping stuck in a
    bloated queue is waited for (up to the pinger's timeout) before the next one is sent.

        with LoadedPings(pinger) as pings:
            ...transfer...
        rtts = pings.since(grace_end)
    """

    def __init__(self, pinger: HttpPinger, interval_s: float = 0.25) -> None:
        self.pinger = pinger
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []  # (monotonic time sent, rtt ms)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loaded-ping", daemon=True)

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            sent = time.monotonic()
            # A ping lost under load is skipped: the next one opens a fresh connection.
            with contextlib.suppress(OSError, HttpError, TlsRefused):
                self.samples.append((sent, self.pinger.ping()))
            next_at = max(next_at + self.interval_s, time.monotonic())
            self._stop.wait(next_at - time.monotonic())

    def since(self, start: float) -> list[float]:
        return [rtt for sent, rtt in self.samples if sent >= start]

    def __enter__(self) -> LoadedPings:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.pinger.abort()
        # A daemon thread: one stuck where no shutdown reaches never holds the run up.
        self._thread.join(2.0)
        if not self._thread.is_alive():
            self.pinger.close()
