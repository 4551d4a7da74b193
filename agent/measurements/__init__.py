"""The registry of measurements: name -> class. Adding a measurement is one line here,
one module beside this file and one ``[measurements.<name>]`` table in the sample config."""

from __future__ import annotations

from typing import Any, Final

from agent import wire
from agent.measurements.base import Link, Measurement, Schedule
from agent.measurements.dns import Dns
from agent.measurements.health import Health
from agent.measurements.ipv6 import Ipv6
from agent.measurements.latency import Latency
from agent.measurements.ookla import Ookla
from agent.measurements.service import Service
from agent.measurements.throughput import Throughput

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
