"""A real dnsmasq for the dns tests: authoritative for ``.test`` only, never forwarding.

Records (``RECORDS`` below): names with A and/or AAAA answers; ``big.test`` has 40 A records,
too many for a 512-byte UDP answer (no EDNS), so it exercises the truncation -> TCP path.
``--local=/test/`` makes every other ``.test`` name NXDOMAIN; with ``--no-resolv`` and no
``server=``, anything else is REFUSED ("no upstream servers") and nothing ever leaves.
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import TracebackType

from tests.harness import ServiceProcess, find_binary

RECORDS: dict[str, list[str]] = {
    "dual.test": ["198.51.100.1", "198.51.100.2", "2001:db8::1"],
    "v4only.test": ["198.51.100.4"],
    "v6only.test": ["2001:db8::6"],
    "big.test": [f"198.51.100.{i}" for i in range(100, 140)],
}


def udp_and_tcp_port_free(host: str, port: int) -> bool:
    """True if ``port`` can be bound for both UDP and TCP on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(family, kind) as sock:
                sock.bind((host, port))
    except OSError:
        return False
    return True


def free_dns_port(host: str = "127.0.0.1") -> int:
    """A port free for UDP and TCP on ``host`` (and on ::1 when ``host`` is 127.0.0.1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if udp_and_tcp_port_free(host, port) and udp_and_tcp_port_free("::1", port):
            return port
    raise RuntimeError("no port free for UDP and TCP after 50 tries")


class Dnsmasq:
    """``with Dnsmasq(tmp_path, ["127.0.0.1", "::1"], port) as dns: ...`` in the foreground."""

    def __init__(self, workdir: Path, addresses: list[str], port: int) -> None:
        self.workdir = workdir
        self.addresses = addresses
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        hosts = workdir / "hosts"
        hosts.write_text(
            "".join(f"{ip} {name}\n" for name, ips in RECORDS.items() for ip in ips),
            encoding="utf-8",
        )
        self.log_path = workdir / "dnsmasq.log"
        argv = [
            find_binary("dnsmasq", "dnsmasq"),
            "--keep-in-foreground",
            "--conf-file=/dev/null",  # not /etc/dnsmasq.conf
            f"--port={port}",
            f"--listen-address={','.join(addresses)}",
            "--bind-interfaces",
            "--no-resolv",  # no upstream from /etc/resolv.conf: never forwards anywhere
            "--no-poll",
            "--no-hosts",
            f"--addn-hosts={hosts}",
            "--local=/test/",
            f"--pid-file={workdir / 'dnsmasq.pid'}",
            "--user=root",  # as nobody it could not read the 0700 pytest tmp dirs
            f"--log-facility={self.log_path}",
            "--log-queries",
        ]
        self._process = ServiceProcess("dnsmasq", argv, workdir, logs=[self.log_path])

    def start(self) -> Dnsmasq:
        self._process.start()
        self._process.wait_ready(self._answers, timeout_s=10.0, what="no answer for dual.test")
        return self

    def _answers(self) -> bool:
        import dns.message
        import dns.query

        query = dns.message.make_query("dual.test", "A")
        response = dns.query.udp(query, self.addresses[0], timeout=0.5, port=self.port)
        return len(response.answer) == 1

    def queries_logged(self) -> int:
        return self.log_path.read_text(errors="replace").count(" query[")

    def stop(self) -> None:
        self._process.stop()

    def __enter__(self) -> Dnsmasq:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
