"""The `ipv6` measurement kind: its code, helpers, config, field table and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement
from probefleet.kinds.ipv6 import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from probefleet.kinds.ipv6.measure import Ipv6  # the agent's code: loaded by the agent only

    return Ipv6


SPEC = KindSpec(
    name="ipv6",
    result=payload.Ipv6Result,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
