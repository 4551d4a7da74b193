"""The `ookla` measurement kind: its code, helpers, config, field table and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement
from probefleet.kinds.ookla import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from probefleet.kinds.ookla.measure import Ookla  # the agent's code: loaded by the agent only

    return Ookla


SPEC = KindSpec(
    name="ookla",
    result=payload.OoklaResult,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
