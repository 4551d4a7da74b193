"""The toy kind on the wire: how many numbers it added up, their sum, how long it took."""

from __future__ import annotations

from probefleet.core.wire import Count, Envelope, Ms, Strict


class ToyData(Strict, frozen=True, kw_only=True):
    numbers: Count
    total: float
    took_ms: Ms


class ToyResult(Envelope, tag="toy", frozen=True, kw_only=True):
    data: ToyData | None = None
