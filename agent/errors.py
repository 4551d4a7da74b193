"""The agent's exceptions, in one tree.

    AgentError
    ├── StateError              the state directory (seq counter, spool) is unusable: a full
    │   │                       disk, a failing SD card; the same call may work later
    │   └── ResultTooLarge      a result larger than the whole spool budget ([spool] max_mb):
    │                           it can never be spooled, retrying cannot help
    └── PublishError            the MQTT client would not take a message (its queue full, a
                                bad argument): not sent, published again after retry_s

A measurement that ran but produced no result raises
:class:`probefleet.kinds.errors.MeasurementError` (it becomes a "failed" result); config
problems are :class:`probefleet.core.configkit.ConfigError` (a remote config the centre
sent, :class:`probefleet.agent.fleet.RemoteConfigError`); wire breaches
:class:`probefleet.core.wire.WireError`.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's own errors."""


class StateError(AgentError):
    """The state directory cannot be read or written."""


class ResultTooLarge(StateError):
    """A result is larger than the whole spool budget: no amount of dropping makes room."""


class PublishError(AgentError):
    """The MQTT client refused a message; ``reason`` is what `probe-agent status` counts
    it under, ``detail`` what the client said (None: nothing worth a log line)."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail
