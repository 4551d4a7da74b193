"""Intake stage 3, points: a placed result -> its InfluxDB points and lines, admitted by the
cardinality guard (a result whose points would flood InfluxDB with series is refused)."""

from __future__ import annotations

from probefleet.collector import clock
from probefleet.collector._batch import Item
from probefleet.collector.cardinality import CardinalityGuard
from probefleet.collector.errors import Rejected
from probefleet.collector.inventory import Enrichment
from probefleet.collector.lineproto import Point
from probefleet.collector.points import Parsed, points_from
from probefleet.collector.stats import Stats

# Any time will do to check what a quarantined result's points would be.
_CHECK_TIME = clock.Timestamp(0, "rebased")


class Renderer:
    def __init__(self, enrichment: Enrichment, guard: CardinalityGuard, stats: Stats) -> None:
        self.enrichment = enrichment
        self.guard = guard
        self.stats = stats

    def render(
        self, item: Item, parsed: Parsed, when: clock.Timestamp, *, admit: bool = True
    ) -> None:
        """Fill ``item`` with the points of ``parsed`` at ``when``; Rejected if refused.
        ``admit`` False: a result released from the quarantine, admitted when it entered."""
        points = points_from(parsed.result, parsed.probe, self.enrichment, when)
        if admit:
            self._admit(parsed.probe, points)
        item.parsed = parsed
        item.points = points
        item.lines = [p.line() for p in points]
        item.when_ns = when.time_ns

    def check(self, parsed: Parsed) -> None:
        """For a result about to be quarantined: one that can never be written is
        dead-lettered now, not when its time is known."""
        self._admit(parsed.probe, points_from(parsed.result, parsed.probe, self.enrichment,
                                              _CHECK_TIME))  # fmt: skip

    def _admit(self, probe: str, points: list[Point]) -> None:
        try:
            self.guard.admit(probe, points)
        except Rejected:
            self.stats.add("cardinality_refused")
            raise
