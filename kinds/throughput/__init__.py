"""The `throughput` measurement kind: its code, helpers, config, field table and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement
from probefleet.kinds.throughput import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from probefleet.kinds.throughput.measure import (
        Throughput,
    )  # the agent's code: loaded by the agent only

    return Throughput


SPEC = KindSpec(
    name="throughput",
    result=payload.ThroughputResult,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
