"""The report's errors, a branch of the collector's tree (probefleet.collector.errors)::

CollectorError
└── ReportError        the report cannot be made (exit 1, one line on stderr)
    └── QueryFailed    InfluxDB did not answer, or refused a query (names which)
"""

from __future__ import annotations

from probefleet.collector.errors import CollectorError


class ReportError(CollectorError):
    """The report cannot be made; the message says what and where."""


class QueryFailed(ReportError):
    """InfluxDB was unreachable or refused a query."""
