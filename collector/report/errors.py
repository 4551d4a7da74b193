"""The report's errors::

ReportError            the report cannot be made (exit 1, one line on stderr)
└── QueryFailed        InfluxDB did not answer, or refused a query (names which)
"""

from __future__ import annotations


class ReportError(RuntimeError):
    """The report cannot be made; the message says what and where."""


class QueryFailed(ReportError):
    """InfluxDB was unreachable or refused a query."""
