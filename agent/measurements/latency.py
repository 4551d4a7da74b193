"""The `latency` measurement (work in progress: filled in by the measurements issue)."""

from __future__ import annotations

from typing import ClassVar

from agent import wire
from agent.errors import MeasurementError
from agent.measurements.base import Interval, Link, Measurement, Schedule


class LatencyConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.latency]"""

    interval_s: Interval = 300


class Latency(Measurement[LatencyConfig]):
    name: ClassVar[wire.Kind] = "latency"
    summary = "ICMP echo and TCP-connect RTT: min/avg/median/p95/max, jitter, loss"
    config_type = LatencyConfig

    def run(self, link: Link) -> wire.LatencyData:
        raise MeasurementError("latency is not implemented yet")
