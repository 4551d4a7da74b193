"""The `ipv6` measurement (work in progress: filled in by the measurements issue)."""

from __future__ import annotations

from typing import ClassVar

from agent import wire
from agent.errors import MeasurementError
from agent.measurements.base import Interval, Link, Measurement, Schedule


class Ipv6Config(Schedule, frozen=True, kw_only=True):
    """[measurements.ipv6]"""

    interval_s: Interval = 3600


class Ipv6(Measurement[Ipv6Config]):
    name: ClassVar[wire.Kind] = "ipv6"
    summary = "IPv6 readiness: address, route, AAAA, TCP/HTTP over v6 vs v4"
    config_type = Ipv6Config

    def run(self, link: Link) -> wire.Ipv6Data:
        raise MeasurementError("ipv6 is not implemented yet")
