"""The `throughput` kind on the wire: its payload (``data``) and its result envelope."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from probefleet.core.wire import ByteCount, Envelope, IpVersion, Mbps, Ms, Seconds, Strict, Url


class ThroughputData(Strict, frozen=True, kw_only=True):
    """Goodput of several parallel TCP streams, without LibreSpeed's 1.06 overhead factor."""

    method: Literal["librespeed", "http", "ookla"]
    server_name: Annotated[str, msgspec.Meta(max_length=200)]
    server_url: Url
    server_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    failed_servers: Annotated[
        list[Url], msgspec.Meta(max_length=16)
    ] = []  # tried first, dead or refusing, in order
    ip_version: IpVersion | None = None
    download_mbps: Mbps | None = None  # None: direction not measured
    upload_mbps: Mbps | None = None
    download_bytes: ByteCount | None = None  # bytes counted after the grace period
    upload_bytes: ByteCount | None = None
    download_duration_s: Seconds | None = None
    upload_duration_s: Seconds | None = None
    download_streams: Annotated[int, msgspec.Meta(ge=1, le=64)] | None = None
    upload_streams: Annotated[int, msgspec.Meta(ge=1, le=64)] | None = None
    latency_idle_ms: Ms | None = None
    latency_download_ms: Ms | None = None  # under load: bufferbloat
    latency_upload_ms: Ms | None = None
    jitter_ms: Ms | None = None
    # The warm-up discarded before the counted window (at least the grace, then until
    # steady, at most warmup_max_s).
    download_warmup_s: Seconds | None = None
    upload_warmup_s: Seconds | None = None
    # https:// servers: what the handshake agreed (None over plain HTTP).
    tls_version: Annotated[str, msgspec.Meta(max_length=16)] | None = None  # "TLSv1.3"
    tls_cipher: Annotated[str, msgspec.Meta(max_length=64)] | None = None  # OpenSSL's name


class ThroughputResult(Envelope, tag="throughput", frozen=True, kw_only=True):
    data: ThroughputData | None = None
