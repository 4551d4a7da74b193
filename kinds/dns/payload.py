"""The `dns` kind on the wire: its payload (``data``) and its result envelope."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from probefleet.core.wire import Count, Envelope, Host, Ms, Strict


class DnsQuery(Strict, frozen=True, kw_only=True):
    """One lookup. rcode is the DNS RCODE name, or TIMEOUT / ERROR when none came back."""

    resolver: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]  # "system" or an IP
    name: Host
    rrtype: Literal["A", "AAAA"]
    rcode: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2,16}\Z")]
    answers: Count
    time_ms: Ms | None = None


class DnsData(Strict, frozen=True, kw_only=True):
    queries: Annotated[list[DnsQuery], msgspec.Meta(min_length=1, max_length=128)]


class DnsResult(Envelope, tag="dns", frozen=True, kw_only=True):
    data: DnsData | None = None
