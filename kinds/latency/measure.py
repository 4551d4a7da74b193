"""The `latency` measurement: ICMP echo and TCP-connect RTT per target and IP version.

Each target is measured once per IP version it is asked for (its own ``ip_version``, or each
of ``ip_versions``) that its name resolves to; a name with both A and AAAA gives two entries.
A version without an address is left out, unless no version resolves at all: then one entry
says so (sent 0, loss 100 %). Every (target, version) series runs in its own thread, so a
dead target costs ``count x timeout_s`` once, not once per target, and the whole run ends
within ``max_duration_s`` (probes that would overrun it are not sent and not counted).

Statistics are over the replies received (see ``_latency_stats``): min/avg/median/p95/max,
p95 interpolated between ranks, loss %, and jitter = the mean absolute difference between
consecutive RTTs of the received replies. A target that does not answer is data (loss 100 %,
no RTTs), not an error.

A target the run's destination guard refuses (a name the centre gave that resolves to the
office LAN, see kinds.common.destinations) is never probed: the run fails, naming it.

Binding: TCP probes go through ``net.connect``, bound to the link's interface and source
address. ICMP uses icmplib's sockets, bound the same way through ``net.bind`` (icmplib itself
has no interface option). ICMP runs over unprivileged datagram sockets where
net.ipv4.ping_group_range allows, over raw sockets (CAP_NET_RAW) otherwise; which one is
logged, it is not on the wire.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import msgspec
from probefleet.core import wire
from probefleet.core.configkit import Section
from probefleet.kinds.base import Interval, Link, Measurement, Schedule
from probefleet.kinds.common import destinations, net
from probefleet.kinds.common.binding import check_binding, link_for
from probefleet.kinds.common.names import is_host_name
from probefleet.kinds.common.parallel import run_bounded
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.latency import probe
from probefleet.kinds.latency.payload import LatencyData, LatencyTarget
from probefleet.kinds.latency.stats import summarise

log = logging.getLogger(__name__)

_MAX_TARGETS = 32  # x 2 IP versions = LatencyData's 64 entries
# Threads still busy this long after the deadline (stuck in a name lookup) are abandoned.
_GRACE_S = 0.5


class LatencyTargetConfig(Section, frozen=True, kw_only=True):
    """[[measurements.latency.targets]]: one host to measure, by ICMP echo or TCP connect."""

    host: Annotated[
        str, msgspec.Meta(min_length=1, max_length=253, extra=destinations.marker("host"))
    ]
    method: Literal["icmp", "tcp"] = "icmp"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0  # tcp only
    ip_version: net.IpPreference = 0  # 0: each of the measurement's ip_versions


def _default_targets() -> list[LatencyTargetConfig]:
    return [
        LatencyTargetConfig(host="dongnai.gov.vn", method="icmp"),
        LatencyTargetConfig(host="dongnai.gov.vn", method="tcp", port=443),
        LatencyTargetConfig(host="dichvucong.dongnai.gov.vn", method="tcp", port=443),
        LatencyTargetConfig(host="vnnic.vn", method="icmp"),
    ]


def _both_versions() -> list[Literal[4, 6]]:
    return [4, 6]


class LatencyConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.latency]"""

    interval_s: Interval = 300
    targets: Annotated[
        list[LatencyTargetConfig], msgspec.Meta(min_length=1, max_length=_MAX_TARGETS)
    ] = msgspec.field(default_factory=_default_targets)
    ip_versions: Annotated[list[Literal[4, 6]], msgspec.Meta(min_length=1, max_length=2)] = (
        msgspec.field(default_factory=_both_versions)
    )
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10  # probes per target and version
    probe_interval_s: Annotated[float, msgspec.Meta(ge=0.01, le=10.0)] = 0.5
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0, le=10.0)] = 2.0  # per probe
    max_duration_s: Annotated[float, msgspec.Meta(ge=1.0, le=600.0)] = 60.0


def _host_problem(key: str, target: LatencyTargetConfig) -> str | None:
    host = target.host
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        if not is_host_name(host):
            return f"{key}.host = {host!r}: not a host name or IP address"
        return None
    if target.ip_version and literal.version != target.ip_version:
        return f"{key}.ip_version = {target.ip_version}: {host} is an IPv{literal.version} address"
    return None


@dataclass(frozen=True)
class _Job:
    """One series: a target over one IP version."""

    index: int  # the target's place in the config: the output keeps that order
    target: LatencyTargetConfig
    version: Literal[4, 6]


@dataclass
class _Outcome:
    address: str | None = None  # None: the name did not resolve for this version
    samples: list[float | None] | None = None  # RTT ms per probe sent, None when lost
    refused: str | None = None  # why the destination guard refused it


class Latency(Measurement[LatencyConfig]):
    name: ClassVar[wire.Kind] = "latency"
    summary = "ICMP echo and TCP-connect RTT: min/avg/median/p95/max, jitter, loss"
    config_type = LatencyConfig

    def __init__(self, config: LatencyConfig) -> None:
        super().__init__(config)
        prefix = "measurements.latency"
        problems: list[str] = []
        seen: dict[tuple[str, str, int, int], int] = {}
        for i, target in enumerate(config.targets):
            key = f"{prefix}.targets[{i}]"
            if target.method == "tcp" and target.port == 0:
                problems.append(f"{key}.port = 0: a tcp target needs a port (1-65535)")
            if target.method == "icmp" and target.port != 0:
                problems.append(f"{key}.port = {target.port}: only tcp targets take a port")
            if problem := _host_problem(key, target):
                problems.append(problem)
            identity = (target.host.lower(), target.method, target.port, target.ip_version)
            if identity in seen:
                problems.append(f"{key}: the same as targets[{seen[identity]}]")
            seen.setdefault(identity, i)
        if len(set(config.ip_versions)) != len(config.ip_versions):
            problems.append(f"{prefix}.ip_versions = {config.ip_versions}: list each version once")
        if config.timeout_s > config.max_duration_s:
            problems.append(
                f"{prefix}.timeout_s = {config.timeout_s:g}: longer than max_duration_s "
                f"({config.max_duration_s:g}); no probe could be sent"
            )
        if problems:
            raise ValueError("; ".join(problems))

    def run(self, link: Link) -> LatencyData:
        cfg = self.config
        deadline = time.monotonic() + cfg.max_duration_s
        jobs = [
            _Job(index, target, version)
            for index, target in enumerate(cfg.targets)
            for version in ([target.ip_version] if target.ip_version else cfg.ip_versions)
        ]
        icmp_mode = probe.icmp_mode() if any(j.target.method == "icmp" for j in jobs) else "raw"
        for version in sorted({j.version for j in jobs}):
            check_binding(link, version)
        parts = [functools.partial(self._series, job, link, icmp_mode, deadline) for job in jobs]
        # A series still running after the deadline is stuck in its name lookup.
        outcomes = [o or _Outcome() for o in run_bounded(parts, deadline + _GRACE_S)]
        refused = sorted(
            {
                f"targets[{j.index}]: {o.refused}"
                for j, o in zip(jobs, outcomes, strict=True)
                if o.refused
            }
        )
        if refused:
            raise MeasurementError("; ".join(refused)[:500])
        return LatencyData(targets=self._entries(jobs, outcomes))

    def _series(
        self, job: _Job, link: Link, icmp_mode: probe.IcmpMode, deadline: float
    ) -> _Outcome:
        cfg, target = self.config, job.target
        try:
            address = str(net.resolve(target.host, target.port, job.version)[0][1][0])
        except destinations.Refused as exc:
            return _Outcome(refused=exc.reason)
        except MeasurementError as exc:
            log.debug("latency %s over IPv%d: %s", target.host, job.version, exc.reason)
            return _Outcome()
        bound = link_for(link, job.version)
        prober: probe.Prober
        icmp: probe.IcmpProber | None = None
        try:
            if target.method == "icmp":
                prober = icmp = probe.IcmpProber(address, job.version, icmp_mode, bound)
            else:
                prober = probe.tcp_prober(address, target.port, job.version, bound)
        except OSError as exc:  # no ICMPv6 here: nothing can be sent, the address is lost
            log.warning("latency %s (%s): %s", target.host, address, exc)
            return _Outcome(address, samples=[None] * cfg.count)
        try:
            samples = probe.series(
                prober,
                count=cfg.count,
                interval_s=cfg.probe_interval_s,
                timeout_s=cfg.timeout_s,
                deadline=deadline,
            )
        finally:
            if icmp is not None:
                icmp.close()
        if len(samples) < cfg.count:
            log.warning(
                "latency %s %s (%s): %d of %d probes sent within max_duration_s = %g",
                target.method,
                target.host,
                address,
                len(samples),
                cfg.count,
                cfg.max_duration_s,
            )
        return _Outcome(address, samples=samples)

    def _entries(self, jobs: list[_Job], outcomes: list[_Outcome]) -> list[LatencyTarget]:
        entries: list[LatencyTarget] = []
        for index, target in enumerate(self.config.targets):
            mine = [(j, o) for j, o in zip(jobs, outcomes, strict=True) if j.index == index]
            measured = [(j, o) for j, o in mine if o.samples is not None]
            if not measured:  # no address over any version asked (or the lookup hung)
                only = {j.version for j, _ in mine}
                version = only.pop() if len(only) == 1 else None
                log.warning("latency %s: no address over IPv%s", target.host, version or "4/6")
                entries.append(_entry(target, version, None, []))
            for job, outcome in measured:
                assert outcome.samples is not None
                entries.append(_entry(target, job.version, outcome.address, outcome.samples))
        return entries


def _entry(
    target: LatencyTargetConfig,
    version: Literal[4, 6] | None,
    address: str | None,
    samples: list[float | None],
) -> LatencyTarget:
    stats = summarise(samples)
    return LatencyTarget(
        target=target.host,
        method=target.method,
        address=address,
        ip_version=version,
        port=target.port or None,
        sent=stats.sent,
        received=stats.received,
        loss_pct=stats.loss_pct,
        rtt_min_ms=stats.min_ms,
        rtt_avg_ms=stats.avg_ms,
        rtt_median_ms=stats.median_ms,
        rtt_p95_ms=stats.p95_ms,
        rtt_max_ms=stats.max_ms,
        jitter_ms=stats.jitter_ms,
    )
