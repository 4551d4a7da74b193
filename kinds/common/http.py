"""The bit of HTTP/1.1 the throughput engine speaks: URLs, request heads, response heads, chunks.

http:// and https:// URLs; TLS itself (verification, cipher order, sessions) is
:mod:`probefleet.kinds.common.tls`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from probefleet.core import __version__

USER_AGENT = f"probefleet/{__version__}"
MAX_HEAD_BYTES = 64 * 1024  # a response head larger than this is not a test server talking


class HttpError(Exception):
    """The server spoke, but not what we can measure with (bad status, bad framing)."""


@dataclass(frozen=True)
class Target:
    """Where a request goes: ``host`` as written (no brackets), ``port``, ``path`` with query;
    ``tls`` for https://."""

    url: str
    host: str
    port: int
    path: str
    tls: bool = False

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.tls else 80) else f"{host}:{self.port}"

    def with_query(self, query: str) -> Target:
        sep = "&" if "?" in self.path else "?"
        return Target(self.url, self.host, self.port, f"{self.path}{sep}{query}", self.tls)


def parse_url(url: str) -> Target:
    """``http[s]://host[:port]/path?query`` -> Target; ValueError saying what is wrong.

    A protocol-relative ``//host/path`` (LibreSpeed server lists use them) means http."""
    if url.startswith("//"):
        url = "http:" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: give an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise ValueError(f"{url!r}: bad port") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(url, parts.hostname, port, path, tls)


def cache_buster() -> str:
    """``r=<random>``: LibreSpeed adds it to every request so no cache answers for the server."""
    return f"r={secrets.randbelow(10**16) / 10**16:.16f}"


def request_head(
    method: str,
    target: Target,
    *,
    content_length: int | None = None,
    keep_alive: bool = False,
    byte_range: tuple[int, int] | None = None,
) -> bytes:
    lines = [
        f"{method} {target.path} HTTP/1.1",
        f"Host: {target.host_header}",
        f"User-Agent: {USER_AGENT}",
        "Accept: */*",
        # Compressed test data would measure the compressor, not the line.
        "Accept-Encoding: identity",
        "Cache-Control: no-cache",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    if byte_range is not None:
        lines.append(f"Range: bytes={byte_range[0]}-{byte_range[1]}")
    if content_length is not None:
        lines.append("Content-Type: application/octet-stream")
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})(?: ([^\r\n]*))?$")


@dataclass(frozen=True)
class ResponseHead:
    status: int
    reason: str
    content_length: int | None  # None: chunked or until the server closes
    chunked: bool
    keep_alive: bool

    @property
    def ok(self) -> bool:
        return self.status in (200, 206)

    def describe(self) -> str:
        return f"HTTP {self.status} {self.reason}".rstrip()


def parse_head(head: bytes) -> ResponseHead:
    """Parse a response head (everything before the blank line); HttpError if it is not one."""
    lines = head.split(b"\r\n")
    match = _STATUS_LINE.match(lines[0])
    if match is None:
        raise HttpError(f"not an HTTP/1.x response: {lines[0][:60]!r}")
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    chunked = b"chunked" in fields.get(b"transfer-encoding", b"").lower()
    length: int | None = None
    if not chunked and b"content-length" in fields:
        try:
            length = int(fields[b"content-length"])
        except ValueError:
            raise HttpError(f"bad Content-Length {fields[b'content-length'][:30]!r}") from None
    version_11 = lines[0].startswith(b"HTTP/1.1")
    connection = fields.get(b"connection", b"").lower()
    keep_alive = (version_11 and b"close" not in connection) or b"keep-alive" in connection
    return ResponseHead(
        status=int(match[1]),
        reason=(match[2] or b"").decode("latin-1")[:60],
        content_length=length,
        chunked=chunked,
        keep_alive=keep_alive and (chunked or length is not None),
    )


class Dechunker:
    """Counts the payload bytes of a chunked body as it streams by, without copying it.

    Chunk headers are parsed in place from the receive buffer; only a header split across two
    reads is carried over (a few bytes)."""

    __slots__ = ("_line", "_remaining", "_skip", "done")

    def __init__(self) -> None:
        self._remaining = 0  # payload bytes left in the current chunk
        self._skip = 0  # CRLF after a chunk's payload
        self._line = bytearray()  # a chunk-size line split across reads
        self.done = False

    @property
    def payload_left(self) -> int:
        """Payload bytes still to come in the current chunk: what of a queued read is surely
        payload rather than framing."""
        return self._remaining

    def feed(self, buf: bytes | bytearray, start: int, end: int) -> int:
        """Consume ``buf[start:end]``; return how many of those bytes were payload."""
        payload = 0
        pos = start
        while pos < end and not self.done:
            if self._remaining:
                take = min(self._remaining, end - pos)
                self._remaining -= take
                payload += take
                pos += take
                if not self._remaining:
                    self._skip = 2
            elif self._skip:
                take = min(self._skip, end - pos)
                self._skip -= take
                pos += take
            else:
                newline = buf.find(b"\n", pos, end)
                if newline < 0:
                    self._line += buf[pos:end]
                    pos = end
                    if len(self._line) > 1024:
                        raise HttpError("chunk-size line longer than 1 KiB")
                    continue
                self._line += buf[pos:newline]
                pos = newline + 1
                size_text = bytes(self._line).split(b";", 1)[0].strip()
                self._line.clear()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise HttpError(f"bad chunk size {size_text[:20]!r}") from None
                if size == 0:
                    self.done = True  # trailers follow; the connection closes anyway
                else:
                    self._remaining = size
        return payload
