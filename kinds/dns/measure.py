"""The `dns` measurement: resolution time of A and AAAA, per resolver and name.

Every configured name is asked for A, then AAAA, of every resolver: ``"system"`` (the
nameservers of ``resolv_conf``, tried in order the way the C library does) or an explicit
server (``IP``, ``IP:port``, ``IPv6``, ``[IPv6]:port``). One query per lookup, recursion
desired, over UDP (TCP only for a truncated answer). Each lookup gives its RCODE name
(NOERROR, NXDOMAIN, SERVFAIL, REFUSED...), the number of records of the type asked for, and
its time in ms from query to reply; a lookup with no reply within ``timeout_s`` is rcode
TIMEOUT with no time, any other failure (an ICMP error, a malformed reply) is ERROR. These
are data, not errors. Resolvers are asked side by side (one thread each, their lookups in
turn), and the whole run ends within ``max_duration_s``: a lookup whose timeout would not fit
is not sent, and not reported.

Binding: queries use sockets from ``net``, bound to the link's interface and source address
(dnspython has no interface option of its own; it is handed our sockets). The system
resolver's nameservers are the host's: on a probe with two links they may be the other link's
resolvers, reached through the bound interface only if that network routes them.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Annotated, ClassVar

import msgspec
from probefleet.core import wire
from probefleet.kinds.base import Interval, Link, Measurement, Schedule
from probefleet.kinds.common import destinations
from probefleet.kinds.common.binding import check_binding
from probefleet.kinds.common.names import is_host_name
from probefleet.kinds.common.parallel import run_bounded
from probefleet.kinds.dns import query
from probefleet.kinds.dns.payload import DnsData, DnsQuery
from probefleet.kinds.errors import MeasurementError

log = logging.getLogger(__name__)

SYSTEM = "system"
_RRTYPES: tuple[query.RrType, ...] = ("A", "AAAA")
_MAX_QUERIES = 128  # DnsData
_GRACE_S = 0.5  # beyond the deadline, for a reply that was on its way

Resolver = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, extra=destinations.marker("resolver"))
]


def _default_resolvers() -> list[str]:
    return [SYSTEM, "1.1.1.1", "8.8.8.8"]


def _default_names() -> list[str]:
    return ["dongnai.gov.vn", "dichvucong.dongnai.gov.vn", "vnexpress.net", "www.google.com"]


class DnsConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.dns]"""

    interval_s: Interval = 900
    resolvers: Annotated[list[Resolver], msgspec.Meta(min_length=1, max_length=16)] = msgspec.field(
        default_factory=_default_resolvers
    )
    names: Annotated[list[wire.Host], msgspec.Meta(min_length=1, max_length=32)] = msgspec.field(
        default_factory=_default_names
    )
    # Where "system" finds its nameservers.
    resolv_conf: Annotated[str, msgspec.Meta(min_length=1)] = "/etc/resolv.conf"
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0, le=30.0)] = 2.0  # per query
    max_duration_s: Annotated[float, msgspec.Meta(ge=1.0, le=600.0)] = 60.0


class Dns(Measurement[DnsConfig]):
    name: ClassVar[wire.Kind] = "dns"
    summary = "resolution time per resolver, A and AAAA"
    config_type = DnsConfig

    def __init__(self, config: DnsConfig) -> None:
        super().__init__(config)
        prefix = "measurements.dns"
        problems: list[str] = []
        self.servers: dict[str, query.Server | None] = {}  # label -> server; None: system
        for i, text in enumerate(config.resolvers):
            key = f"{prefix}.resolvers[{i}] = {text!r}"
            try:
                server = None if text == SYSTEM else query.parse_server(text)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
                continue
            label = SYSTEM if server is None else server.label
            if label in self.servers:
                problems.append(f"{key}: listed twice")
            self.servers[label] = server
        for i, name in enumerate(config.names):
            if not is_host_name(name):
                problems.append(f"{prefix}.names[{i}] = {name!r}: not a domain name")
        if len(set(n.lower().rstrip(".") for n in config.names)) != len(config.names):
            problems.append(f"{prefix}.names: list each name once")
        lookups = len(config.resolvers) * len(config.names) * len(_RRTYPES)
        if lookups > _MAX_QUERIES:
            problems.append(
                f"{prefix}.resolvers, names: {len(config.resolvers)} x {len(config.names)} "
                f"x 2 = {lookups} lookups; at most {_MAX_QUERIES} fit in one result"
            )
        if config.timeout_s > config.max_duration_s:
            problems.append(
                f"{prefix}.timeout_s = {config.timeout_s:g}: longer than max_duration_s "
                f"({config.max_duration_s:g}); no query could be sent"
            )
        if problems:
            raise ValueError("; ".join(problems))

    def run(self, link: Link) -> DnsData:
        cfg = self.config
        deadline = time.monotonic() + cfg.max_duration_s
        system: list[query.Server] | MeasurementError = []
        if SYSTEM in self.servers:
            try:
                system = query.system_servers(cfg.resolv_conf)
            except MeasurementError as exc:
                if len(self.servers) == 1:
                    raise
                log.warning("dns: %s; its lookups are reported as ERROR", exc.reason)
                system = exc
        used = [s for s in self.servers.values() if s is not None]
        if isinstance(system, list):
            used += system
            guard = destinations.current()
            if guard is not None:  # the host's own resolvers: the probe's, never the centre's
                guard.trust(s.address for s in system)
        for version in sorted({s.version for s in used}):
            check_binding(link, version)
        parts = [
            functools.partial(self._ask, label, server, system, link, deadline)
            for label, server in self.servers.items()
        ]
        queries = [q for done in run_bounded(parts, deadline + _GRACE_S) for q in done or []]
        if not queries:  # cannot happen while timeout_s <= max_duration_s; the wire needs one
            raise MeasurementError(f"no lookup fitted in max_duration_s = {cfg.max_duration_s:g}")
        return DnsData(queries=queries)

    def _ask(
        self,
        label: str,
        server: query.Server | None,
        system: list[query.Server] | MeasurementError,
        link: Link,
        deadline: float,
    ) -> list[DnsQuery]:
        """Every lookup of one resolver, in turn, as long as each one's timeout fits."""
        cfg = self.config
        done: list[DnsQuery] = []
        for name in cfg.names:
            for rrtype in _RRTYPES:
                if time.monotonic() + cfg.timeout_s > deadline:
                    break
                if server is not None:
                    answer = query.lookup(server, name, rrtype, link, cfg.timeout_s)
                elif isinstance(system, MeasurementError):
                    answer = query.Answer("ERROR")
                else:
                    answer = query.lookup_system(
                        system, name, rrtype, link, timeout_s=cfg.timeout_s, deadline=deadline
                    )
                done.append(
                    DnsQuery(
                        resolver=label,
                        name=name,
                        rrtype=rrtype,
                        rcode=answer.rcode,
                        answers=answer.answers,
                        time_ms=answer.time_ms,
                    )
                )
        wanted = len(cfg.names) * len(_RRTYPES)
        if len(done) < wanted:
            log.warning(
                "dns %s: %d of %d lookups made within max_duration_s = %g",
                label,
                len(done),
                wanted,
                cfg.max_duration_s,
            )
        return done
