"""A local Ookla test server: the legacy HTTP paths speedtest-cli tests against, plus
speedtest.net's config and server-list XML, each of which can be made to fail.

Paths (all what speedtest-cli 2.1.3 requests, see its ``Speedtest`` methods)::

    GET  /speedtest/latency.txt            "test=test" (get_best_server checks these 9 bytes)
    GET  /speedtest/random{N}x{N}.jpg      2 * N * N bytes, N in 350..4000 (download)
    POST /speedtest/upload.php             body read and discarded; "size=<n>" (upload)
    GET  /speedtest-config.php             config XML, or ``config_status``, or a trickle
    GET  /speedtest-servers-static.php     server list XML (``servers``), or ``servers_status``
    GET  /speedtest-servers.php            the same

Ookla's real random{N}x{N}.jpg files are 1.98-2.00 bytes per pixel (245,388 bytes for 350,
31,625,365 for 4000); speedtest-cli computes nothing from N and reads each file to its end.
Run as a script to serve in a network namespace: ``python ookla_server.py HOST PORT``.
"""

from __future__ import annotations

import argparse
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import quoteattr

_RANDOM = re.compile(r"^/speedtest/random(\d+)x(\d+)\.jpg$")
_ZEROS = memoryview(bytes(1 << 20))
LAT, LON = "10.95", "106.82"  # Biên Hòa: where the test "client" and "server" are


class OoklaTestServer:
    """``with OoklaTestServer() as ookla: ...``; counters say what speedtest-cli really moved."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        config_status: int = 200,
        config_trickle: bool = False,
        servers_status: int = 200,
        servers: list[dict[str, Any]] | None = None,
        test_length_s: int = 1,
    ) -> None:
        self.config_status = config_status
        self.config_trickle = config_trickle
        self.servers_status = servers_status
        self.test_length_s = test_length_s
        self.bytes_served = 0  # download bodies written
        self.bytes_received = 0  # upload bodies read
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.ookla = self
        self.host, self.port = host, int(self._httpd.server_address[1])
        self.servers = [self.entry()] if servers is None else servers
        self._thread: threading.Thread | None = None

    # --- URLs and the dicts speedtest-cli's config/server list would hold -----------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_url(self) -> str:
        return f"{self.base_url}/speedtest-config.php"

    @property
    def servers_url(self) -> str:
        return f"{self.base_url}/speedtest-servers-static.php"

    def entry(self, server_id: int = 9903, name: str = "Biên Hòa") -> dict[str, Any]:
        """A server as speedtest-cli's server list holds it, pointing at this server."""
        return {
            "url": f"{self.base_url}/speedtest/upload.php",
            "lat": LAT,
            "lon": LON,
            "name": name,
            "country": "Vietnam",
            "cc": "VN",
            "sponsor": "Probefleet Test",
            "id": str(server_id),
            "host": f"{self.host}:{self.port}",
            "d": 0.0,
        }

    def speedtest_config(self) -> dict[str, Any]:
        """What speedtest-cli's get_config() would build from :meth:`config_xml`."""
        return {
            "client": {"ip": "127.0.0.1", "lat": LAT, "lon": LON, "isp": "Loopback"},
            "ignore_servers": [],
            "sizes": {
                "upload": [524288, 1048576, 7340032],
                "download": [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000],
            },
            "counts": {"upload": 4, "download": 2},
            "threads": {"upload": 2, "download": 4},
            "length": {"upload": self.test_length_s, "download": self.test_length_s},
            "upload_max": 12,
        }

    def config_xml(self) -> bytes:
        # The attributes speedtest-cli reads, with the shape of speedtest.net's answer.
        length = self.test_length_s
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<settings>\n'
            f'<client ip="127.0.0.1" lat="{LAT}" lon="{LON}" isp="Loopback" country="VN"/>\n'
            '<server-config threadcount="2" ignoreids="" notonmap="" forcepingid=""/>\n'
            f'<download testlength="{length}" initialtest="250K" mintestsize="250K" '
            'threadsperurl="2"/>\n'
            f'<upload testlength="{length}" ratio="5" initialtest="0" mintestsize="32K" '
            'threads="2" maxchunksize="512K" maxchunkcount="12" threadsperurl="4"/>\n'
            "</settings>\n"
        ).encode()

    def servers_xml(self) -> bytes:
        rows = "".join(
            "<server "
            + " ".join(f"{k}={quoteattr(str(v))}" for k, v in s.items() if k != "d")
            + "/>\n"
            for s in self.servers
        )
        head = '<?xml version="1.0" encoding="UTF-8"?>\n<settings>\n<servers>\n'
        return f"{head}{rows}</servers>\n</settings>\n".encode()

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> OoklaTestServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()

    def __enter__(self) -> OoklaTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ookla: OoklaTestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # speedtest-cli hangs up mid-body when its test length runs out: not an error.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def ookla(self) -> OoklaTestServer:
        return self.server.ookla

    def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.ookla.lock:
            self.ookla.paths.append(self.path)
        if path == "/speedtest/latency.txt":
            self._send(200, b"test=test")
        elif match := _RANDOM.match(path):
            self._random(int(match[1]), int(match[2]))
        elif path == "/speedtest-config.php":
            self._config()
        elif path in ("/speedtest-servers-static.php", "/speedtest-servers.php"):
            status = self.ookla.servers_status
            body = self.ookla.servers_xml() if status == 200 else b"nope"
            self._send(status, body, "text/xml")
        else:
            self._send(404, b"not found")

    def _random(self, width: int, height: int) -> None:
        if width != height or not 350 <= width <= 4000:
            self._send(404, b"no such image")
            return
        remaining = 2 * width * height
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(remaining))
        self.end_headers()
        while remaining > 0:
            chunk = _ZEROS[: min(remaining, len(_ZEROS))]
            self.wfile.write(chunk)
            remaining -= len(chunk)
            with self.ookla.lock:
                self.ookla.bytes_served += len(chunk)

    def _config(self) -> None:
        ookla = self.ookla
        if ookla.config_trickle:
            # Never finishes, yet never idle long enough for a socket timeout to fire.
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.end_headers()
            self.wfile.write(b"<?xml ")
            while not ookla.stopping.wait(0.2):
                self.wfile.write(b" ")
            return
        if ookla.config_status != 200:
            self._send(ookla.config_status, HTTPStatus(ookla.config_status).phrase.encode())
            return
        self._send(200, ookla.config_xml(), "text/xml")

    def do_POST(self) -> None:
        with self.ookla.lock:
            self.ookla.paths.append(self.path)
        if self.path.split("?", 1)[0] != "/speedtest/upload.php":
            self._send(404, b"not found")
            return
        remaining = int(self.headers.get("Content-Length", "0"))
        got = 0
        while remaining > 0:
            data = self.rfile.read1(min(remaining, 1 << 16))
            if not data:  # the uploader hung up: its test length ran out
                return
            remaining -= len(data)
            got += len(data)
            with self.ookla.lock:
                self.ookla.bytes_received += len(data)
        self._send(200, f"size={got}".encode())


@contextmanager
def silent_listener(host: str = "127.0.0.1") -> Iterator[str]:
    """A base URL whose port completes TCP handshakes (the kernel does) and never answers:
    nothing ever calls accept()."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen(64)
        yield f"http://{host}:{sock.getsockname()[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--test-length-s", type=int, default=3)
    args = parser.parse_args()
    server = OoklaTestServer(args.host, args.port, test_length_s=args.test_length_s)
    print(f"serving {server.base_url}", flush=True)
    try:
        server._httpd.serve_forever()
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
