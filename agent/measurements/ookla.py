"""The `ookla` measurement (work in progress: filled in by the measurements issue)."""

from __future__ import annotations

from typing import ClassVar

from agent import wire
from agent.errors import MeasurementError
from agent.measurements.base import Interval, Link, Measurement, Schedule


class OoklaConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.ookla]"""

    # The comparison method, and it moves a lot of data: off unless asked for.
    enabled: bool = False
    interval_s: Interval = 86400


class Ookla(Measurement[OoklaConfig]):
    name: ClassVar[wire.Kind] = "ookla"
    heavy = True
    summary = "Ookla's network through speedtest-cli: the comparison method"
    config_type = OoklaConfig

    def run(self, link: Link) -> wire.ThroughputData:
        raise MeasurementError("ookla is not implemented yet")
