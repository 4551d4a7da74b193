"""The agent's exceptions, in one tree.

    AgentError
    ├── MeasurementError        a measurement ran but produced no result: becomes a
    │   │                       "failed" result with .reason and .detail (a failure is a result)
    │   └── MeasurementTimeout  it ran out of its time budget
    └── StateError              the state directory (seq counter, spool) is unusable

Config problems are :class:`agent.configkit.ConfigError`; wire breaches
:class:`agent.wire.WireError`.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's own errors."""


class MeasurementError(AgentError):
    """A measurement failed; ``reason`` is for people, ``detail`` the numbers behind it."""

    def __init__(self, reason: str, detail: dict[str, float] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or {}


class MeasurementTimeout(MeasurementError):
    """The measurement exceeded its time budget."""


class StateError(AgentError):
    """The state directory cannot be read or written."""
