"""The throughput engine's data path: parallel HTTP/1.1 streams on raw sockets, one event loop.

Built so that its CPU cost per gigabyte stays close to curl's (bench/bench_throughput.py):
non-blocking sockets driven by one ``selectors`` loop, ``recv_into`` one preallocated 1 MiB
buffer shared by every stream (the bytes are counted, never kept), uploads sent from one
preallocated buffer of random bytes, no Python object per chunk of data.

Counting rules:

- download: body bytes received (chunked framing excluded), counting at each sample those
  already in a socket's receive queue (``FIONREAD``) so that a sample does not depend on
  how promptly this process read them;
- upload: body bytes the server's TCP has *acknowledged* — bytes sent minus what is still in
  the socket's send queue (``TIOCOUTQ``: unsent + unacknowledged). Counting bytes handed to
  the kernel would credit a slow link with a whole send buffer (megabytes with autotuning);
- the warm-up (TCP slow start, loss recovery) is excluded: at least ``grace_s``, then until
  the streams are in steady state, at most ``warmup_max_s`` (see :mod:`.samples`); then
  goodput = bytes / seconds × 8 / 10⁶, with no overhead factor (LibreSpeed's browser client
  multiplies by 1.06 to estimate the line rate; we report goodput, like its CLI);
- over TLS the bytes counted are the plaintext body (what the application receives); bytes
  still queued in the kernel are ciphertext, counted at the plaintext share of a full record
  (16384 of 16406 bytes for TLS 1.3), plus what OpenSSL has decrypted but not handed over.

TLS streams (https://): each connection is wrapped once TCP connects, resumes the session
its :class:`~probefleet.kinds.common.tls.TlsClient` holds, and its handshake is driven by the
same loop; a certificate that cannot be trusted fails the server at once (ServerFailed).
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from probefleet.kinds.base import Link
from probefleet.kinds.common.endpoint import Endpoint, open_socket
from probefleet.kinds.common.http import MAX_HEAD_BYTES, Dechunker, HttpError, parse_head
from probefleet.kinds.common.tls import TlsClient, TlsRefused, describe
from probefleet.kinds.throughput.samples import (
    SAMPLE_S,
    Adaptive,
    Direction,
    DirectionResult,
    Sample,
    StopReason,
    settled,
    stable,
    steady,
    window,
)
from probefleet.kinds.throughput.stream import (
    BODY,
    CONNECTING,
    HANDSHAKE,
    HEAD,
    SEND_BODY,
    SEND_HEAD,
    Stream,
)

MiB = 1 << 20
BUFFER_BYTES = MiB
_RETRY_S = 0.2  # a stream whose connection failed is reopened after this pause
# TLS: plaintext per SSL_write (one full record), and reads per readiness event (OpenSSL
# hands over one record per read; reading on until it would block saves a select per record).
_TLS_WRITE = 16384
_TLS_READS = 64
# Download bodies: readable only once this much has queued (SO_RCVLOWAT). On a shaped line
# segments arrive one by one, and waking the loop for each costs more than the bytes (seen
# at 150 Mbit/s: 1.9x curl's CPU per GB over HTTP; over TLS, where OpenSSL hands over
# nothing before a whole 16 KiB record, most wakes end in a failed read). Samples do not
# depend on it (FIONREAD counts what waits). Set back to 1 for a response's last 2 x this,
# so that its tail is read at once.
_LOWAT = 64 * 1024
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

# wanted body bytes -> (request head, body bytes this request will move)
RequestMaker = Callable[[int], tuple[bytes, int]]


class ServerFailed(Exception):
    """The server would not carry the test (refused, closed, dead, spoke garbage)."""


@dataclass(frozen=True)
class Plan:
    direction: Direction
    streams: int
    duration_s: float  # measured time, after the warm-up
    grace_s: float  # the warm-up's minimum
    request_bytes: int  # body bytes per request (a new request follows on a new connection)
    max_bytes: int = 0  # 0: no cap; else the test stops once this many bytes have moved
    connect_timeout_s: float = 5.0
    adaptive: Adaptive | None = None
    warmup_max_s: float | None = None  # None: 2 x grace_s
    warmup_tolerance_pct: float = 5.0  # steady: successive window rates within this


def upload_buffer() -> memoryview:
    """Random bytes to send: incompressible, should anything on the path try."""
    return memoryview(os.urandom(BUFFER_BYTES))


class _Run:
    """One direction's test over ``plan.streams`` parallel connections."""

    def __init__(
        self,
        endpoint: Endpoint,
        link: Link,
        plan: Plan,
        request: RequestMaker,
        tls: TlsClient | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.tls = tls
        self.link = link
        self.plan = plan
        self.request = request
        self.upload = plan.direction == "upload"
        self.sel = selectors.DefaultSelector()
        self.buf = bytearray(BUFFER_BYTES)
        self.view = memoryview(self.buf)
        self.data = upload_buffer() if self.upload else self.view
        self.streams: set[Stream] = set()
        self.reopen_at: list[float] = []
        self.total = 0  # download: bytes received; upload: acked bytes of finished requests
        self.requested = 0
        self.connections = 0
        self.errors = 0
        self.last_error = ""

    # --- streams ---------------------------------------------------------------------------

    def _open(self, now: float) -> None:
        want = self.plan.request_bytes
        if self.plan.max_bytes:
            unrequested = self.plan.max_bytes - self.requested
            if unrequested <= 0:
                return
            # An equal share for each stream not yet running, so the cap's bytes spread
            # over every stream from the start.
            idle = max(1, self.plan.streams - len(self.streams))
            share = -(-unrequested // idle)
            want = min(want, max(share, min(MiB, unrequested)))
        head, body = self.request(want)
        self.requested += body
        self.connections += 1
        try:
            sock = open_socket(self.endpoint, self.link)
        except OSError as exc:  # refused or unreachable at once (loopback, no route)
            self.requested -= body
            self.errors += 1
            self.last_error = exc.strerror or str(exc)
            self.reopen_at.append(now + _RETRY_S)
            return
        stream = Stream(sock, head, body, now + self.plan.connect_timeout_s)
        self.streams.add(stream)
        self.sel.register(sock, selectors.EVENT_WRITE, stream)

    def _close(self, s: Stream, *, failed: str | None = None) -> None:
        if self.upload:
            moved = s.body if (s.responded and s.left == 0) else s.acked()
            self.total += moved
            unmoved = s.body - moved
        else:
            unmoved = max(s.left, 0)
        self.sel.unregister(s.sock)
        s.sock.close()
        self.streams.discard(s)
        now = time.monotonic()
        if failed is not None:
            self.requested -= unmoved  # back into the byte cap for the next request
            self.errors += 1
            self.last_error = failed
            self.reopen_at.append(now + _RETRY_S)
        else:  # the response ended before the test: the next request, on a new connection
            self._open(now)

    def _fail(self, s: Stream, exc: BaseException) -> None:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._close(s, failed=text or type(exc).__name__)

    def _connected(self, s: Stream) -> None:
        err = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(s, OSError(err, os.strerror(err)))
            return
        if self.tls is not None:
            self.sel.unregister(s.sock)
            s.sock = self.tls.wrap(s.sock)
            s.share = self.tls.record_share()
            s.state = HANDSHAKE
            self.sel.register(s.sock, selectors.EVENT_READ, s)
            self._handshake(s)
            return
        s.state = SEND_HEAD
        self._send_head(s)

    def _handshake(self, s: Stream) -> None:
        assert self.tls is not None
        assert isinstance(s.sock, ssl.SSLSocket)
        try:
            s.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.sel.modify(s.sock, selectors.EVENT_READ, s)
            return
        except ssl.SSLWantWriteError:
            self.sel.modify(s.sock, selectors.EVENT_WRITE, s)
            return
        except ssl.SSLCertVerificationError as exc:
            raise ServerFailed(self.tls.explain(exc)) from None
        except ssl.SSLError as exc:
            self._fail(s, OSError(describe(exc)))
            return
        try:
            self.tls.check(s.sock)
        except TlsRefused as exc:
            raise ServerFailed(exc.reason) from None
        s.state = SEND_HEAD
        self.sel.modify(s.sock, selectors.EVENT_WRITE, s)
        self._send_head(s)

    def _send_head(self, s: Stream) -> None:
        n = s.sock.send(s.out)
        s.sent += n
        s.out = s.out[n:]
        if s.out:
            return
        if self.upload:
            s.state = SEND_BODY
            s.deadline = float("inf")  # the body is flowing: only the test's end stops it
            # Readable too: a refusal (413, 503) may come before the body is sent.
            self.sel.modify(s.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, s)
        else:
            s.state = HEAD
            self.sel.modify(s.sock, selectors.EVENT_READ, s)

    def _send_body(self, s: Stream) -> None:
        if s.share < 1.0:
            self._send_body_tls(s)
            return
        pos = (s.body - s.left) % BUFFER_BYTES
        n = s.sock.send(self.data[pos : pos + min(s.left, BUFFER_BYTES - pos)])
        s.sent += n
        s.left -= n
        if not s.left:
            s.state = HEAD if not s.responded else BODY
            s.deadline = time.monotonic() + self.plan.connect_timeout_s
            self.sel.modify(s.sock, selectors.EVENT_READ, s)

    def _send_body_tls(self, s: Stream) -> None:
        """One record per SSL_write, until the socket would block: a write that would block
        is retried with the same bytes (OpenSSL requires it), and ``sent`` never runs more
        than one record ahead of what reached the kernel."""
        data, sock = self.data, s.sock
        for _ in range(_TLS_READS):
            pos = (s.body - s.left) % BUFFER_BYTES
            n = sock.send(data[pos : pos + min(s.left, _TLS_WRITE, BUFFER_BYTES - pos)])
            s.sent += n
            s.left -= n
            if not s.left:
                s.state = HEAD if not s.responded else BODY
                s.deadline = time.monotonic() + self.plan.connect_timeout_s
                self.sel.modify(s.sock, selectors.EVENT_READ, s)
                return

    def _set_lowat(self, s: Stream, on: bool) -> None:
        try:
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, _LOWAT if on else 1)
        except OSError:
            return  # not every kernel has it: the loop then just wakes more often
        s.lowat = on

    def _read_body_tls(self, s: Stream) -> None:
        """A sized body over TLS: records until OpenSSL would block (SSLWantReadError)."""
        sock, view = s.sock, self.view
        for _ in range(_TLS_READS):
            n = sock.recv_into(view, s.left if s.left < BUFFER_BYTES else 0)
            if not n:
                self._close(s, failed="closed inside the body")
                return
            self.total += n
            s.left -= n
            if s.left == 0:
                self._close(s)
                return
            if s.lowat and s.left < 2 * _LOWAT:
                self._set_lowat(s, False)

    def _read_head(self, s: Stream) -> None:
        n = s.sock.recv_into(self.view)
        if not n:
            raise ConnectionResetError(errno.ECONNRESET, "closed before the response")
        s.head += self.view[:n]
        end = s.head.find(b"\r\n\r\n")
        if end < 0:
            if len(s.head) > MAX_HEAD_BYTES:
                raise ServerFailed("response head too long")
            return
        try:
            response = parse_head(bytes(s.head[:end]))
        except HttpError as exc:
            raise ServerFailed(str(exc)) from None
        if not response.ok:
            raise ServerFailed(f"{response.describe()} for {self.plan.direction}")
        rest = s.head[end + 4 :]
        s.head = bytearray()
        s.deadline = float("inf")
        if self.tls is not None and self.tls.session is None and isinstance(s.sock, ssl.SSLSocket):
            self.tls.remember(s.sock)  # the TLS 1.3 ticket has come by now
        if self.upload:
            s.responded = True
            if s.left == 0:
                self._close(s)  # the whole body went through
            else:  # an early answer: keep sending the body we announced
                s.state = SEND_BODY
                self.sel.modify(s.sock, selectors.EVENT_WRITE, s)
            return
        s.state = BODY
        if response.chunked:
            s.chunks = Dechunker()
            s.left = -1
            s.got = s.chunks.feed(rest, 0, len(rest))
            self.total += s.got
        elif response.content_length is not None:
            s.left = response.content_length
            got = min(len(rest), s.left)
            self.total += got
            s.left -= got
        else:
            s.left = -1
            s.got = len(rest)
            self.total += len(rest)
        if (s.chunks is not None and s.chunks.done) or s.left == 0:
            self._close(s)
        elif (s.left if s.left >= 0 else s.body - s.got) >= 2 * _LOWAT:
            self._set_lowat(s, True)

    def _read_body_slow(self, s: Stream) -> None:
        """Chunked or close-delimited bodies (the hot loop handles Content-Length ones)."""
        n = s.sock.recv_into(self.view)
        if not n:
            if s.chunks is not None and not s.chunks.done:
                raise ConnectionResetError(errno.ECONNRESET, "closed inside a chunked body")
            self._close(s)
            return
        if s.chunks is None:
            self.total += n
            s.got += n
        else:
            try:
                payload = s.chunks.feed(self.buf, 0, n)
            except HttpError as exc:
                raise ServerFailed(str(exc)) from None
            self.total += payload
            s.got += payload
        if s.lowat and s.body - s.got < 2 * _LOWAT:  # near the size asked for
            self._set_lowat(s, False)
        if s.chunks is not None and s.chunks.done:
            self._close(s)

    def _event(self, s: Stream, mask: int) -> None:
        state = s.state
        if state == CONNECTING:
            self._connected(s)
        elif state == HANDSHAKE:
            self._handshake(s)
        elif state == SEND_HEAD:
            self._send_head(s)
        elif state == SEND_BODY:
            if mask & selectors.EVENT_READ and not s.responded:
                self._read_head(s)
            else:
                self._send_body(s)
        elif state == HEAD:
            self._read_head(s)
        elif self.upload:  # the body of an early answer, after our body went out: done
            self._close(s)
        else:
            self._read_body_slow(s)

    # --- the loop ----------------------------------------------------------------------------

    def counted(self) -> int:
        """Bytes moved so far, as the host's TCP sees them at this instant: a sample must not
        depend on how promptly this process was scheduled to read (a Pi under load may lag
        by a receive buffer or more), so bytes already received but not yet read count too."""
        if not self.upload:
            return self.total + sum(s.unread() for s in self.streams if s.state == BODY)
        return self.total + sum(s.acked() for s in self.streams)

    def run(self) -> DirectionResult:
        plan = self.plan
        cap = plan.max_bytes
        start = time.monotonic()
        # The counted window opens with a sample taken once the warm-up is over (at least
        # grace_s, then steady state, at most warmup_max_s: see samples) and lasts
        # duration_s from there.
        wake = start + plan.grace_s
        warmup_max = plan.warmup_max_s if plan.warmup_max_s is not None else 2 * plan.grace_s
        grace_limit = start + max(plan.grace_s, warmup_max)
        tolerance = plan.warmup_tolerance_pct / 100.0
        end = float("inf")
        base: int | None = None
        samples: list[Sample] = [(start, 0)]
        stopped_by: StopReason = "duration"
        for _ in range(plan.streams):
            self._open(start)
        next_sample = start + SAMPLE_S
        view, select, upload = self.view, self.sel.select, self.upload
        tls = self.tls is not None
        try:
            while True:
                now = time.monotonic()
                if now >= next_sample or now >= wake or (cap and self.total >= cap):
                    # Stamp the count with the middle of the time it took to read: on a
                    # loaded Pi the process may be preempted between clock and counters.
                    counted = self.counted()
                    samples.append(((now + time.monotonic()) / 2, counted))
                    if base is None and now >= wake:
                        if now >= grace_limit or (settled(samples) and steady(samples, tolerance)):
                            base, end = len(samples) - 1, now + plan.duration_s
                            wake = end
                        else:  # still swinging: look again at the next sample
                            wake = now + SAMPLE_S
                    stop = self._tick(now, end, samples, base)
                    if stop is not None:
                        stopped_by = stop
                        break
                    next_sample = max(next_sample + SAMPLE_S, now + SAMPLE_S / 4)
                for key, mask in select(max(0.0, min(next_sample, wake) - now)):
                    s: Stream = key.data
                    try:
                        if s.state == BODY and s.left > 0 and tls:
                            self._read_body_tls(s)
                        elif s.state == BODY and s.left > 0:  # the hot path: a sized body
                            n = s.sock.recv_into(view, s.left if s.left < BUFFER_BYTES else 0)
                            if n:
                                self.total += n
                                s.left -= n
                                if s.left == 0:
                                    self._close(s)
                                elif s.lowat and s.left < 2 * _LOWAT:
                                    self._set_lowat(s, False)
                            else:  # closed before Content-Length was reached
                                self._close(s, failed="closed inside the body")
                        elif upload and s.state == SEND_BODY and mask == selectors.EVENT_WRITE:
                            self._send_body(s)
                        else:
                            self._event(s, mask)
                    except _WOULD_BLOCK:
                        pass
                    except OSError as exc:
                        self._fail(s, exc)
                    if cap and self.total >= cap:
                        break
        finally:
            for s in list(self.streams):
                self.sel.unregister(s.sock)
                s.sock.close()
            self.streams.clear()
            self.sel.close()
        return self._result(samples, base, stopped_by)

    def _tick(
        self, now: float, end: float, samples: list[Sample], base: int | None
    ) -> StopReason | None:
        """Per-sample housekeeping; returns why to stop, or None to go on."""
        plan = self.plan
        total = samples[-1][1]
        if plan.max_bytes and total >= plan.max_bytes:
            return "cap"
        if now >= end:
            return "duration"
        if total == 0 and self.errors >= plan.streams:
            raise ServerFailed(f"no {plan.direction} data: {self.last_error}")
        if self.errors > 10 * plan.streams:
            raise ServerFailed(
                f"{self.errors} failed {plan.direction} connections: {self.last_error}"
            )
        for s in list(self.streams):
            if now > s.deadline:
                self._fail(s, TimeoutError("no answer within connect_timeout_s"))
        due = [t for t in self.reopen_at if t <= now]
        self.reopen_at = [t for t in self.reopen_at if t > now]
        for _ in due:
            self._open(now)
        if plan.max_bytes and not self.streams and not self.reopen_at:
            return "cap"  # every byte of the cap was requested and has arrived
        if plan.adaptive is not None and base is not None and stable(samples[base:], plan.adaptive):
            return "adaptive"
        return None

    def _result(
        self,
        samples: list[Sample],
        base: int | None,
        stopped_by: StopReason,
    ) -> DirectionResult:
        last_t, last_b = samples[-1]
        if last_b == 0:
            raise ServerFailed(
                f"no {self.plan.direction} data in {last_t - samples[0][0]:.1f} s"
                + (f": {self.last_error}" if self.last_error else "")
            )
        counted, seconds, start = window(samples, base)
        return DirectionResult(
            direction=self.plan.direction,
            streams=self.plan.streams,
            bytes=counted,
            duration_s=seconds,
            total_bytes=last_b,
            window_start=start,
            grace_s=start - samples[0][0],
            stopped_by=stopped_by,
            connections=self.connections,
            errors=self.errors,
            samples=samples,
        )


def run_direction(
    endpoint: Endpoint,
    link: Link,
    plan: Plan,
    request: RequestMaker,
    tls: TlsClient | None = None,
) -> DirectionResult:
    """Run one direction's test (over TLS with ``tls``); ServerFailed when the server would
    not carry it, or its certificate cannot be trusted."""
    return _Run(endpoint, link, plan, request, tls).run()
