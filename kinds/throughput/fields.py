"""The `throughput` field table: one InfluxDB point per run (see README.md).

The plan's targets (``target_download_mbps``, ``meets_download_target`` ...) are added by the
collector to every row that has ``download_mbps``: they come from its targets file."""

from __future__ import annotations

from probefleet.kinds.base import Row
from probefleet.kinds.common.rows import f, ip
from probefleet.kinds.throughput.payload import ThroughputData


def rows(data: ThroughputData) -> list[Row]:
    tags: dict[str, str | None] = {
        "method": data.method,
        "ip_version": ip(data.ip_version),
        "server": data.server_name,
    }
    return [
        Row(
            tags,
            {
                "download_mbps": f(data.download_mbps),
                "upload_mbps": f(data.upload_mbps),
                "download_bytes": data.download_bytes,
                "upload_bytes": data.upload_bytes,
                "download_duration_s": f(data.download_duration_s),
                "upload_duration_s": f(data.upload_duration_s),
                "download_streams": data.download_streams,
                "upload_streams": data.upload_streams,
                "latency_idle_ms": f(data.latency_idle_ms),
                "latency_download_ms": f(data.latency_download_ms),
                "latency_upload_ms": f(data.latency_upload_ms),
                "jitter_ms": f(data.jitter_ms),
                "download_warmup_s": f(data.download_warmup_s),
                "upload_warmup_s": f(data.upload_warmup_s),
                "tls_version": data.tls_version,
                "tls_cipher": data.tls_cipher,
                "server_url": data.server_url,
                "server_id": data.server_id,
                "failed_servers": len(data.failed_servers),
            },
        )
    ]
