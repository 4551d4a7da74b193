"""Self-signed certificates made with the openssl CLI, and nginx serving HTTPS with one
(a service page, or the throughput test server's files)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.harness import Nginx, NginxTestServer, free_port
from tests.harness.httpserver import _pick_dual_stack_port

# `openssl ca` is the one OpenSSL 3.0 command that takes explicit validity dates (an expired
# certificate cannot be made with `req -x509 -days`); -selfsign signs with the CSR's own key.
_CA_CONF = """\
[ca]
default_ca = selfsign
[selfsign]
database = {workdir}/index.txt
new_certs_dir = {workdir}
serial = {workdir}/serial
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
[leaf_and_ca]
basicConstraints = critical,CA:true
keyUsage = critical,digitalSignature,keyCertSign
"""


def _asn1_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ")


def make_cert(
    workdir: Path,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    san: str = "IP:127.0.0.1,DNS:localhost",
) -> tuple[Path, Path]:
    """A self-signed certificate (also its own CA) valid from ``not_before`` to ``not_after``
    (whole seconds, UTC) for ``san``; returns (cert.pem, key.pem)."""
    workdir.mkdir(parents=True, exist_ok=True)
    key, csr, cert = workdir / "key.pem", workdir / "req.csr", workdir / "cert.pem"
    conf = workdir / "ca.cnf"
    conf.write_text(_CA_CONF.format(workdir=workdir))
    (workdir / "index.txt").write_text("")
    (workdir / "serial").write_text("01\n")
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=probefleet-test",
         "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "ca", "-batch", "-config", str(conf), "-selfsign", "-keyfile", str(key),
         "-in", str(csr), "-out", str(cert), "-notext", "-extensions", "leaf_and_ca",
         "-startdate", _asn1_time(not_before), "-enddate", _asn1_time(not_after)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


class TlsNginx:
    """``with TlsNginx(workdir, cert, key) as web:`` serves HTTPS on 127.0.0.1:``web.port``:
    ``/`` answers 200 "service ok\\n", anything else 404. Readiness is checked over a second,
    plain-HTTP port (the harness's readiness probe does not speak TLS)."""

    def __init__(self, workdir: Path, cert: Path, key: Path) -> None:
        self.port = free_port()
        self.ready_port = free_port()
        self.cert, self.key = cert, key
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.nginx = Nginx(
            workdir, self._conf, ready_addresses=[("127.0.0.1", self.ready_port)], name="tls"
        )

    def _conf(self, ready_location: str) -> str:
        return f"""
    server {{
        listen 127.0.0.1:{self.ready_port};
        {ready_location}
    }}
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_certificate {self.cert};
        ssl_certificate_key {self.key};
        location = / {{ return 200 "service ok\\n"; }}
        location / {{ return 404; }}
    }}
"""

    def __enter__(self) -> TlsNginx:
        self.nginx.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.nginx.stop()


class TlsTestServer(NginxTestServer):
    """NginxTestServer (plain HTTP, unchanged) plus the same ``/files/``, ``/upload`` and
    ``/empty`` over HTTPS on ``tls_port``, on 127.0.0.1 and [::1] when it has IPv6: a
    throughput test server with a certificate (``make_cert`` makes a self-signed one).
    Session tickets on, TLS 1.2 and 1.3, the client's cipher order (nginx's default).

        with TlsTestServer(workdir, cert, key) as web:
            web.tls_url("/files/large.bin")     # https://127.0.0.1:<tls_port>/files/large.bin
    """

    def __init__(self, workdir: Path, cert: Path, key: Path, **options: Any) -> None:
        self.cert, self.key = cert, key
        self.tls_port = 0  # chosen once the plain port is known (same hosts, both families)
        super().__init__(workdir, **options)
        self.tls_port, _ = _pick_dual_stack_port(self.has_ipv6, self.host, self.host_v6)
        self.tls_base_url = f"https://{self.host}:{self.tls_port}"

    def __enter__(self) -> TlsTestServer:
        self.start()
        return self

    def tls_url(self, path: str, *, v6: bool = False) -> str:
        if v6:
            return f"https://[{self.host_v6}]:{self.tls_port}{path}"
        return f"{self.tls_base_url}{path}"

    def _http_conf(self, ready_location: str) -> str:
        listen_v6 = f"listen [{self.host_v6}]:{self.tls_port} ssl;" if self.has_ipv6 else ""
        return (
            super()._http_conf(ready_location)
            + f"""
    server {{
        listen {self.host}:{self.tls_port} ssl;
        {listen_v6}
        ssl_certificate {self.cert};
        ssl_certificate_key {self.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:probefleet_tls:1m;
        ssl_session_tickets on;
        location /files/ {{
            alias {self.files_dir}/;
            add_header Cache-Control "no-store";
        }}
        location = /empty {{
            add_header Cache-Control "no-store";
            return 200 "";
        }}
        location = /upload {{
            client_max_body_size 0;
            client_body_buffer_size 1m;
            proxy_pass http://{self.host}:{self.sink_port}/sink;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Content-Type "";
            add_header Cache-Control "no-store";
        }}
    }}
"""
        )
