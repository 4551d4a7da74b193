"""The `dns` measurement (work in progress: filled in by the measurements issue)."""

from __future__ import annotations

from typing import ClassVar

from agent import wire
from agent.errors import MeasurementError
from agent.measurements.base import Interval, Link, Measurement, Schedule


class DnsConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.dns]"""

    interval_s: Interval = 900


class Dns(Measurement[DnsConfig]):
    name: ClassVar[wire.Kind] = "dns"
    summary = "resolution time per resolver, A and AAAA"
    config_type = DnsConfig

    def run(self, link: Link) -> wire.DnsData:
        raise MeasurementError("dns is not implemented yet")
