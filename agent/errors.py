"""The agent's exceptions, in one tree.

    AgentError
    └── StateError              the state directory (seq counter, spool) is unusable

A measurement that ran but produced no result raises
:class:`probefleet.kinds.errors.MeasurementError` (it becomes a "failed" result); config
problems are :class:`probefleet.core.configkit.ConfigError`; wire breaches
:class:`probefleet.core.wire.WireError`.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's own errors."""


class StateError(AgentError):
    """The state directory cannot be read or written."""
