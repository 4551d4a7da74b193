"""A toy measurement kind, for the test that a kind is its folder plus one registry line.

It lives under tests/ so that production never registers it; everything a real kind has is
here: payload.py (wire), fields.py (InfluxDB), measure.py (agent code), sample.toml, README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement

from tests.kinds.toy import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from tests.kinds.toy.measure import Toy

    return Toy


SPEC = KindSpec(
    name="toy",
    result=payload.ToyResult,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
