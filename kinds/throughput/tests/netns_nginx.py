"""nginx as a throughput test server inside a test's server namespace: the very config of
the harness's NginxTestServer, listening on the namespace's addresses instead of loopback;
with ``tls=(cert, key)`` the same paths over HTTPS too (tests/harness/tls_nginx.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

from tests.harness import GiB, NginxTestServer, eventually, find_binary, log_tail
from tests.harness.httpserver import READY_PATH
from tests.harness.netns import NetnsPair
from tests.harness.tls_nginx import TlsTestServer

PORT = 8080
SINK_PORT = 8081
TLS_PORT = 8443


class NetnsNginx:
    """``with NetnsNginx(pair, workdir) as web:`` serves ``web.large_url`` (sparse, 2 GiB),
    ``web.upload_url`` and ``web.empty_url`` on the server namespace's IPv4 address (and
    ``web.url_v6(path)`` on its IPv6 one)."""

    def __init__(
        self, pair: NetnsPair, workdir: Path, *, tls: tuple[Path, Path] | None = None
    ) -> None:
        if pair.server_v4 is None:
            raise ValueError("NetnsNginx needs a pair with IPv4")
        self.pair = pair
        # Built for its config only; never started in the root namespace.
        self.template: NginxTestServer
        if tls is None:
            self.template = NginxTestServer(workdir, ipv6=pair.server_v6 is not None)
        else:
            self.template = TlsTestServer(workdir, *tls, ipv6=pair.server_v6 is not None)
            self.template.tls_port = TLS_PORT
        self.template.host = pair.server_v4
        self.template.host_v6 = pair.server_v6 or "::1"
        self.template.has_ipv6 = pair.server_v6 is not None
        self.template.port = PORT
        self.template.sink_port = SINK_PORT
        self.base_url = f"http://{pair.server_v4}:{PORT}"
        self.large_url = f"{self.base_url}/files/large.bin"
        self.upload_url = f"{self.base_url}/upload"
        self.empty_url = f"{self.base_url}/empty"
        self._proc: subprocess.Popen[bytes] | None = None

    def url_v6(self, path: str) -> str:
        return f"http://[{self.pair.server_v6}]:{PORT}{path}"

    def url(self, path: str, *, v6: bool = False, tls: bool = False) -> str:
        """``path`` on the server namespace's address, over HTTP or (``tls``) HTTPS."""
        host = f"[{self.pair.server_v6}]" if v6 else self.pair.server_v4
        return f"https://{host}:{TLS_PORT}{path}" if tls else f"http://{host}:{PORT}{path}"

    def __enter__(self) -> NetnsNginx:
        nginx = self.template.nginx
        with self.template.large_path.open("wb") as handle:
            handle.truncate(2 * GiB)
        nginx.conf_path.write_text(nginx.config_text())
        argv = [
            find_binary("nginx", "nginx-light"),
            "-p",
            f"{nginx.workdir}/",
            "-c",
            str(nginx.conf_path),
            "-e",
            str(nginx.error_log_path),
        ]
        self._proc = self.pair.popen(
            self.pair.server_ns, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        ready = f"{self.base_url}{READY_PATH}"

        def answers() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"nginx exited\n{log_tail(nginx.error_log_path)}")
            got = self.pair.run(
                self.pair.client_ns,
                ["curl", "-sS", "--noproxy", "*", "--max-time", "2", ready],
                check=False,
            )
            return got.stdout == nginx.token

        eventually(
            answers,
            timeout_s=15,
            message="nginx in the server namespace not ready",
            abort_on=(RuntimeError,),
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass  # the pair kills what it started (the whole process group) when it stops
