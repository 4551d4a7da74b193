"""The registry of measurements: name -> class. Adding a measurement is one line here,
one module beside this file and one ``[measurements.<name>]`` table in the sample config."""

from __future__ import annotations

from typing import Any, Final

from probefleet.core import wire
from probefleet.kinds.base import Link, Measurement, Schedule
from probefleet.kinds.dns.measure import Dns
from probefleet.kinds.health.measure import Health
from probefleet.kinds.ipv6.measure import Ipv6
from probefleet.kinds.latency.measure import Latency
from probefleet.kinds.ookla.measure import Ookla
from probefleet.kinds.service.measure import Service
from probefleet.kinds.throughput.measure import Throughput

REGISTRY: Final[dict[wire.Kind, type[Measurement[Any]]]] = {
    "throughput": Throughput,
    "ookla": Ookla,
    "latency": Latency,
    "dns": Dns,
    "ipv6": Ipv6,
    "service": Service,
    "health": Health,
}

__all__ = ["REGISTRY", "Link", "Measurement", "Schedule"]
