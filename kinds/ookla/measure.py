"""The `ookla` measurement: Ookla's server network through speedtest-cli, the comparison method.

Our own engine (`throughput`) is the primary method. This one exists so a province can set
probe figures beside the Ookla numbers people quote; read it with care: speedtest-cli is
unmaintained, reads far below the line on a Pi (its Python threads are the bottleneck), has no
IPv6, and its "ping" is half the mean HTTP request time (see :mod:`._speedtest_seam`). The
official Ookla CLI would measure better but its licence (personal, non-commercial use) rules
it out for this fleet. speedtest-cli itself runs only behind :mod:`._speedtest_seam`.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

import msgspec
from probefleet.core import wire
from probefleet.kinds.base import Interval, Link, Measurement, Schedule
from probefleet.kinds.throughput.payload import ThroughputData

_KEY = "measurements.ookla"


class OoklaConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.ookla]"""

    # The comparison method, and it moves a lot of data: off unless asked for.
    enabled: bool = False
    interval_s: Interval = 86400
    # An Ookla server id (digits, as `speedtest-cli --list` shows); empty: the lowest-latency
    # of the five closest, as speedtest-cli picks it.
    server_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{0,10}\Z")] = ""
    download: bool = True
    upload: bool = True
    # The whole run (config, server list, latency, download, upload) is killed after this.
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0, le=600.0)] = 90.0
    # speedtest-cli's per-socket timeout (its --timeout): connect and each read.
    socket_timeout_s: Annotated[float, msgspec.Meta(gt=0.0, le=120.0)] = 10.0
    # Where to fetch speedtest.net's config XML and server list XML instead (empty: from
    # speedtest.net over HTTPS). A site can mirror the server list so that 200 probes do not
    # get rate-limited (HTTP 429); tests point both at a local server.
    config_url: str = ""
    servers_url: str = ""


class Ookla(Measurement[OoklaConfig]):
    name: ClassVar[wire.Kind] = "ookla"
    heavy = True
    summary = "Ookla's network through speedtest-cli: the comparison method"
    config_type = OoklaConfig

    def __init__(self, config: OoklaConfig) -> None:
        super().__init__(config)
        if not (config.download or config.upload):
            raise ValueError(f"{_KEY}.download, upload: at least one must be true")
        for key in ("config_url", "servers_url"):
            url = getattr(config, key)
            if url and not re.match(r"^https?://[^/\s]+", url):
                raise ValueError(f"{_KEY}.{key} = {url!r}: must be an http:// or https:// URL")
        if config.socket_timeout_s >= config.timeout_s:
            raise ValueError(
                f"{_KEY}.socket_timeout_s = {config.socket_timeout_s:g}: must be below "
                f"timeout_s ({config.timeout_s:g})"
            )

    def run(self, link: Link) -> ThroughputData:
        """One speedtest-cli run over ``link``; MeasurementError when it yields no figures."""
        from probefleet.kinds.ookla.seam import run_speedtest

        cfg = self.config
        got = run_speedtest(
            link=link,
            server_id=cfg.server_id or None,
            secure=True,  # speedtest.net answers plain-HTTP config requests with 403
            timeout_s=cfg.timeout_s,
            socket_timeout_s=cfg.socket_timeout_s,
            download=cfg.download,
            upload=cfg.upload,
            config_url=cfg.config_url or None,
            servers_url=cfg.servers_url or None,
        )
        return ThroughputData(
            method="ookla",
            server_name=got.server_name,
            server_url=got.server_url,
            server_id=got.server_id or None,
            ip_version=4,  # the seam pins speedtest-cli's sockets to IPv4
            download_mbps=_mbps(got.download_bps),
            upload_mbps=_mbps(got.upload_bps),
            download_bytes=got.bytes_received if got.download_bps is not None else None,
            upload_bytes=got.bytes_sent if got.upload_bps is not None else None,
            download_duration_s=_round(got.download_s),
            upload_duration_s=_round(got.upload_s),
            download_streams=got.download_streams,
            upload_streams=got.upload_streams,
            latency_idle_ms=_round(got.ping_ms),
        )


def _mbps(bits_per_s: float | None) -> float | None:
    """speedtest-cli's bit/s -> Mbit/s (10^6, not 2^20), to the kbit/s."""
    return None if bits_per_s is None else round(bits_per_s / 1e6, 3)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
