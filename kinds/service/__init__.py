"""The `service` measurement kind: its code, helpers, config, field table and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement
from probefleet.kinds.service import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from probefleet.kinds.service.measure import (
        Service,
    )  # the agent's code: loaded by the agent only

    return Service


SPEC = KindSpec(
    name="service",
    result=payload.ServiceResult,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
