"""What a measurement raises when it ran but produced no result.

    MeasurementError        becomes a "failed" result with .reason and .detail (a failure
    │                       is a result, not a crash)
    └── MeasurementTimeout  it ran out of its time budget

The agent's own errors (state directory, spool) are in :mod:`probefleet.agent.errors`.
"""

from __future__ import annotations


class MeasurementError(Exception):
    """A measurement failed; ``reason`` is for people, ``detail`` the numbers behind it."""

    def __init__(self, reason: str, detail: dict[str, float] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or {}


class MeasurementTimeout(MeasurementError):
    """The measurement exceeded its time budget."""
