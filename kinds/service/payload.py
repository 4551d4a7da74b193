"""The `service` kind on the wire: its payload (``data``) and its result envelope."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from probefleet.core.wire import Envelope, Ms, Name, Strict, Text, Url


class ServiceCheck(Strict, frozen=True, kw_only=True):
    name: Name
    target: Url
    protocol: Literal["http", "https", "tcp"]
    up: bool
    status_code: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    connect_ms: Ms | None = None
    ttfb_ms: Ms | None = None
    total_ms: Ms | None = None
    tls_days_left: Annotated[float, msgspec.Meta(ge=-36_500.0, le=36_500.0)] | None = None
    error: Text | None = None


class ServiceData(Strict, frozen=True, kw_only=True):
    checks: Annotated[list[ServiceCheck], msgspec.Meta(min_length=1, max_length=64)]


class ServiceResult(Envelope, tag="service", frozen=True, kw_only=True):
    data: ServiceData | None = None
