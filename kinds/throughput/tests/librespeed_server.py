"""A LibreSpeed-compatible backend for tests: garbage.php, empty.php, getIP.php, a server list.

Faithful where the client can tell: ``garbage.php?ckSize=N`` streams exactly N × 1 MiB of
random bytes (N capped at 1024, default 4) with chunked transfer encoding, as PHP and Go
backends do; ``empty.php`` answers GET (ping, keep-alive) and reads and discards a POST body;
``getIP.php`` returns the client's address as JSON. A threaded Python server, so each test can
also refuse (HTTP 503) on chosen paths and see who connected and how many bytes moved. With
``tls=(cert, key)`` it speaks HTTPS only (a LibreSpeed backend behind TLS, as public ones are).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

MiB = 1 << 20
_RANDOM = os.urandom(MiB)  # one preallocated MiB, sent ckSize times


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: LibreSpeedServer


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _owner(self) -> LibreSpeedServer:
        return self.server.owner

    def _refuse(self, name: str) -> bool:
        owner = self._owner()
        with owner.lock:
            owner.peers.add(self.client_address[0])
            owner.requests.append(f"{self.command} {self.path}")
        if "*" in owner.refuse or name in owner.refuse:
            self._reply(503, b"busy")
            return True
        return False

    def _reply(self, status: int, body: bytes = b"", ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        name = url.path.rsplit("/", 1)[-1]
        if self._refuse(name):
            return
        if name == "garbage.php":
            self._garbage(parse_qs(url.query))
        elif name == "empty.php":
            self._reply(200)
        elif name == "getIP.php":
            self._reply(
                200,
                json.dumps({"processedString": self.client_address[0]}).encode(),
                "application/json",
            )
        elif name == "servers.json":
            self._reply(200, self._owner().list_json, "application/json")
        else:
            self._reply(404, b"not found")

    def _garbage(self, query: dict[str, list[str]]) -> None:
        try:
            chunks = int(query.get("ckSize", ["4"])[0]) or 4
        except ValueError:
            chunks = 4
        chunks = min(chunks, 1024)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        owner = self._owner()
        frame = f"{MiB:x}\r\n".encode()
        try:
            for _ in range(chunks):
                self.wfile.write(frame)
                self.wfile.write(_RANDOM)
                self.wfile.write(b"\r\n")
                with owner.lock:
                    owner.sent_bytes += MiB
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client stopped reading: the test is over
            self.close_connection = True

    def do_POST(self) -> None:
        name = urlsplit(self.path).path.rsplit("/", 1)[-1]
        length = int(self.headers.get("Content-Length", "0"))
        if self._refuse(name):
            self.close_connection = True
            return
        if name != "empty.php":
            self._reply(404, b"not found")
            return
        buf = memoryview(bytearray(MiB))
        owner = self._owner()
        left = length
        try:
            while left > 0:
                n = self.rfile.readinto(buf[: min(left, MiB)])
                if not n:
                    return
                left -= n
                with owner.lock:
                    owner.received_bytes += n
        except OSError:
            return
        self._reply(200)


class LibreSpeedServer:
    """``with LibreSpeedServer() as s:`` serves on 127.0.0.1 (and [::1] with ``ipv6=True``,
    same port) at ``s.base_url`` (``/`` is the backend folder). ``refuse`` names the files
    answered with 503 (``{"*"}``: everything)."""

    def __init__(
        self,
        *,
        ipv6: bool = False,
        refuse: set[str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.refuse = set(refuse or ())
        self.lock = threading.Lock()
        self.peers: set[str] = set()
        self.requests: list[str] = []
        self.sent_bytes = 0  # garbage payload written
        self.received_bytes = 0  # upload bodies read
        self.list_json = b"[]"
        self._servers: list[_Server] = [_Server(("127.0.0.1", 0), _Handler)]
        self.port = self._servers[0].server_address[1]
        if ipv6:
            self._servers.append(_V6Server(("::1", self.port), _Handler))
        for server in self._servers:
            server.owner = self
        scheme = "http"
        if tls is not None:
            scheme = "https"
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            for server in self._servers:
                # The handshake runs in the handler's thread, on its first read.
                server.socket = ctx.wrap_socket(
                    server.socket, server_side=True, do_handshake_on_connect=False
                )
        self.base_url = f"{scheme}://127.0.0.1:{self.port}/"
        self.base_url_v6 = f"{scheme}://[::1]:{self.port}/"
        self._threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            for s in self._servers
        ]

    def entry(self, server_id: int, name: str, *, v6: bool = False) -> dict[str, object]:
        """This server as an entry of a LibreSpeed server list."""
        return server_entry(server_id, name, self.base_url_v6 if v6 else self.base_url)

    def __enter__(self) -> LibreSpeedServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


def server_entry(server_id: int, name: str, base_url: str) -> dict[str, object]:
    return {
        "id": server_id,
        "name": name,
        "server": base_url,
        "dlURL": "garbage.php",
        "ulURL": "empty.php",
        "pingURL": "empty.php",
        "getIpURL": "getIP.php",
    }


class ClosedPort:
    """A loopback port bound but not listening: connections to it are refused, and nobody
    else can take it while the test runs."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self._sock.close()


def write_server_list(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return path
