"""The `latency` measurement kind: its code, helpers, config, field table and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement
from probefleet.kinds.latency import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from probefleet.kinds.latency.measure import (
        Latency,
    )  # the agent's code: loaded by the agent only

    return Latency


SPEC = KindSpec(
    name="latency",
    result=payload.LatencyResult,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
