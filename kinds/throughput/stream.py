"""One stream of the throughput engine: its connection's state, and the bytes its kernel queues
hold (``FIONREAD`` for a download, ``TIOCOUTQ`` for an upload), which samples count."""

from __future__ import annotations

import fcntl
import socket
import ssl
import struct
import termios

from probefleet.kinds.common.http import Dechunker

CONNECTING, SEND_HEAD, SEND_BODY, HEAD, BODY, HANDSHAKE = range(6)
_OUTQ = struct.Struct("i")
_ZERO = bytes(_OUTQ.size)


class Stream:
    __slots__ = (
        "body",
        "chunks",
        "deadline",
        "got",
        "head",
        "head_len",
        "left",
        "lowat",
        "out",
        "responded",
        "sent",
        "share",
        "sock",
        "state",
    )

    """One connection of a run: where it is in its request, and what its queues hold."""

    def __init__(self, sock: socket.socket, out: bytes, body: int, deadline: float) -> None:
        self.sock: socket.socket = sock
        self.state = CONNECTING
        self.out = out  # request head still to send
        self.head_len = len(out)
        self.body = body  # body bytes of this request
        self.left = body  # download: bytes still expected (-1: until close); upload: to send
        self.sent = 0  # upload: bytes handed to the kernel, head included
        self.head = bytearray()
        self.chunks: Dechunker | None = None
        self.responded = False
        self.deadline = deadline  # for connecting / first response byte
        self.share = 1.0  # plaintext share of the bytes in the kernel's queues (TLS: < 1)
        self.got = 0  # download: body bytes received (payload only)
        self.lowat = False  # SO_RCVLOWAT raised (TLS downloads)

    def unread(self) -> int:
        """Download body bytes already in the socket's receive queue (``FIONREAD``)."""
        try:
            queued: int = _OUTQ.unpack(fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, _ZERO))[0]
        except OSError:
            return 0
        if self.share < 1.0:  # ciphertext in the queue; OpenSSL may hold decrypted bytes
            sock = self.sock
            pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
            queued = int(queued * self.share) + pending
        if self.chunks is not None:  # the queue may hold chunk framing: count payload only
            return min(queued, self.chunks.payload_left)
        return queued if self.left < 0 else min(queued, self.left)

    def acked(self) -> int:
        """Upload body bytes the peer has acknowledged."""
        try:
            queued: int = _OUTQ.unpack(fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, _ZERO))[0]
        except OSError:
            queued = 0
        if self.share < 1.0:
            queued = int(queued * self.share)
        return max(0, min(self.body, self.sent - queued - self.head_len))
