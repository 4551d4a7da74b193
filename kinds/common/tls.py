"""TLS for the measurement engines: who is trusted, which cipher first, one session per server.

Certificates are always verified: against the system's trust store, or a CA file given for
that server, or a SHA-256 pin of its certificate (the fingerprint ``openssl x509 -noout
-fingerprint -sha256`` prints). There is no switch that skips verification.

The cipher order follows the CPU: a CPU without AES instructions (a Pi 4's Cortex-A72; the
``aes`` flag of ``/proc/cpuinfo``, ``Features`` on ARM) offers ChaCha20-Poly1305 first, which
software runs several times faster than AES-GCM (openssl speed without AES-NI: 455 vs 116
MB/s); any other CPU offers AES-GCM first. TLS 1.3 suites cannot be ordered through Python's
``ssl`` module, so :func:`_set_tls13_suites` calls OpenSSL's ``SSL_CTX_set_ciphersuites``
on the context (checked afterwards with ``get_ciphers()``; left as OpenSSL's order if not).

One :class:`TlsClient` per server keeps the session of its first handshake, so that every
stream after it resumes that session instead of paying a full handshake::

    client = TlsClient.for_target(target, policy, server="speed.example")
    sock = client.handshake(tcp_sock, timeout_s=5)    # blocking; TlsRefused if not trusted
    client.version, client.cipher                      # "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"
    ssock = client.wrap(nonblocking_sock)              # the engine drives do_handshake()
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import logging
import re
import select
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")
_CHACHA_FIRST_13 = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
_AES_FIRST_12 = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"
_CHACHA_FIRST_12 = "ECDHE+CHACHA20:ECDHE+AESGCM:DHE+CHACHA20:DHE+AESGCM:!aNULL:!eNULL"
# Plaintext share of a full TLS record (16 KiB payload): TLS 1.3 adds a 5-byte header, the
# content type byte and a 16-byte tag; TLS 1.2 AES-GCM adds 8 more (explicit nonce).
RECORD_PAYLOAD = 16384
RECORD_SHARE_13 = RECORD_PAYLOAD / (RECORD_PAYLOAD + 22)
_HEX_PIN = re.compile(r"^[0-9a-fA-F]{2}(:?[0-9a-fA-F]{2}){31}$")


class TlsRefused(Exception):
    """The server's TLS could not be trusted or spoken: ``reason`` says why, naming it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TlsPolicy:
    """How one server's certificate is checked: ``ca_file`` (PEM) instead of the system's
    store, or ``pin_sha256`` (32 bytes) instead of any CA; neither: the system's store."""

    ca_file: str = ""
    pin_sha256: bytes = b""


def parse_pin(text: str) -> bytes:
    """A SHA-256 fingerprint as hex (``AB:CD:...`` or ``abcd...``) -> 32 bytes; ValueError."""
    text = text.strip()
    if text.lower().startswith("sha256:"):
        text = text[7:]
    if not _HEX_PIN.match(text):
        raise ValueError(
            f"{text!r}: a SHA-256 fingerprint is 64 hex digits, optionally in pairs separated "
            "by ':' (openssl x509 -noout -fingerprint -sha256 -in cert.pem)"
        )
    return bytes.fromhex(text.replace(":", ""))


@functools.cache
def cpu_has_aes(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU has AES instructions: ``aes`` among ``flags`` (x86) or ``Features``
    (ARM). Unreadable (not Linux): assume it has, as OpenSSL's own default order does."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return True
    found = False
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in ("flags", "features"):
            found = True
            if "aes" in value.split():
                return True
    return not found


def _set_tls13_suites(ctx: ssl.SSLContext, suites: str) -> bool:
    """OpenSSL's SSL_CTX_set_ciphersuites on ``ctx``: the ``SSL_CTX *`` is the first field
    after the object header of CPython's ``PySSLContext``. True if the order took.

    Python's ssl has no API for TLS 1.3 suites, hence ctypes. A wrong pointer would crash
    the agent rather than raise, so this runs only on the CPython versions whose
    ``PySSLContext`` layout was read (3.11 to 3.14: ``PyObject_HEAD`` then ``SSL_CTX *ctx``);
    elsewhere OpenSSL's own order stays (AES-GCM first: slower on a CPU without AES, never
    wrong)."""
    if sys.implementation.name != "cpython" or not (3, 11) <= sys.version_info[:2] <= (3, 14):
        return False
    try:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)  # dlsym searches _ssl's own libssl too
        fn = lib.SSL_CTX_set_ciphersuites
        fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        fn.restype = ctypes.c_int
        ctx_ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if not ctx_ptr or fn(ctx_ptr, suites.encode()) != 1:
            return False
    except (AttributeError, OSError, ImportError):
        return False
    first = [c["name"] for c in ctx.get_ciphers() if c.get("protocol") == "TLSv1.3"]
    return bool(first) and first[0] == suites.split(":", 1)[0]


def client_context(policy: TlsPolicy, *, aes: bool | None = None) -> ssl.SSLContext:
    """A client context for one server: TLS 1.2+, verification as ``policy`` says, the
    cipher order for this CPU (``aes`` overrides what /proc/cpuinfo says). OSError/SSLError
    if the CA file cannot be read."""
    aes = cpu_has_aes() if aes is None else aes
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if policy.pin_sha256:
        # The pin replaces the CA: checked after every handshake by TlsClient.check().
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif policy.ca_file:
        ctx.load_verify_locations(cafile=policy.ca_file)
    else:
        ctx.load_default_certs()
    ctx.set_ciphers(_AES_FIRST_12 if aes else _CHACHA_FIRST_12)
    # OpenSSL's TLS 1.3 order is already AES-GCM first: only a CPU without AES needs it changed.
    if not aes and not _set_tls13_suites(ctx, _CHACHA_FIRST_13):
        log.debug("tls: TLS 1.3 suites left in OpenSSL's order (AES-GCM first)")
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def describe(exc: BaseException) -> str:
    """A TLS failure in words: the verification message if there is one."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"TLS handshake failed: {exc.strerror}"
    return f"TLS handshake failed: {exc or type(exc).__name__}"


class TlsClient:
    """TLS to one server: its context, host name for SNI and verification, and the session
    to resume; records the version and cipher of the last handshake."""

    def __init__(
        self, ctx: ssl.SSLContext, host: str, server: str, policy: TlsPolicy, hint: str = ""
    ) -> None:
        self.ctx = ctx
        self.hint = hint  # how to trust it, said after a certificate that is not
        self.host = host
        self.server = server  # its URL, for logs
        self.policy = policy
        self.session: ssl.SSLSession | None = None
        self.version: str | None = None
        self.cipher: str | None = None
        self.handshakes = 0
        self.resumed = 0

    @classmethod
    def for_server(
        cls, host: str, server: str, policy: TlsPolicy, *, aes: bool | None = None, hint: str = ""
    ) -> TlsClient:
        """TlsRefused if the policy's CA file is unusable. ``hint`` follows the reason when
        the certificate is not trusted (where to give its CA or pin)."""
        try:
            ctx = client_context(policy, aes=aes)
        except (OSError, ssl.SSLError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise TlsRefused(f"CA file {policy.ca_file}: {why}") from None
        return cls(ctx, host, server, policy, hint)

    def wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        """``sock`` (connected; blocking or not) inside TLS, the handshake not yet done."""
        # server_hostname: SNI for a name (none is sent for an address) and what the
        # certificate must name; an IP address is matched against its IP SANs.
        return self.ctx.wrap_socket(
            sock, server_hostname=self.host, do_handshake_on_connect=False, session=self.session
        )

    def explain(self, exc: BaseException) -> str:
        """A failed handshake in words, with the hint if the certificate was the reason."""
        why = describe(exc)
        if self.hint and isinstance(exc, ssl.SSLCertVerificationError):
            return f"{why} ({self.hint})"
        return why

    def check(self, ssock: ssl.SSLSocket) -> None:
        """After a handshake: the pin (if any), the session to resume, version and cipher.
        TlsRefused if the pinned certificate is not the one presented."""
        if self.policy.pin_sha256:
            der = ssock.getpeercert(binary_form=True)
            got = hashlib.sha256(der or b"").digest()
            if got != self.policy.pin_sha256:
                raise TlsRefused(
                    "certificate not trusted: its SHA-256 fingerprint "
                    f"{got.hex(':').upper()} is not the pinned "
                    f"{self.policy.pin_sha256.hex(':').upper()}"
                    + (f" ({self.hint})" if self.hint else "")
                )
        self.handshakes += 1
        if ssock.session_reused:
            self.resumed += 1
        self.version = ssock.version()
        cipher = ssock.cipher()
        self.cipher = cipher[0] if cipher else None

    def remember(self, ssock: ssl.SSLSocket) -> None:
        """Keep ``ssock``'s session for the next connection (TLS 1.3 sends it after the
        handshake, with the first data: call once something was read)."""
        with contextlib.suppress(ssl.SSLError, ValueError, AttributeError):
            session = ssock.session
            # TLS 1.3 resumes from a ticket only (sent after the handshake); 1.2 by id too.
            if session is not None and (session.has_ticket or ssock.version() == "TLSv1.2"):
                self.session = session

    def handshake(self, sock: socket.socket, timeout_s: float) -> ssl.SSLSocket:
        """A blocking handshake on connected ``sock`` (closed on failure); TlsRefused with
        the reason if the server cannot be trusted or will not speak TLS."""
        sock.settimeout(timeout_s)
        ssock = self.wrap(sock)
        try:
            started = time.monotonic()
            ssock.do_handshake()
            self.check(ssock)
            if self.session is None:
                # About one round trip: the server sends its ticket after our Finished.
                self._await_ticket(
                    ssock, min(timeout_s, max(0.05, 3 * (time.monotonic() - started)))
                )
        except TlsRefused:
            ssock.close()
            raise
        except (OSError, ssl.SSLError) as exc:
            ssock.close()
            raise TlsRefused(self.explain(exc)) from None
        finally:
            if ssock.fileno() >= 0:
                ssock.settimeout(timeout_s)
        return ssock

    def _await_ticket(self, ssock: ssl.SSLSocket, wait_s: float) -> None:
        """Let OpenSSL read the TLS 1.3 session ticket that follows the handshake (nothing
        else comes before our first request), so the next connections can resume."""
        if ssock.version() != "TLSv1.3":
            self.remember(ssock)
            return
        deadline = time.monotonic() + wait_s
        ssock.setblocking(False)
        scratch = bytearray(1)
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([ssock], [], [], left)[0]:
                break
            with contextlib.suppress(ssl.SSLWantReadError):
                ssock.recv_into(scratch)
            self.remember(ssock)
            if self.session is not None:
                break

    def record_share(self) -> float:
        """The plaintext share of the bytes on the wire, for counting queued ciphertext."""
        if self.version == "TLSv1.2" and self.cipher and "GCM" in self.cipher:
            return RECORD_PAYLOAD / (RECORD_PAYLOAD + 29)
        return RECORD_SHARE_13
