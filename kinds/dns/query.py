"""One timed DNS lookup against one server (dnspython), over sockets bound to the link.

dnspython has no interface option, but its ``dns.query.udp``/``tcp`` accept a socket: ours
come from :mod:`agent.measurements.net`, so queries leave through the link's interface and
source address like every other measurement's traffic.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import Literal

from probefleet.kinds.base import Link
from probefleet.kinds.common import net
from probefleet.kinds.common.binding import link_for
from probefleet.kinds.errors import MeasurementError

log = logging.getLogger(__name__)

RrType = Literal["A", "AAAA"]
_RCODE_NAME = re.compile(r"^[A-Z]{2,16}\Z")  # DnsQuery.rcode
_BRACKETED = re.compile(r"^\[(?P<address>[^\]]+)\](?::(?P<port>\d{1,5}))?\Z")


@dataclass(frozen=True)
class Server:
    """A DNS server to ask: its address and port."""

    address: str
    port: int = 53

    @property
    def version(self) -> Literal[4, 6]:
        return 6 if ":" in self.address else 4

    @property
    def label(self) -> str:
        """How the wire names it: the bare address on port 53, else address:port."""
        if self.port == 53:
            return self.address
        return (
            f"[{self.address}]:{self.port}" if self.version == 6 else f"{self.address}:{self.port}"
        )


def parse_server(text: str) -> Server:
    """``IP``, ``IP:port``, ``IPv6`` or ``[IPv6]:port`` -> Server; ValueError says why not."""
    match = _BRACKETED.match(text)
    if match:
        address, port_text = match["address"], match["port"]
    elif text.count(":") == 1:
        address, port_text = text.split(":")
    else:
        address, port_text = text, None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError('not an IP address, IP:port, [IPv6]:port or "system"') from None
    if match is None and port_text is not None and ip.version == 6:
        raise ValueError("write an IPv6 address with a port as [address]:port")
    port = int(port_text) if port_text else 53
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return Server(str(ip), port)


def system_servers(resolv_conf: str) -> list[Server]:
    """The nameservers of ``resolv_conf``, in order (it cannot say a port: always 53)."""
    import dns.nameserver
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(filename=resolv_conf, configure=True)
    except dns.resolver.NoResolverConfiguration as exc:
        raise MeasurementError(f"system resolver: {resolv_conf}: {exc}") from None
    servers = []
    for nameserver in resolver.nameservers:
        if isinstance(nameserver, str):
            servers.append(Server(nameserver))
        elif isinstance(nameserver, dns.nameserver.Do53Nameserver):
            servers.append(Server(nameserver.address, nameserver.port))
    if not servers:
        raise MeasurementError(f"system resolver: {resolv_conf} names no plain DNS server")
    return servers


@dataclass(frozen=True)
class Answer:
    """What a lookup gave: the RCODE name (or TIMEOUT / ERROR), the number of records of the
    type asked for in the answer section, and the time to the reply (None when none came)."""

    rcode: str
    answers: int = 0
    time_ms: float | None = None


def _udp_socket(server: Server, link: Link) -> socket.socket:
    family = socket.AF_INET6 if server.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        net.bind(sock, link)  # MeasurementError: the link, not the server, is the problem
    except MeasurementError:
        sock.close()
        raise
    sock.setblocking(False)  # dns.query wants it so and does its own waiting
    return sock


def lookup(server: Server, name: str, rrtype: RrType, link: Link, timeout_s: float) -> Answer:
    """Ask ``server`` for ``name``/``rrtype`` once, recursion desired; retry over TCP only
    when the UDP answer is truncated. A timeout or any failure is an Answer, not an error;
    MeasurementError only when the link itself cannot be bound."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    link = link_for(link, server.version)
    rdtype = dns.rdatatype.from_text(rrtype)
    query = dns.message.make_query(name, rdtype)  # absolute name: no search list applies
    sock = _udp_socket(server, link)
    began = time.perf_counter()
    try:
        with sock:
            response = dns.query.udp(
                query, server.address, timeout_s, server.port, ignore_unexpected=True, sock=sock
            )
        truncated = bool(response.flags & dns.flags.TC)
        if truncated:
            left = timeout_s - (time.perf_counter() - began)
            if left <= 0:
                raise dns.exception.Timeout
            stream, _ = net.connect(
                server.address, server.port, link, ip_version=server.version, timeout_s=left
            )
            with stream:
                stream.setblocking(False)
                response = dns.query.tcp(query, server.address, left, sock=stream)
    except dns.exception.Timeout:
        return Answer("TIMEOUT")
    except (dns.exception.DNSException, OSError, MeasurementError) as exc:
        log.debug("dns %s %s via %s: %r", name, rrtype, server.label, exc)
        return Answer("ERROR")
    elapsed_ms = (time.perf_counter() - began) * 1000.0
    if not truncated:
        # dnspython stamps send and receive (wall clock) around the socket calls only, not
        # the message rendering and parsing our bracket includes (~1 ms for the first reply
        # in a process on this machine); a clock step in between shows as an absurd value.
        wire_ms = response.time * 1000.0
        elapsed_ms = wire_ms if 0.0 <= wire_ms <= elapsed_ms else elapsed_ms
    rcode = dns.rcode.to_text(response.rcode())
    if not _RCODE_NAME.match(rcode):  # an unassigned code has no name: only its number
        log.debug("dns %s %s via %s: rcode %s", name, rrtype, server.label, rcode)
        rcode = "ERROR"
    answers = sum(len(rrset) for rrset in response.answer if rrset.rdtype == rdtype)
    return Answer(rcode, answers, round(elapsed_ms, 3))


def lookup_system(
    servers: list[Server],
    name: str,
    rrtype: RrType,
    link: Link,
    *,
    timeout_s: float,
    deadline: float,
) -> Answer:
    """Like the C library's stub resolver: the servers in order, moving on after a timeout,
    an error, SERVFAIL or REFUSED, while a whole ``timeout_s`` still fits before ``deadline``.
    The time runs from the first query to the answer given, failed attempts included."""
    began = time.perf_counter()
    answer = Answer("ERROR")
    waited_ms = 0.0  # on the servers that failed before the one that answered
    for i, server in enumerate(servers):
        if i and time.monotonic() + timeout_s > deadline:
            break
        waited_ms = (time.perf_counter() - began) * 1000.0
        answer = lookup(server, name, rrtype, link, timeout_s)
        if answer.rcode not in ("TIMEOUT", "ERROR", "SERVFAIL", "REFUSED"):
            break
    if answer.time_ms is None:
        return answer
    return Answer(answer.rcode, answer.answers, round(waited_ms + answer.time_ms, 3))
