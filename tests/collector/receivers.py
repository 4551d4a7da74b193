"""Real notification receivers on loopback for the alerting tests: an SMTP server (aiosmtpd)
that demands STARTTLS and authentication, and an HTTP server that records JSON posts and can
play dead (503) or hang."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.harness.ports import free_port

SMTP_USER = "alerts"
SMTP_PASSWORD = "s3cret-pw"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost, made with the openssl CLI."""
    cert, key = directory / "smtp.crt", directory / "smtp.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class SmtpReceiver:
    """aiosmtpd with STARTTLS required and AUTH (LOGIN/PLAIN) required; keeps each mail."""

    def __init__(self, directory: Path) -> None:
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.cert, key = self_signed(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.messages: list[Any] = []
        self.logins: list[str] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
                receiver.messages.append(
                    message_from_bytes(envelope.content, policy=policy.default)
                )
                return "250 OK"

        def authenticator(_server: Any, _session: Any, _env: Any, _mech: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                SMTP_USER.encode(), SMTP_PASSWORD.encode())  # fmt: skip
            if ok:
                receiver.logins.append(SMTP_USER)
            return AuthResult(success=ok)

        self.port = free_port()
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticator,
        )

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


class HttpReceiver:
    """POSTs recorded as JSON. ``mode``: "ok" (200), "down" (503), "hang" (no answer for
    ``hang_s``; nothing recorded)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.attempts = 0
        self.hanging = 0  # requests being held without an answer right now
        self.mode = "ok"
        self.hang_s = 5.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.attempts += 1
                if receiver.mode == "hang":
                    receiver.hanging += 1
                    time.sleep(receiver.hang_s)
                    receiver.hanging -= 1
                    return
                if receiver.mode == "down":
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> HttpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, rule: str | None = None) -> list[tuple[str, str]]:
        return [(p["event"], p["rule"]) for p in list(self.posts)
                if rule is None or p["rule"] == rule]  # fmt: skip
