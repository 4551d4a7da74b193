"""deploy/central/nginx/grafana-tls.conf, the only way to Grafana, run for real with Debian's
nginx (only its port, certificate paths and upstream rewritten): HTTPS with the site's
certificate reaches Grafana; TLS 1.1, CBC and SHA-1 suites and plain HTTP do not."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.central import CENTRAL, make_certs
from tests.harness import eventually, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CONF = CENTRAL / "nginx" / "grafana-tls.conf"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


class _Grafana(http.server.BaseHTTPRequestHandler):
    """Stands in for Grafana: answers every GET with who it is."""

    def do_GET(self) -> None:
        body = b'{"database": "ok", "stand_in": "grafana"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    if NGINX is None:
        pytest.skip("nginx not installed (Debian package: nginx-light)")
    work = tmp_path_factory.mktemp("grafana-tls")
    certs = make_certs(work / "certs")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Grafana)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port("127.0.0.1")
    text = "\n".join(ln for ln in CONF.read_text().splitlines() if not ln.lstrip().startswith("#"))
    text = re.sub(r"listen \[::\]:8443[^;]*;\n", "", text)
    text = text.replace("listen 8443", f"listen 127.0.0.1:{port}")
    text = text.replace("/etc/nginx/tls/", f"{certs}/")
    text = text.replace("http://grafana:3000", f"http://127.0.0.1:{upstream.server_address[1]}")
    assert "/etc/nginx" not in text, "a container path was left"
    assert "8443" not in text, "a container port was left"
    (work / "site.conf").write_text(text)
    (work / "nginx.conf").write_text(
        f"pid {work}/nginx.pid;\nerror_log {work}/error.log;\n"
        # As root nginx would switch to "nobody", who cannot read the temp folder.
        + ("user root;\n" if os.geteuid() == 0 else "")
        + "events {}\nhttp {\n"
        f"  access_log off;\n  client_body_temp_path {work}/body;\n"
        f"  proxy_temp_path {work}/proxy;\n  include {work}/site.conf;\n}}\n"
    )
    argv = [NGINX, "-g", "daemon off;", "-p", str(work), "-c", str(work / "nginx.conf")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: _open(port), timeout_s=10, message="nginx did not listen")
        yield port, certs
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _get(port: int, ctx: ssl.SSLContext) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:  # fmt: skip
        tls.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := tls.recv(65536):
            out += chunk
        return out


def _ctx(certs: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    return ctx


def test_https_with_the_site_certificate_reaches_grafana(front: tuple[int, Path]) -> None:
    port, certs = front
    answer = _get(port, _ctx(certs))
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b'"stand_in": "grafana"' in answer
    assert b"strict-transport-security" in answer.lower()


def test_weak_tls_is_refused(front: tuple[int, Path]) -> None:
    port, certs = front
    old = _ctx(certs)
    with warnings.catch_warnings():  # asking for TLS 1.1 is the point of this test
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)):
        _get(port, old)
    for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256",
                  "ECDHE-ECDSA-AES128-SHA256"):  # fmt: skip
        weak = _ctx(certs)
        weak.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            weak.set_ciphers(suite)
        except ssl.SSLError:
            continue  # this OpenSSL does not even offer it
        with pytest.raises((ssl.SSLError, OSError)):
            _get(port, weak)


def test_plain_http_gets_no_grafana(front: tuple[int, Path]) -> None:
    port, _certs = front
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = raw.recv(65536)
    assert b"stand_in" not in answer
    assert not answer.startswith(b"HTTP/1.1 200")
