"""The collector's exceptions, in one tree.

    CollectorError
    ├── Rejected             a message (or one of its points) is refused: dead-lettered with
    │                        .field and .reason, counted, acknowledged; never fatal
    ├── WriteError           InfluxDB did not take a write
    │   ├── WriteRejected    4xx about the data (400 bad line / type conflict, 413, 422):
    │   │                    bisect the batch, dead-letter the culprits, write the rest
    │   └── WriteUnavailable 5xx, 429, connection errors, and 401/403/404 (a set-up problem,
    │                        not the data's): retry with back-off, then spool locally
    ├── StateError           the state directory (spool, dead letters, sequences) is unusable
    └── ReportError          the annual report cannot be made (collector.report.errors)
        └── QueryFailed      InfluxDB did not answer, or refused a report query

Config problems (collector config, inventory, targets) are
:class:`probefleet.core.configkit.ConfigError`.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of the collector's own errors."""


class Rejected(CollectorError):
    """A message that will not be stored; ``field`` is a dotted path or "$", "topic"."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class WriteError(CollectorError):
    """A write to InfluxDB failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message


class WriteRejected(WriteError):
    """InfluxDB refused the data itself: retrying the same lines cannot succeed."""


class WriteUnavailable(WriteError):
    """InfluxDB is down, overloaded or misconfigured: the same lines may succeed later."""


class StateError(CollectorError):
    """The collector's state directory cannot be read or written."""
