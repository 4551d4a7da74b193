"""The `service` measurement: the province's own services as a commune sees them.

Each check is an HTTP(S) GET or a plain TCP connect (``_service_probe`` does the I/O and
defines the timings, which are curl's ``-w`` figures without name resolution). A check is
``up`` when TCP connects (tcp), or when the whole answer arrived with an expected status
(http/https: ``expect_status``, or any 2xx/3xx; redirects are not followed). https checks
report the certificate's days left, even when it fails verification (a second, non-verifying
handshake reads it). Checks run one after the other, so they do not slow each other down;
each ends within its ``timeout_s``, and the constructor refuses timeouts that add up to
more than ``interval_s``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal
from urllib.parse import urlsplit

import msgspec
from probefleet.core import wire
from probefleet.core.configkit import Section
from probefleet.kinds.base import Interval, Link, Measurement, Schedule
from probefleet.kinds.common import destinations
from probefleet.kinds.service.payload import ServiceCheck, ServiceData
from probefleet.kinds.service.probe import Plan, Protocol, run_check

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

_KEY = "measurements.service"
_MAX_CHECKS = 64  # ServiceData.checks
StatusCode = Annotated[int, msgspec.Meta(ge=100, le=599)]


class ServiceTarget(Section, frozen=True, kw_only=True):
    """[[measurements.service.checks]]: one service to check."""

    name: wire.Name
    # http://host[:port]/path or https://...; "host:port" or "[IPv6]:port" for tcp.
    target: Annotated[
        str, msgspec.Meta(min_length=1, max_length=500, extra=destinations.marker("service"))
    ]
    protocol: Literal["", "http", "https", "tcp"] = ""  # "": from the target
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0, le=120.0)] = 10.0  # the whole check
    expect_status: Annotated[list[StatusCode], msgspec.Meta(max_length=32)] = []
    verify: bool = True  # https: check the certificate chain and the host name
    ca_file: str = ""  # https: PEM file of CAs to trust *instead of* the system store


def _default_checks() -> list[ServiceTarget]:
    return [
        ServiceTarget(
            name="dichvucong", target="https://dichvucong.dongnai.gov.vn/", protocol="https"
        ),
        ServiceTarget(name="portal", target="https://dongnai.gov.vn/", protocol="https"),
    ]


class ServiceConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.service]"""

    interval_s: Interval = 300
    checks: Annotated[list[ServiceTarget], msgspec.Meta(min_length=1, max_length=_MAX_CHECKS)] = (
        msgspec.field(default_factory=_default_checks)
    )
    # Body bytes read per GET at most: total_ms then times this much (0: the head only).
    max_body_bytes: Annotated[int, msgspec.Meta(ge=0, le=64 * 1024 * 1024)] = 262_144


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _split_host_port(text: str) -> tuple[str, int]:
    """ "host:port" / "[v6]:port" -> (host, port); ValueError saying what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError("must be host:port (or [IPv6]:port)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host or not _is_ip(host):
            raise ValueError("[...] must hold an IPv6 address")
    elif ":" in host:
        raise ValueError("an IPv6 address goes in brackets: [IPv6]:port")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError("port must be 1-65535")
    return host, port


def _plan(index: int, check: ServiceTarget) -> tuple[Plan | None, list[str]]:
    key = f"{_KEY}.checks[{index}]"
    problems: list[str] = []
    is_url = "://" in check.target
    scheme = urlsplit(check.target).scheme if is_url else "tcp"
    protocol: Protocol
    if check.protocol:
        protocol = check.protocol
    elif scheme in ("http", "https"):
        protocol = scheme  # type: ignore[assignment]
    else:
        protocol = "tcp"
    if is_url and scheme not in ("http", "https"):
        problems.append(
            f"{key}.target = {check.target!r}: only http:// and https:// URLs (tcp: host:port)"
        )
    elif protocol == "tcp" and is_url:
        problems.append(f"{key}.target = {check.target!r}: a tcp target is host:port, no URL")
    elif protocol not in ("tcp", scheme):
        problems.append(
            f"{key}.target = {check.target!r}: protocol {protocol!r} needs a {protocol}:// URL"
        )
    if protocol != "https":
        if not check.verify:
            problems.append(f"{key}.verify = false: only https checks verify certificates")
        if check.ca_file:
            problems.append(f"{key}.ca_file = {check.ca_file!r}: only for https checks")
    if protocol == "tcp" and check.expect_status:
        problems.append(f"{key}.expect_status: a tcp check has no HTTP status")
    if check.ca_file and not os.path.isabs(check.ca_file):
        problems.append(f"{key}.ca_file = {check.ca_file!r}: give an absolute path")
    elif check.ca_file and not check.verify:
        problems.append(f"{key}.ca_file = {check.ca_file!r}: useless with verify = false")
    if problems:
        return None, problems
    if protocol == "tcp":
        try:
            host, port = _split_host_port(check.target)
        except ValueError as exc:
            return None, [f"{key}.target = {check.target!r}: {exc}"]
        return Plan(check.name, check.target, protocol, host, port, check.timeout_s), []
    parts = urlsplit(check.target)
    try:
        port = parts.port or (443 if protocol == "https" else 80)
    except ValueError:
        return None, [f"{key}.target = {check.target!r}: invalid port"]
    if not parts.hostname or parts.username is not None or len(parts.hostname) > 253:
        return None, [f"{key}.target = {check.target!r}: needs a host, and no user:password@"]
    plan = Plan(
        check.name,
        check.target,
        protocol,
        parts.hostname,
        port,
        check.timeout_s,
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        host_header=parts.netloc,
        expect_status=frozenset(check.expect_status),
        verify=check.verify,
        ca_file=check.ca_file,
    )
    return plan, []


def _context(*, verify: bool, ca_file: str = "") -> ssl.SSLContext:
    """The TLS context of a check: like a browser's (system store or ca_file, host name
    checked), or not verifying at all. Python 3.13's VERIFY_X509_STRICT is cleared: browsers
    and curl accept certificates it rejects (no Authority Key Identifier...), and a service
    the citizens reach must not be reported down for that."""
    import ssl

    if verify:
        context = ssl.create_default_context(cafile=ca_file or None)
        context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(NotImplementedError):
        context.set_alpn_protocols(["http/1.1"])
    return context


class Service(Measurement[ServiceConfig]):
    name: ClassVar[wire.Kind] = "service"
    summary = "the province's services: HTTP(S) status, timings, certificate; TCP reachability"
    config_type = ServiceConfig

    def __init__(self, config: ServiceConfig) -> None:
        super().__init__(config)
        problems: list[str] = []
        self.plans: list[Plan] = []
        for index, check in enumerate(config.checks):
            plan, found = _plan(index, check)
            problems.extend(found)
            if plan is not None:
                self.plans.append(plan)
        names = [c.name for c in config.checks]
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.append(f"{_KEY}.checks[{index}].name = {name!r}: used twice")
        worst = sum(c.timeout_s for c in config.checks)
        if worst > config.interval_s:
            problems.append(
                f"{_KEY}.checks: the timeouts add up to {worst:g} s, more than interval_s = "
                f"{config.interval_s}: a run could outlast its interval; lower timeout_s"
            )
        if problems:
            raise ValueError("; ".join(problems))

    def run(self, link: Link) -> ServiceData:
        checks = []
        unverified: ssl.SSLContext | None = None
        for plan in self.plans:
            context = None
            if plan.protocol == "https":
                try:
                    context = _context(verify=plan.verify, ca_file=plan.ca_file)
                except OSError as exc:  # a ca_file that is missing or not PEM
                    reason = exc.strerror or str(exc)
                    checks.append(_broken_ca(plan, f"cannot load ca_file {plan.ca_file}: {reason}"))
                    continue
                if plan.verify and unverified is None:
                    unverified = _context(verify=False)
            result = run_check(
                plan,
                link,
                max_body_bytes=self.config.max_body_bytes,
                context=context,
                unverified=unverified if plan.verify else None,
            )
            log.debug("service %s: %s", plan.name, result)
            checks.append(result)
        return ServiceData(checks=checks)


def _broken_ca(plan: Plan, error: str) -> ServiceCheck:
    return ServiceCheck(
        name=plan.name, target=plan.target, protocol=plan.protocol, up=False, error=error[:500]
    )
