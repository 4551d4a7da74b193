"""The `service` measurement (work in progress: filled in by the measurements issue)."""

from __future__ import annotations

from typing import ClassVar

from agent import wire
from agent.errors import MeasurementError
from agent.measurements.base import Interval, Link, Measurement, Schedule


class ServiceConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.service]"""

    interval_s: Interval = 300


class Service(Measurement[ServiceConfig]):
    name: ClassVar[wire.Kind] = "service"
    summary = "the province's services: HTTP(S) status, timings, certificate; TCP reachability"
    config_type = ServiceConfig

    def run(self, link: Link) -> wire.ServiceData:
        raise MeasurementError("service is not implemented yet")
