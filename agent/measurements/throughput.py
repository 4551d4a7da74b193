"""The `throughput` measurement (work in progress: filled in by the measurements issue)."""

from __future__ import annotations

from typing import ClassVar

from agent import wire
from agent.errors import MeasurementError
from agent.measurements.base import Interval, Link, Measurement, Schedule


class ThroughputConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.throughput]"""

    interval_s: Interval = 3600


class Throughput(Measurement[ThroughputConfig]):
    name: ClassVar[wire.Kind] = "throughput"
    heavy = True
    summary = "download/upload goodput over parallel TCP streams (LibreSpeed or plain HTTP servers)"
    config_type = ThroughputConfig

    def run(self, link: Link) -> wire.ThroughputData:
        raise MeasurementError("throughput is not implemented yet")
