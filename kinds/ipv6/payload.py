"""The `ipv6` kind on the wire: its payload (``data``) and its result envelope."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from probefleet.core.wire import Count, Envelope, Host, Ms, Strict, Text


class Ipv6Check(Strict, frozen=True, kw_only=True):
    check: Literal["global_address", "default_route", "aaaa", "tcp", "http"]
    verdict: Literal["pass", "fail", "skip"]
    target: Host | None = None
    rtt_v6_ms: Ms | None = None
    rtt_v4_ms: Ms | None = None
    detail: Text | None = None


class Ipv6Data(Strict, frozen=True, kw_only=True):
    """RIPE Atlas's distinction: capable (address + route) is not the same as works."""

    capable: bool
    works: bool
    global_addresses: Count
    checks: Annotated[list[Ipv6Check], msgspec.Meta(max_length=64)] = []


class Ipv6Result(Envelope, tag="ipv6", frozen=True, kw_only=True):
    data: Ipv6Data | None = None
