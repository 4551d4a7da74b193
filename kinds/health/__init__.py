"""The `health` measurement kind: its code, helpers, config, field table and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement
from probefleet.kinds.health import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from probefleet.kinds.health.measure import Health  # the agent's code: loaded by the agent only

    return Health


SPEC = KindSpec(
    name="health",
    result=payload.HealthResult,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
