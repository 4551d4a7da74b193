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
- the first ``grace_s`` seconds (TCP slow start) are excluded, as LibreSpeed does (longer
  if the rate has not settled by then, see :mod:`._samples`); then
  goodput = bytes / seconds × 8 / 10⁶, with no overhead factor (LibreSpeed's browser client
  multiplies by 1.06 to estimate the line rate; we report goodput, like its CLI).
"""

from __future__ import annotations

import errno
import fcntl
import os
import selectors
import socket
import struct
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass

from probefleet.kinds.base import Link
from probefleet.kinds.common.endpoint import Endpoint, open_socket
from probefleet.kinds.common.http import MAX_HEAD_BYTES, Dechunker, HttpError, parse_head
from probefleet.kinds.throughput.samples import (
    SAMPLE_S,
    Adaptive,
    Direction,
    DirectionResult,
    Sample,
    StopReason,
    settled,
    stable,
    window,
)

MiB = 1 << 20
BUFFER_BYTES = MiB
_RETRY_S = 0.2  # a stream whose connection failed is reopened after this pause
_OUTQ = struct.Struct("i")
_ZERO = bytes(_OUTQ.size)

# wanted body bytes -> (request head, body bytes this request will move)
RequestMaker = Callable[[int], tuple[bytes, int]]

_CONNECTING, _SEND_HEAD, _SEND_BODY, _HEAD, _BODY = range(5)


class ServerFailed(Exception):
    """The server would not carry the test (refused, closed, dead, spoke garbage)."""


@dataclass(frozen=True)
class Plan:
    direction: Direction
    streams: int
    duration_s: float  # measured time, after the grace period
    grace_s: float
    request_bytes: int  # body bytes per request (a new request follows on a new connection)
    max_bytes: int = 0  # 0: no cap; else the test stops once this many bytes have moved
    connect_timeout_s: float = 5.0
    adaptive: Adaptive | None = None


class _Stream:
    __slots__ = (
        "body",
        "chunks",
        "deadline",
        "head",
        "head_len",
        "left",
        "out",
        "responded",
        "sent",
        "sock",
        "state",
    )

    def __init__(self, sock: socket.socket, out: bytes, body: int, deadline: float) -> None:
        self.sock = sock
        self.state = _CONNECTING
        self.out = out  # request head still to send
        self.head_len = len(out)
        self.body = body  # body bytes of this request
        self.left = body  # download: bytes still expected (-1: until close); upload: to send
        self.sent = 0  # upload: bytes handed to the kernel, head included
        self.head = bytearray()
        self.chunks: Dechunker | None = None
        self.responded = False
        self.deadline = deadline  # for connecting / first response byte

    def unread(self) -> int:
        """Download body bytes already in the socket's receive queue (``FIONREAD``)."""
        try:
            queued: int = _OUTQ.unpack(fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, _ZERO))[0]
        except OSError:
            return 0
        if self.chunks is not None:  # the queue may hold chunk framing: count payload only
            return min(queued, self.chunks.payload_left)
        return queued if self.left < 0 else min(queued, self.left)

    def acked(self) -> int:
        """Upload body bytes the peer has acknowledged."""
        try:
            queued: int = _OUTQ.unpack(fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, _ZERO))[0]
        except OSError:
            queued = 0
        return max(0, min(self.body, self.sent - queued - self.head_len))


def upload_buffer() -> memoryview:
    """Random bytes to send: incompressible, should anything on the path try."""
    return memoryview(os.urandom(BUFFER_BYTES))


class _Run:
    """One direction's test over ``plan.streams`` parallel connections."""

    def __init__(self, endpoint: Endpoint, link: Link, plan: Plan, request: RequestMaker) -> None:
        self.endpoint = endpoint
        self.link = link
        self.plan = plan
        self.request = request
        self.upload = plan.direction == "upload"
        self.sel = selectors.DefaultSelector()
        self.buf = bytearray(BUFFER_BYTES)
        self.view = memoryview(self.buf)
        self.data = upload_buffer() if self.upload else self.view
        self.streams: set[_Stream] = set()
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
        stream = _Stream(sock, head, body, now + self.plan.connect_timeout_s)
        self.streams.add(stream)
        self.sel.register(sock, selectors.EVENT_WRITE, stream)

    def _close(self, s: _Stream, *, failed: str | None = None) -> None:
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

    def _fail(self, s: _Stream, exc: BaseException) -> None:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._close(s, failed=text or type(exc).__name__)

    def _connected(self, s: _Stream) -> None:
        err = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(s, OSError(err, os.strerror(err)))
            return
        s.state = _SEND_HEAD
        self._send_head(s)

    def _send_head(self, s: _Stream) -> None:
        n = s.sock.send(s.out)
        s.sent += n
        s.out = s.out[n:]
        if s.out:
            return
        if self.upload:
            s.state = _SEND_BODY
            s.deadline = float("inf")  # the body is flowing: only the test's end stops it
            # Readable too: a refusal (413, 503) may come before the body is sent.
            self.sel.modify(s.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, s)
        else:
            s.state = _HEAD
            self.sel.modify(s.sock, selectors.EVENT_READ, s)

    def _send_body(self, s: _Stream) -> None:
        pos = (s.body - s.left) % BUFFER_BYTES
        n = s.sock.send(self.data[pos : pos + min(s.left, BUFFER_BYTES - pos)])
        s.sent += n
        s.left -= n
        if not s.left:
            s.state = _HEAD if not s.responded else _BODY
            s.deadline = time.monotonic() + self.plan.connect_timeout_s
            self.sel.modify(s.sock, selectors.EVENT_READ, s)

    def _read_head(self, s: _Stream) -> None:
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
        if self.upload:
            s.responded = True
            if s.left == 0:
                self._close(s)  # the whole body went through
            else:  # an early answer: keep sending the body we announced
                s.state = _SEND_BODY
                self.sel.modify(s.sock, selectors.EVENT_WRITE, s)
            return
        s.state = _BODY
        if response.chunked:
            s.chunks = Dechunker()
            s.left = -1
            self.total += s.chunks.feed(rest, 0, len(rest))
        elif response.content_length is not None:
            s.left = response.content_length
            got = min(len(rest), s.left)
            self.total += got
            s.left -= got
        else:
            s.left = -1
            self.total += len(rest)
        if (s.chunks is not None and s.chunks.done) or s.left == 0:
            self._close(s)

    def _read_body_slow(self, s: _Stream) -> None:
        """Chunked or close-delimited bodies (the hot loop handles Content-Length ones)."""
        n = s.sock.recv_into(self.view)
        if not n:
            if s.chunks is not None and not s.chunks.done:
                raise ConnectionResetError(errno.ECONNRESET, "closed inside a chunked body")
            self._close(s)
            return
        if s.chunks is None:
            self.total += n
            return
        try:
            self.total += s.chunks.feed(self.buf, 0, n)
        except HttpError as exc:
            raise ServerFailed(str(exc)) from None
        if s.chunks.done:
            self._close(s)

    def _event(self, s: _Stream, mask: int) -> None:
        state = s.state
        if state == _CONNECTING:
            self._connected(s)
        elif state == _SEND_HEAD:
            self._send_head(s)
        elif state == _SEND_BODY:
            if mask & selectors.EVENT_READ and not s.responded:
                self._read_head(s)
            else:
                self._send_body(s)
        elif state == _HEAD:
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
            return self.total + sum(s.unread() for s in self.streams if s.state == _BODY)
        return self.total + sum(s.acked() for s in self.streams)

    def run(self) -> DirectionResult:
        plan = self.plan
        cap = plan.max_bytes
        start = time.monotonic()
        # The counted window opens with a sample taken at the end of the grace period (once
        # the rate has settled, see _samples) and lasts duration_s from there.
        wake = start + plan.grace_s
        grace_limit = start + 2 * plan.grace_s
        end = float("inf")
        base: int | None = None
        samples: list[Sample] = [(start, 0)]
        stopped_by: StopReason = "duration"
        for _ in range(plan.streams):
            self._open(start)
        next_sample = start + SAMPLE_S
        view, select, upload = self.view, self.sel.select, self.upload
        try:
            while True:
                now = time.monotonic()
                if now >= next_sample or now >= wake or (cap and self.total >= cap):
                    # Stamp the count with the middle of the time it took to read: on a
                    # loaded Pi the process may be preempted between clock and counters.
                    counted = self.counted()
                    samples.append(((now + time.monotonic()) / 2, counted))
                    if base is None and now >= wake:
                        if now >= grace_limit or settled(samples):
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
                    s: _Stream = key.data
                    try:
                        if s.state == _BODY and s.left > 0:  # the hot path: a sized body
                            n = s.sock.recv_into(view, s.left if s.left < BUFFER_BYTES else 0)
                            if n:
                                self.total += n
                                s.left -= n
                                if s.left == 0:
                                    self._close(s)
                            else:  # closed before Content-Length was reached
                                self._close(s, failed="closed inside the body")
                        elif upload and s.state == _SEND_BODY and mask == selectors.EVENT_WRITE:
                            self._send_body(s)
                        else:
                            self._event(s, mask)
                    except (BlockingIOError, InterruptedError):
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
    endpoint: Endpoint, link: Link, plan: Plan, request: RequestMaker
) -> DirectionResult:
    """Run one direction's test; ServerFailed when the server would not carry it."""
    return _Run(endpoint, link, plan, request).run()
