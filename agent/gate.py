"""The busy-line gate: before a bandwidth test, wait for a quiet link and an idle CPU.

SamKnows' method (FCC Measuring Broadband America, Ofcom): a scheduled test does not run
over the user's traffic. Before it, the gate samples the measured interface's byte counters
(received + sent) and the CPU for ``sample_s``; while either is above its threshold it
samples again every ``recheck_s``, for at most ``max_wait_s``, then gives up with the values
that blocked it, which the runtime records as a skipped result::

    gate = BusyLineGate(cfg.gate)
    decision = gate.check("wwan0", stop=stopping)
    if not decision.clear:
        raise MeasurementError(decision.reason, decision.detail())   # -> a "skipped" result

The gate runs before the test, so the test's own traffic is never counted. Cross-traffic is
in bytes per second (B/s), not bits: ``cross_traffic_bytes_per_s`` says so in its name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Protocol

import msgspec
from probefleet.core.configkit import Section

log = logging.getLogger(__name__)


class NicCounters(Protocol):
    """psutil's ``snetio`` (net_io_counters(pernic=True) values), the fields used here."""

    @property
    def bytes_recv(self) -> int: ...
    @property
    def bytes_sent(self) -> int: ...


Counters = Callable[[], Mapping[str, NicCounters]]
# Cumulative (busy seconds, total seconds) of all CPUs since boot; the gate takes deltas.
CpuTimes = Callable[[], tuple[float, float]]


class GateConfig(Section, frozen=True, kw_only=True):
    """[gate]: SamKnows' thresholds and timing by default."""

    enabled: bool = True
    # Other traffic on the interface (received + sent) above this blocks a test.
    max_cross_traffic_bytes_per_s: Annotated[int, msgspec.Meta(ge=0, le=10**10)] = 25_000
    # CPU use of the whole probe above this blocks a test (the Pi would be the bottleneck).
    max_cpu_pct: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] = 30.0
    # Each look lasts this long (counters and CPU are compared at its start and end).
    sample_s: Annotated[float, msgspec.Meta(ge=0.1, le=10.0)] = 1.0
    # While busy, look again this often (from the start of one look to the next)...
    recheck_s: Annotated[float, msgspec.Meta(ge=0.1, le=300.0)] = 5.0
    # ...for at most this long; then the test is skipped. 0 = one look, no waiting.
    max_wait_s: Annotated[float, msgspec.Meta(ge=0.0, le=3600.0)] = 30.0

    def __post_init__(self) -> None:
        if self.sample_s > self.recheck_s:
            raise ValueError(
                f"gate.sample_s = {self.sample_s}: must not exceed gate.recheck_s "
                f"({self.recheck_s}); a look cannot last longer than the gap between looks"
            )


@dataclass(frozen=True)
class GateDecision:
    """What the gate saw last. ``clear``: go ahead. Otherwise ``reason`` says why not and
    :meth:`detail` gives the numbers for the skipped result's ``detail``."""

    clear: bool
    reason: str
    waited_s: float  # from the first look's start to the decision
    checks: int  # looks taken
    cross_traffic_bytes_per_s: float | None  # None: the interface has no counters
    cpu_pct: float | None
    max_cross_traffic_bytes_per_s: float
    max_cpu_pct: float
    stopped: bool = False  # the stop event interrupted the wait

    def detail(self) -> dict[str, float]:
        """Numbers for a result's ``detail`` (keys match the wire's [A-Za-z0-9_.:-]{1,64})."""
        out = {
            "cross_traffic_bytes_per_s": self.cross_traffic_bytes_per_s,
            "cpu_pct": self.cpu_pct,
            "waited_s": self.waited_s,
            "checks": float(self.checks),
            "max_cross_traffic_bytes_per_s": self.max_cross_traffic_bytes_per_s,
            "max_cpu_pct": self.max_cpu_pct,
        }
        return {k: round(float(v), 3) for k, v in out.items() if v is not None}


def _psutil_counters() -> Mapping[str, NicCounters]:
    import psutil

    return psutil.net_io_counters(pernic=True)


def _psutil_cpu_times() -> tuple[float, float]:
    import psutil

    # psutil.cpu_percent(interval=None) keeps its "last call" state in the module, shared
    # with the health measurement; deltas of cpu_times() are ours alone. Same arithmetic as
    # psutil: guest time is already inside user/nice on Linux, idle includes iowait.
    t = psutil.cpu_times()
    total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    idle = t.idle + getattr(t, "iowait", 0.0)
    return total - idle, total


def _psutil_loopbacks() -> set[str]:
    import psutil

    found = {"lo"}
    for name, stats in psutil.net_if_stats().items():
        if "loopback" in getattr(stats, "flags", "").split(","):
            found.add(name)
    return found


def _fmt_int(value: float) -> str:
    return f"{value:,.0f}"


class BusyLineGate:
    """Waits for a quiet line; see the module doc. Every I/O is a seam for tests:
    ``counters`` (psutil.net_io_counters(pernic=True)), ``cpu`` (cumulative busy/total CPU
    seconds), ``sleep`` (called instead of waiting on ``stop``), ``clock`` (monotonic),
    ``loopbacks`` (names left out when no interface is given)."""

    def __init__(
        self,
        config: GateConfig,
        *,
        counters: Counters = _psutil_counters,
        cpu: CpuTimes = _psutil_cpu_times,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        loopbacks: Callable[[], set[str]] = _psutil_loopbacks,
    ) -> None:
        self.config = config
        self._counters = counters
        self._cpu = cpu
        self._sleep = sleep
        self._clock = clock
        self._loopbacks = loopbacks

    def check(self, interface: str | None, stop: threading.Event | None = None) -> GateDecision:
        """Look at ``interface`` (None: every non-loopback one, summed) until it is quiet or
        ``max_wait_s`` has passed; ``stop`` (set on SIGTERM) ends the wait at once."""
        cfg = self.config
        start = self._clock()
        if not cfg.enabled:
            return self._decide(True, "gate disabled", start, checks=0, traffic=None, cpu=None)
        checks = 0
        while True:
            checks += 1
            sampled = self._sample(interface, stop)
            if sampled is None:
                return self._stopped(start, checks)
            traffic, cpu = sampled
            too_much = traffic is not None and traffic > cfg.max_cross_traffic_bytes_per_s
            too_busy = cpu > cfg.max_cpu_pct
            if not (too_much or too_busy):
                if traffic is None:
                    # Absent (modem unplugged, link down): the test will say so better.
                    log.warning("gate: interface %s has no byte counters; not gated", interface)
                    reason = f"not gated: {interface} has no counters; CPU {cpu:.0f} %"
                else:
                    reason = f"line quiet: cross-traffic {_fmt_int(traffic)} B/s, CPU {cpu:.0f} %"
                return self._decide(True, reason, start, checks=checks, traffic=traffic, cpu=cpu)
            # Looks start on a grid (0, recheck, 2 x recheck ...) so that late wake-ups do
            # not add up; the last one starts at or before max_wait_s.
            next_offset = checks * cfg.recheck_s
            if next_offset > cfg.max_wait_s + 1e-9:
                return self._refuse(interface, start, checks, traffic, cpu)
            log.debug("gate: busy (%s B/s, CPU %.0f %%), looking again", traffic, cpu)
            if not self._pause(start + next_offset - self._clock(), stop):
                return self._stopped(start, checks, traffic, cpu)

    # --- one look --------------------------------------------------------------------------

    def _sample(
        self, interface: str | None, stop: threading.Event | None
    ) -> tuple[float | None, float] | None:
        """(cross-traffic B/s or None without counters, CPU %) over one ``sample_s``
        window; None when stopped meanwhile."""
        skip = set() if interface else self._loopbacks()
        before, cpu_before, t0 = self._counters(), self._cpu(), self._clock()
        if not self._pause(self.config.sample_s, stop):
            return None
        after, cpu_after, t1 = self._counters(), self._cpu(), self._clock()
        elapsed = max(t1 - t0, 1e-6)
        names = [interface] if interface else [n for n in after if n not in skip]
        moved = 0
        seen = False
        for name in names:
            a, b = before.get(name), after.get(name)
            if a is None or b is None:
                continue  # appeared or vanished during the look: nothing comparable
            seen = True
            # A counter that went backwards was reset (interface re-created): count from 0.
            for old, new in ((a.bytes_recv, b.bytes_recv), (a.bytes_sent, b.bytes_sent)):
                moved += new - old if new >= old else new
        traffic = moved / elapsed if seen or not interface else None
        busy = cpu_after[0] - cpu_before[0]
        total = cpu_after[1] - cpu_before[1]
        cpu = min(100.0, max(0.0, 100.0 * busy / total)) if total > 0 else 0.0
        return traffic, cpu

    def _pause(self, seconds: float, stop: threading.Event | None) -> bool:
        """Wait ``seconds``; False when ``stop`` was set (before or during the wait)."""
        if stop is not None and stop.is_set():
            return False
        if seconds > 0:
            if self._sleep is not None:
                self._sleep(seconds)
            elif stop is not None:
                return not stop.wait(seconds)
            else:
                time.sleep(seconds)
        return not (stop is not None and stop.is_set())

    # --- decisions -------------------------------------------------------------------------

    def _refuse(
        self, interface: str | None, start: float, checks: int, traffic: float | None, cpu: float
    ) -> GateDecision:
        cfg = self.config
        blockers = []
        if traffic is not None and traffic > cfg.max_cross_traffic_bytes_per_s:
            blockers.append(
                f"cross-traffic {_fmt_int(traffic)} B/s > "
                f"{_fmt_int(cfg.max_cross_traffic_bytes_per_s)} B/s"
            )
        if cpu > cfg.max_cpu_pct:
            blockers.append(f"CPU {cpu:.0f} % > {cfg.max_cpu_pct:.0f} %")
        waited = self._clock() - start
        reason = (
            f"line busy on {interface or 'all interfaces'}: {' and '.join(blockers)} "
            f"after waiting {waited:.0f} s ({checks} checks)"
        )
        log.info("gate: %s", reason)
        return self._decide(False, reason, start, checks=checks, traffic=traffic, cpu=cpu)

    def _decide(
        self,
        clear: bool,
        reason: str,
        start: float,
        *,
        checks: int,
        traffic: float | None,
        cpu: float | None,
        stopped: bool = False,
    ) -> GateDecision:
        return GateDecision(
            clear=clear,
            reason=reason,
            waited_s=round(max(0.0, self._clock() - start), 3),
            checks=checks,
            cross_traffic_bytes_per_s=None if traffic is None else round(traffic, 1),
            cpu_pct=None if cpu is None else round(cpu, 1),
            max_cross_traffic_bytes_per_s=float(self.config.max_cross_traffic_bytes_per_s),
            max_cpu_pct=self.config.max_cpu_pct,
            stopped=stopped,
        )

    def _stopped(
        self, start: float, checks: int, traffic: float | None = None, cpu: float | None = None
    ) -> GateDecision:
        reason = "stopping: the agent is shutting down"
        return self._decide(
            False, reason, start, checks=checks, traffic=traffic, cpu=cpu, stopped=True
        )
