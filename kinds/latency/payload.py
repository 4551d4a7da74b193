"""The `latency` kind on the wire: its payload (``data``) and its result envelope."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from probefleet.core.wire import Count, Envelope, Host, IpVersion, Ms, Pct, Strict


class LatencyTarget(Strict, frozen=True, kw_only=True):
    """Echo statistics for one target. jitter_ms is the mean |difference| of consecutive RTTs."""

    target: Host
    method: Literal["icmp", "tcp"]
    address: Host | None = None
    ip_version: IpVersion | None = None
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    sent: Count
    received: Count
    loss_pct: Pct
    rtt_min_ms: Ms | None = None  # None when nothing came back
    rtt_avg_ms: Ms | None = None
    rtt_median_ms: Ms | None = None
    rtt_p95_ms: Ms | None = None
    rtt_max_ms: Ms | None = None
    jitter_ms: Ms | None = None

    def __post_init__(self) -> None:
        if self.received > self.sent:
            raise ValueError(f"`received` ({self.received}) exceeds `sent` ({self.sent})")


class LatencyData(Strict, frozen=True, kw_only=True):
    targets: Annotated[list[LatencyTarget], msgspec.Meta(min_length=1, max_length=64)]


class LatencyResult(Envelope, tag="latency", frozen=True, kw_only=True):
    data: LatencyData | None = None
