"""The `dns` measurement kind: its code, helpers, config, field table and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement
from probefleet.kinds.dns import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from probefleet.kinds.dns.measure import Dns  # the agent's code: loaded by the agent only

    return Dns


SPEC = KindSpec(
    name="dns",
    result=payload.DnsResult,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
