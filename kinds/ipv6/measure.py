"""The `ipv6` measurement: is the link IPv6-capable (address + route), and does IPv6 work?

RIPE Atlas's distinction, one verdict per check (``Ipv6Check``):

- ``global_address``: the link's interface (any interface when unbound) holds a global-scope
  IPv6 address (see ``_ipv6_local.classify``; 2001:db8::/32 counts, on purpose).
- ``default_route``: a usable ::/0 route exists (on the link's interface when bound).
- per target, ``aaaa``: its name has an AAAA record (``skip`` when the config gives the
  IPv6 address); ``tcp``: TCP handshakes over IPv6 and IPv4, median connect time of each;
  ``http``: a GET over IPv6 (and IPv4, for comparison) answers 2xx/3xx (``skip`` when the
  IPv6 handshake failed).

``capable`` = global_address and default_route pass. ``works`` = at least one ``tcp`` or
``http`` check passed, i.e. some target completed a TCP handshake over IPv6; skips never
count. A failure is a verdict with a detail, not an exception; the whole run stays within
``max_duration_s`` (what is left when the budget runs out is ``skip``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import statistics
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

import msgspec
from probefleet.core import wire
from probefleet.core.configkit import Section
from probefleet.kinds.base import Interval, Link, Measurement, Schedule
from probefleet.kinds.common.net import bind
from probefleet.kinds.ipv6 import reach
from probefleet.kinds.ipv6.local import LocalView, default_routes, ipv6_addresses
from probefleet.kinds.ipv6.payload import Ipv6Check, Ipv6Data

log = logging.getLogger(__name__)

_MAX_DETAIL = 500  # wire.Text
_MAX_TARGETS = 20  # 2 link checks + 3 per target must fit Ipv6Data's 64 checks


class Ipv6Target(Section, frozen=True, kw_only=True):
    """[[measurements.ipv6.targets]]: a dual-stack service, by URL (http or https)."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    # Literal addresses to use instead of looking the URL's host up (empty: A / AAAA lookup).
    v4: str = ""
    v6: str = ""


def _default_targets() -> list[Ipv6Target]:
    return [
        Ipv6Target(url="https://dongnai.gov.vn/"),
        Ipv6Target(url="https://dichvucong.dongnai.gov.vn/"),
        Ipv6Target(url="https://www.google.com/"),
    ]


class Ipv6Config(Schedule, frozen=True, kw_only=True):
    """[measurements.ipv6]"""

    interval_s: Interval = 3600
    targets: Annotated[list[Ipv6Target], msgspec.Meta(min_length=1, max_length=_MAX_TARGETS)] = (
        msgspec.field(default_factory=_default_targets)
    )
    connects: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3  # per IP version and target
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0, le=30.0)] = 3.0  # per lookup/connect/GET
    max_duration_s: Annotated[float, msgspec.Meta(ge=1.0, le=600.0)] = 60.0


@dataclass(frozen=True)
class _Plan:
    """One target, parsed once by the constructor."""

    label: str  # the URL's host: Ipv6Check.target
    port: int
    request: reach.Request
    v4: str | None  # literal, or None: look it up (if the host is a name)
    v6: str | None
    named: bool  # the URL's host is a name, not an address


def _plan(index: int, target: Ipv6Target) -> tuple[_Plan | None, list[str]]:
    key = f"measurements.ipv6.targets[{index}]"
    problems = []
    parts = urlsplit(target.url)
    try:
        port = parts.port
    except ValueError:
        port, host = None, None
        problems.append(f"{key}.url = {target.url!r}: invalid port")
    else:
        host = parts.hostname
    if parts.scheme not in ("http", "https"):
        problems.append(f"{key}.url = {target.url!r}: must start with http:// or https://")
    elif not host or parts.username is not None or len(host) > 253:
        problems.append(f"{key}.url = {target.url!r}: needs a host name, and no user:password@")
    literal = None
    if host:
        with contextlib.suppress(ValueError):
            literal = ipaddress.ip_address(host)
    v4, v6 = target.v4 or None, target.v6 or None
    for name, value, cls in (("v4", v4, ipaddress.IPv4Address), ("v6", v6, ipaddress.IPv6Address)):
        if value is None:
            continue
        try:
            cls(value)
        except ValueError:
            problems.append(f"{key}.{name} = {value!r}: not an IPv{name[1]} address")
    if isinstance(literal, ipaddress.IPv4Address):
        v4 = v4 or host
        if v6 is None:
            problems.append(f"{key}.url = {target.url!r}: an IPv4 address; give v6 too")
    elif isinstance(literal, ipaddress.IPv6Address):
        v6 = v6 or host
    if problems or host is None:
        return None, problems
    tls = parts.scheme == "https"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = reach.Request(
        path=path,
        host_header=parts.netloc,
        tls=tls,
        server_name=None if literal else host,
    )
    return _Plan(host, port or (443 if tls else 80), request, v4, v6, literal is None), []


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


CheckName = Literal["global_address", "default_route", "aaaa", "tcp", "http"]
Verdict = Literal["pass", "fail", "skip"]
_TARGET_CHECKS: tuple[CheckName, ...] = ("aaaa", "tcp", "http")


def _check(
    check: CheckName,
    verdict: Verdict,
    *,
    target: str | None = None,
    detail: str | None = None,
    rtt_v6_ms: float | None = None,
    rtt_v4_ms: float | None = None,
) -> Ipv6Check:
    return Ipv6Check(
        check=check,
        verdict=verdict,
        target=target,
        detail=_clip(detail) if detail else None,
        rtt_v6_ms=rtt_v6_ms,
        rtt_v4_ms=rtt_v4_ms,
    )


class Ipv6(Measurement[Ipv6Config]):
    name: ClassVar[wire.Kind] = "ipv6"
    summary = "IPv6 readiness: address, route, AAAA, TCP/HTTP over v6 vs v4"
    config_type = Ipv6Config

    def __init__(self, config: Ipv6Config, *, local: LocalView | None = None) -> None:
        super().__init__(config)
        self.local = local or LocalView()
        problems: list[str] = []
        self.plans: list[_Plan] = []
        for index, target in enumerate(config.targets):
            plan, found = _plan(index, target)
            problems.extend(found)
            if plan is not None:
                self.plans.append(plan)
        if problems:
            raise ValueError("; ".join(problems))

    def run(self, link: Link) -> Ipv6Data:
        _check_binding(link)
        scope = link.interface
        checks: list[Ipv6Check] = []
        address_check, global_count = self._address_check(scope)
        route_check = self._route_check(scope)
        checks += [address_check, route_check]
        budget = reach.Budget(self.config.max_duration_s, self.config.timeout_s)
        for plan in self.plans:
            checks += self._target_checks(plan, link, budget)
        capable = address_check.verdict == "pass" and route_check.verdict == "pass"
        works = any(c.check in ("tcp", "http") and c.verdict == "pass" for c in checks)
        for c in checks:
            log.debug("ipv6 %s %s: %s (%s)", c.check, c.target or "", c.verdict, c.detail)
        return Ipv6Data(capable=capable, works=works, global_addresses=global_count, checks=checks)

    # --- the link ---------------------------------------------------------------------

    def _address_check(self, scope: str | None) -> tuple[Ipv6Check, int]:
        where = f" on {scope}" if scope else ""
        try:
            found = ipv6_addresses(self.local.if_addrs(), scope)
        except OSError as exc:
            return _check("global_address", "fail", detail=f"cannot list addresses: {exc}"), 0
        good = [a for a in found if a.kind == "global"]
        if good:
            return _check("global_address", "pass", detail=", ".join(map(str, good))), len(good)
        others = ", ".join(f"{a} ({a.kind})" for a in found)
        detail = f"no global IPv6 address{where}" + (f"; found {others}" if others else "")
        return _check("global_address", "fail", detail=detail), 0

    def _route_check(self, scope: str | None) -> Ipv6Check:
        where = f" on {scope}" if scope else ""
        try:
            table = self.local.route_table()
        except FileNotFoundError:
            return _check("default_route", "fail", detail="IPv6 is disabled in this kernel")
        except OSError as exc:
            return _check("default_route", "fail", detail=f"cannot read routes: {exc}")
        routes = default_routes(table, scope)
        if routes:
            return _check("default_route", "pass", detail=", ".join(map(str, routes)))
        return _check("default_route", "fail", detail=f"no IPv6 default route{where}")

    # --- the targets ----------------------------------------------------------------------

    def _target_checks(self, plan: _Plan, link: Link, budget: reach.Budget) -> list[Ipv6Check]:
        label = plan.label
        try:
            aaaa, v6 = self._aaaa(plan, budget)
        except reach.BudgetSpent as spent:
            return [_check(c, "skip", target=label, detail=str(spent)) for c in _TARGET_CHECKS]
        if v6 is None:
            why = "no IPv6 address (aaaa failed)"
            skips = [_check(c, "skip", target=label, detail=why) for c in _TARGET_CHECKS[1:]]
            return [aaaa, *skips]
        try:
            v4, v4_problem = self._v4_address(plan, budget)
            tcp = self._tcp(plan, link, budget, v6=v6, v4=v4, v4_problem=v4_problem)
        except reach.BudgetSpent as spent:
            skips = [_check(c, "skip", target=label, detail=str(spent)) for c in _TARGET_CHECKS[1:]]
            return [aaaa, *skips]
        if tcp.verdict != "pass":
            return [aaaa, tcp, _check("http", "skip", target=label, detail="tcp over IPv6 failed")]
        # IPv4 HTTP only as a comparison, and only where IPv4 connects at all.
        v4_ok = v4 if tcp.rtt_v4_ms is not None else None
        try:
            http = self._http(plan, link, budget, v6, v4_ok)
        except reach.BudgetSpent as spent:
            http = _check("http", "skip", target=label, detail=str(spent))
        return [aaaa, tcp, http]

    def _aaaa(self, plan: _Plan, budget: reach.Budget) -> tuple[Ipv6Check, str | None]:
        if plan.v6 is not None:
            detail = f"not looked up: address {plan.v6} given"
            return _check("aaaa", "skip", target=plan.label, detail=detail), plan.v6
        try:
            found = reach.resolve(plan.label, 6, budget.timeout())
        except reach.Unreachable as exc:
            return _check("aaaa", "fail", target=plan.label, detail=str(exc)), None
        return _check("aaaa", "pass", target=plan.label, detail=", ".join(found)), found[0]

    def _v4_address(self, plan: _Plan, budget: reach.Budget) -> tuple[str | None, str]:
        if plan.v4 is not None or not plan.named:  # an IPv6 literal URL: nothing to compare
            return plan.v4, ""
        try:
            return reach.resolve(plan.label, 4, budget.timeout())[0], ""
        except reach.Unreachable as exc:
            return None, f"IPv4: {exc}"

    def _tcp(
        self,
        plan: _Plan,
        link: Link,
        budget: reach.Budget,
        *,
        v6: str,
        v4: str | None,
        v4_problem: str,
    ) -> Ipv6Check:
        rtts: dict[int, list[float]] = {6: [], 4: []}
        errors: dict[int, str] = {}
        versions: list[reach.Version] = [6, 4] if v4 is not None else [6]
        address = {6: v6, 4: v4 or ""}
        # Alternate v6 and v4 so that both see the same moments of the line.
        for _ in range(self.config.connects):
            for version in versions:
                try:
                    ms = reach.connect_ms(
                        address[version], plan.port, link, version, budget.timeout()
                    )
                except reach.Unreachable as exc:
                    errors[version] = str(exc)
                else:
                    rtts[version].append(ms)
        parts = []
        for version in versions:
            where = reach.bracket(address[version], plan.port)
            count = f"{len(rtts[version])}/{self.config.connects} connected"
            why = f", {errors[version]}" if version in errors else ""
            parts.append(f"IPv{version} {where}: {count}{why}")
        if v4_problem:
            parts.append(v4_problem)
        return _check(
            "tcp",
            "pass" if rtts[6] else "fail",
            target=plan.label,
            detail="; ".join(parts),
            rtt_v6_ms=_median(rtts[6]),
            rtt_v4_ms=_median(rtts[4]),
        )

    def _http(
        self, plan: _Plan, link: Link, budget: reach.Budget, v6: str, v4: str | None
    ) -> Ipv6Check:
        times: dict[int, float] = {}
        parts = []
        verdict: Verdict = "fail"
        # IPv6 first: a cold server answers its first GET a few ms slower (measured: ~3 ms
        # on loopback), so this order can only understate IPv6, never flatter it.
        addresses: list[tuple[reach.Version, str]] = [(6, v6)]
        if v4:
            addresses.append((4, v4))
        for version, address in addresses:
            try:
                status, ms = reach.http_status(
                    address,
                    plan.port,
                    link,
                    version,
                    request=plan.request,
                    timeout_s=budget.timeout(),
                )
            except reach.Unreachable as exc:
                parts.append(f"IPv{version}: {exc}")
                continue
            times[version] = round(ms, 3)
            parts.append(f"IPv{version}: HTTP {status}")
            if version == 6 and 200 <= status < 400:
                verdict = "pass"
        return _check(
            "http",
            verdict,
            target=plan.label,
            detail="; ".join(parts),
            rtt_v6_ms=times.get(6),
            rtt_v4_ms=times.get(4),
        )


def _check_binding(link: Link) -> None:
    """Fail the whole run (MeasurementError) when the interface cannot be bound at all: that
    says nothing about IPv6, and every verdict would otherwise be a misleading "fail"."""
    if not link.interface:
        return
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 in this kernel: the checks will say so
            continue
        with sock:
            bind(sock, Link(interface=link.interface))
