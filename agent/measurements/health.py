"""The `health` measurement (work in progress: filled in by the measurements issue)."""

from __future__ import annotations

from typing import ClassVar

from agent import wire
from agent.errors import MeasurementError
from agent.measurements.base import Interval, Link, Measurement, Schedule


class HealthConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.health]"""

    interval_s: Interval = 60


class Health(Measurement[HealthConfig]):
    name: ClassVar[wire.Kind] = "health"
    per_link = False
    summary = "the probe itself: CPU, memory, disk, temperature, uptime, interfaces"
    config_type = HealthConfig

    def run(self, link: Link) -> wire.HealthData:
        raise MeasurementError("health is not implemented yet")
