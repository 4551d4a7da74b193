"""The toy kind's field table: one point per run, tagged with its label."""

from __future__ import annotations

from probefleet.kinds.base import Row

from tests.kinds.toy.payload import ToyData


def rows(data: ToyData) -> list[Row]:
    parity = "even" if data.numbers % 2 == 0 else "odd"
    fields = {"numbers": data.numbers, "total": data.total, "took_ms": data.took_ms}
    return [Row({"parity": parity}, dict(fields))]
