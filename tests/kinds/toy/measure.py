"""The toy kind's agent code: adds up the configured numbers (no network)."""

from __future__ import annotations

import time
from typing import Annotated, ClassVar

import msgspec
from probefleet.kinds.base import Link, Measurement, Schedule

from tests.kinds.toy.payload import ToyData


class ToyConfig(Schedule, frozen=True, kw_only=True):
    interval_s: Annotated[int, msgspec.Meta(ge=10)] = 10
    numbers: Annotated[list[float], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=lambda: [1.0, 2.0]
    )


class Toy(Measurement[ToyConfig]):
    name: ClassVar[str] = "toy"
    summary: ClassVar[str] = "adds up numbers (a test kind)"
    config_type: ClassVar[type[Schedule]] = ToyConfig
    per_link: ClassVar[bool] = False

    def run(self, link: Link) -> ToyData:
        started = time.perf_counter()
        total = float(sum(self.config.numbers))
        took_ms = (time.perf_counter() - started) * 1000.0
        return ToyData(numbers=len(self.config.numbers), total=total, took_ms=took_ms)
