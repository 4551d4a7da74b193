"""The `radio` measurement kind: what the modem behind a mobile interface says (technology,
operator, signal, serving cell), read from ModemManager over D-Bus; no data use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement
from probefleet.kinds.radio import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from probefleet.kinds.radio.measure import Radio  # the agent's code: loaded by the agent only

    return Radio


SPEC = KindSpec(
    name="radio",
    result=payload.RadioResult,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
