"""The `health` measurement: the probe itself (CPU, memory, disk, temperature, links, spool).

Read with psutil, once per probe (not per link). What only the agent's runtime knows — the
spool, the results it lost (by reason), whether its disk refuses results, and the data
budgets — comes from an optional provider the runtime sets::

    health = Health(config)
    health.extra = lambda: RuntimeFigures(spool_depth=spool.depth(), budgets=ledger.usage())

Without one those fields stay absent (None / empty) on the wire. A provider that raises is
logged and ignored: a broken spool counter must not cost the rest of the health report.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Protocol

import msgspec
from probefleet.core import wire
from probefleet.kinds.base import Interval, Link, Measurement, Schedule
from probefleet.kinds.health.payload import BudgetUsage, HealthData, InterfaceCounters

log = logging.getLogger(__name__)

_MAX_INTERFACES = 32  # HealthData.interfaces
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}\Z")  # wire.IfName
# Temperature sensors that mean "the CPU", best first: the Raspberry Pi's SoC thermal zone
# (cpu_thermal; cpu-thermal on some kernels), Intel's and AMD's package sensors, other SoCs,
# then the ACPI zone as a last resort. Others qualify when their name says cpu or soc.
PREFERRED_SENSORS = (
    "cpu_thermal",
    "cpu-thermal",
    "coretemp",
    "k10temp",
    "zenpower",
    "soc_thermal",
    "soc-thermal",
    "x86_pkg_temp",
    "acpitz",
)
_PACKAGE_LABELS = ("Package id 0", "Tctl", "Tdie")  # the whole chip, not one core


class TempReading(Protocol):
    """One reading as psutil.sensors_temperatures() gives it (its ``shwtemp``)."""

    @property
    def label(self) -> str: ...
    @property
    def current(self) -> float: ...


class IfStats(Protocol):
    """psutil's ``snicstats`` (net_if_stats()), the fields used here."""

    @property
    def isup(self) -> bool: ...
    @property
    def flags(self) -> str: ...


class IoCounters(Protocol):
    """psutil's ``snetio`` (net_io_counters(pernic=True)), the fields used here."""

    @property
    def bytes_recv(self) -> int: ...
    @property
    def bytes_sent(self) -> int: ...
    @property
    def errin(self) -> int: ...
    @property
    def errout(self) -> int: ...
    @property
    def dropin(self) -> int: ...
    @property
    def dropout(self) -> int: ...


Sensors = Callable[[], Mapping[str, Sequence[TempReading]]]


@dataclass(frozen=True)
class RuntimeFigures:
    """The runtime's part of a health report: spool and data budgets (see the module doc)."""

    spool_depth: int | None = None  # results on disk, not yet stored centrally
    spool_bytes: int | None = None
    spool_dropped: int | None = None  # results lost on the probe, ever, all reasons
    dropped_disk_full: int | None = None  # the disk refused them, the memory hold overflowed
    dropped_spool_budget: int | None = None  # forced out by the spool's disk budget
    dropped_unspoolable: int | None = None  # could never be spooled (too large, invalid)
    spool_held: int | None = None  # results held in memory now: the disk refuses them
    disk_full: bool | None = None  # the state dir's disk refuses results: it is full
    budgets: tuple[BudgetUsage, ...] = ()


RuntimeProvider = Callable[[], RuntimeFigures]


class HealthConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.health]"""

    interval_s: Interval = 60
    # CPU use is sampled over this many seconds (the run blocks that long).
    cpu_sample_s: Annotated[float, msgspec.Meta(ge=0.05, le=10.0)] = 0.5
    # The filesystem whose use is reported: the state dir's, where the spool grows.
    disk_path: Annotated[str, msgspec.Meta(min_length=1)] = "/var/lib/probefleet"
    # psutil's name of the temperature sensor to report; "": the CPU's, found by name.
    temperature_sensor: str = ""


def _plausible(value: float) -> bool:
    return math.isfinite(value) and -60.0 <= value <= 150.0  # HealthData.temperature_c


def _chip_temperature(readings: Sequence[TempReading]) -> float | None:
    good = [r for r in readings if _plausible(r.current)]
    for reading in good:
        if reading.label in _PACKAGE_LABELS or reading.label.startswith("Package"):
            return reading.current
    return good[0].current if good else None


def pick_temperature(
    sensors: Mapping[str, Sequence[TempReading]], wanted: str = ""
) -> tuple[str, float] | None:
    """(sensor name, °C) of the CPU, or of ``wanted`` when given; None when not reported."""
    if wanted:
        names = [wanted]
    else:
        others = sorted(n for n in sensors if "cpu" in n.lower() or "soc" in n.lower())
        names = [n for n in PREFERRED_SENSORS if n in sensors]
        names += [n for n in others if n not in names]
    for name in names:
        value = _chip_temperature(sensors.get(name, ()))
        if value is not None:
            return name, round(value, 1)
    return None


def existing_ancestor(path: str) -> Path:
    """``path`` or its nearest existing parent. Before the agent first ran (or on a test
    machine) the state dir may not exist yet; its parent's filesystem is the one it will be
    created on (``/var/lib`` may be a partition of its own), and ``/`` ends the walk."""
    candidate = Path(path).absolute()
    while not candidate.exists() and candidate != candidate.parent:
        candidate = candidate.parent
    return candidate


def _uptime_s(boot_time: Callable[[], float]) -> float:
    # CLOCK_BOOTTIME counts from boot whatever the wall clock does; a Pi's wall clock jumps
    # when NTP first answers, which would make now - boot_time() wrong.
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # not Linux
        return max(0.0, time.time() - boot_time())


class Health(Measurement[HealthConfig]):
    name: ClassVar[wire.Kind] = "health"
    per_link = False
    summary = "the probe itself: CPU, memory, disk, temperature, uptime, interfaces"
    config_type = HealthConfig

    def __init__(self, config: HealthConfig, *, sensors: Sensors | None = None) -> None:
        super().__init__(config)
        if not os.path.isabs(config.disk_path):
            raise ValueError(
                f"measurements.health.disk_path = {config.disk_path!r}: give an absolute path"
            )
        self._sensors = sensors
        # Set by the runtime (scheduler) to report the spool and budgets; see the module doc.
        self.extra: RuntimeProvider | None = None

    def run(self, link: Link) -> HealthData:
        import psutil

        cpu_pct = psutil.cpu_percent(interval=self.config.cpu_sample_s)
        memory = psutil.virtual_memory()
        disk_path = existing_ancestor(self.config.disk_path)
        disk = psutil.disk_usage(str(disk_path))
        figures = self._runtime_figures()
        temperature = self._temperature()
        log.debug("health: disk %s, temperature %s", disk_path, temperature)
        return HealthData(
            cpu_pct=round(min(100.0, max(0.0, cpu_pct)), 1),
            load_1m=round(os.getloadavg()[0], 2),
            memory_used_pct=round(memory.percent, 1),
            memory_available_bytes=int(memory.available),
            disk_used_pct=round(disk.percent, 1),
            disk_free_bytes=int(disk.free),
            uptime_s=round(_uptime_s(psutil.boot_time), 3),
            agent_rss_bytes=int(psutil.Process().memory_info().rss),
            temperature_c=temperature[1] if temperature else None,
            spool_depth=figures.spool_depth,
            spool_bytes=figures.spool_bytes,
            spool_dropped=figures.spool_dropped,
            dropped_disk_full=figures.dropped_disk_full,
            dropped_spool_budget=figures.dropped_spool_budget,
            dropped_unspoolable=figures.dropped_unspoolable,
            spool_held=figures.spool_held,
            disk_full=figures.disk_full,
            interfaces=interface_counters(
                psutil.net_if_stats(), psutil.net_io_counters(pernic=True)
            ),
            budgets=list(figures.budgets),
        )

    def _temperature(self) -> tuple[str, float] | None:
        import psutil

        try:
            if self._sensors is not None:
                sensors = self._sensors()
            elif hasattr(psutil, "sensors_temperatures"):  # Linux and FreeBSD only
                sensors = psutil.sensors_temperatures()
            else:
                return None
        except OSError as exc:  # an unreadable /sys file must not cost the whole report
            log.warning("health: cannot read temperature sensors: %s", exc)
            return None
        return pick_temperature(sensors, self.config.temperature_sensor)

    def _runtime_figures(self) -> RuntimeFigures:
        if self.extra is None:
            return RuntimeFigures()
        try:
            return self.extra()
        except Exception:  # the runtime's bug: report the rest, say so in the log
            log.exception("health: the runtime figures provider failed; spool fields left out")
            return RuntimeFigures()


def interface_counters(
    stats: Mapping[str, IfStats], counters: Mapping[str, IoCounters]
) -> list[InterfaceCounters]:
    """Per-interface counters from psutil's net_if_stats() and net_io_counters(pernic=True):
    loopback left out, names sorted, at most 32 (the wire's limit)."""
    out = []
    for name in sorted(counters):
        stat = stats.get(name)
        flags = stat.flags.split(",") if stat is not None else []
        if name == "lo" or "loopback" in flags or not _IFNAME.match(name):
            continue
        io = counters[name]
        out.append(
            InterfaceCounters(
                interface=name,
                up=stat is not None and stat.isup,
                rx_bytes=io.bytes_recv,
                tx_bytes=io.bytes_sent,
                rx_errors=io.errin,
                tx_errors=io.errout,
                rx_drops=io.dropin,
                tx_drops=io.dropout,
            )
        )
    return out[:_MAX_INTERFACES]
