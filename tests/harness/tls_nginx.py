"""Self-signed certificates made with the openssl CLI, and nginx serving HTTPS with one."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from types import TracebackType

from tests.harness import Nginx, free_port

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
