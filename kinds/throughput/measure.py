"""The `throughput` measurement: download/upload goodput over parallel TCP streams, the primary
method, against LibreSpeed servers or any HTTP(S) server (a large file plus an upload sink).

Reported: goodput in Mbit/s after a warm-up that ends in steady state (no overhead factor:
LibreSpeed's browser client multiplies by 1.06, we do not), the bytes, measured seconds,
warm-up and streams per direction, the TLS version and cipher over https://,
idle latency = the *median* of 10 HTTP pings (LibreSpeed reports their minimum), jitter = mean
|Δ| of those consecutive pings (the latency measurement's definition), and latency under load
= the median of HTTP pings sent every 250 ms on a separate connection while each direction
runs, after its warm-up (bufferbloat). A server that is dead, refuses, or whose certificate
cannot be trusted is recorded in ``failed_servers`` and the next one is tried. The data path
is :mod:`.engine`; TLS (verification, cipher order, one session per server) is
:mod:`probefleet.kinds.common.tls`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import msgspec
from probefleet.core import wire
from probefleet.core.configkit import Section
from probefleet.kinds.base import Interval, Link, Measurement, Schedule
from probefleet.kinds.common import destinations, net
from probefleet.kinds.common.endpoint import Endpoint, effective_ip_version, reach
from probefleet.kinds.common.http import HttpError, Target, parse_url, request_head
from probefleet.kinds.common.tls import TlsClient, TlsPolicy, TlsRefused, parse_pin
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.throughput.engine import MiB, Plan, RequestMaker, ServerFailed, run_direction
from probefleet.kinds.throughput.librespeed import (
    DOWNLOAD_REQUEST_BYTES,
    UPLOAD_REQUEST_BYTES,
    Server,
    by_ping,
    describe,
    download_request,
    load_server_list,
    upload_request,
)
from probefleet.kinds.throughput.payload import ThroughputData
from probefleet.kinds.throughput.ping import (
    HttpPinger,
    LoadedPings,
    jitter_ms,
    median_ms,
    ping_series,
)
from probefleet.kinds.throughput.samples import Adaptive, Direction, DirectionResult

log = logging.getLogger(__name__)
_KEY = "measurements.throughput"
IDLE_PINGS = 10
LOADED_PING_INTERVAL_S = 0.25
# http mode: a download GETs the whole file (a new request when it ends); an upload POSTs
# 1 GiB at a time, big enough to outlast the test on most lines, small enough for a sink's
# body-size limit to be a deliberate choice rather than an accident.
HTTP_UPLOAD_REQUEST_BYTES = 1 << 30
HTTP_DOWNLOAD_REQUEST_BYTES = 1 << 40
Seconds = Annotated[float, msgspec.Meta(gt=0.0, le=120.0)]
Grace = Annotated[float, msgspec.Meta(ge=0.0, le=30.0)]
Streams = Annotated[int, msgspec.Meta(ge=1, le=64)]
# Destinations (kinds.common.destinations): a remote config may name only those its probe's
# [remote] section allows.
Url = Annotated[str, msgspec.Meta(extra=destinations.marker("url"))]
ListLocation = Annotated[str, msgspec.Meta(extra=destinations.marker("url_or_path"))]


class TlsServer(Section, frozen=True, kw_only=True):
    """[[measurements.throughput.tls]]: how one https:// server's certificate is checked
    (instead of the system's trust store); never a way to skip the check."""

    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]  # as in its URLs; "*": all
    ca_file: str = ""  # PEM: the CA (or the self-signed certificate) that signed it
    pin_sha256: str = ""  # or: the SHA-256 fingerprint of its certificate


class ThroughputConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.throughput]"""

    interval_s: Interval = 3600
    mode: Literal["librespeed", "http"] = "librespeed"
    # LibreSpeed mode: the server list (JSON), a file path or an http(s) URL.
    server_list: ListLocation = "https://librespeed.org/backend-servers/servers.php"
    server_id: Annotated[str, msgspec.Meta(max_length=64)] = ""  # "": lowest ping
    # http mode: a large file to GET, a sink that reads and discards POSTs, an empty document.
    download_url: Url = ""
    upload_url: Url = ""
    ping_url: Url = ""
    directions: list[Literal["download", "upload"]] = msgspec.field(
        default_factory=lambda: ["download", "upload"]
    )
    streams_download: Streams = 6
    streams_upload: Streams = 3
    duration_s: Seconds = 10.0  # measured, after the warm-up
    grace_download_s: Grace = 1.5  # the warm-up's minimum
    grace_upload_s: Grace = 3.0
    warmup_max_s: Grace = 8.0  # ... and its maximum, if the streams never get steady
    warmup_tolerance_pct: Annotated[float, msgspec.Meta(gt=0.0, le=50.0)] = 5.0
    adaptive: bool = False
    adaptive_min_s: Seconds = 4.0
    adaptive_window_s: Seconds = 2.0
    adaptive_tolerance_pct: Annotated[float, msgspec.Meta(gt=0.0, le=50.0)] = 3.0
    max_bytes: Annotated[int, msgspec.Meta(ge=0)] = 0  # per direction; 0 = no cap
    ip_version: net.IpPreference = 0  # 0: whatever the name resolves to first
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0.0, le=60.0)] = 5.0
    tls: Annotated[list[TlsServer], msgspec.Meta(max_length=64)] = []


@dataclass(frozen=True)
class _Candidate:
    """One server to try: where its three URLs are and how it is named on the wire."""

    name: str
    url: str
    id: str | None
    download: Target | None
    upload: Target | None
    ping: Target | None
    download_request: RequestMaker | None
    upload_request: RequestMaker | None
    bust_cache: bool


class Throughput(Measurement[ThroughputConfig]):
    name: ClassVar[wire.Kind] = "throughput"
    heavy = True
    summary = "download/upload goodput over parallel TCP streams (LibreSpeed or plain HTTP servers)"
    config_type = ThroughputConfig

    def __init__(self, config: ThroughputConfig) -> None:
        super().__init__(config)
        cfg = config
        if not cfg.directions or len(set(cfg.directions)) != len(cfg.directions):
            raise ValueError(
                f"{_KEY}.directions = {cfg.directions!r}: give download and/or upload, once each"
            )
        for key in ("download_url", "upload_url", "ping_url"):
            url = getattr(cfg, key)
            if url:
                try:
                    parse_url(url)
                except ValueError as exc:
                    raise ValueError(f"{_KEY}.{key} = {exc}") from None
        if cfg.mode == "http":
            for direction in cfg.directions:
                if not getattr(cfg, f"{direction}_url"):
                    raise ValueError(
                        f"{_KEY}.{direction}_url: required with mode = 'http' when directions "
                        f"include {direction!r}"
                    )
        elif not cfg.server_list:
            raise ValueError(f"{_KEY}.server_list: required with mode = 'librespeed'")
        if cfg.adaptive and cfg.adaptive_min_s > cfg.duration_s:
            raise ValueError(
                f"{_KEY}.adaptive_min_s = {cfg.adaptive_min_s:g}: must not exceed duration_s "
                f"({cfg.duration_s:g})"
            )
        if cfg.max_bytes and cfg.max_bytes < MiB:
            raise ValueError(f"{_KEY}.max_bytes = {cfg.max_bytes}: 0 (no cap) or at least 1 MiB")
        self._policies = _policies(cfg.tls)

    # --- run -------------------------------------------------------------------------------

    def run(self, link: Link) -> ThroughputData:
        cfg = self.config
        _check_binding(link, effective_ip_version(link, cfg.ip_version))
        failed: list[tuple[str, str]] = []  # (url, reason)
        clients = _TlsClients(self._policies)
        if cfg.mode == "http":
            candidates = [self._http_candidate()]
        else:
            candidates = self._librespeed_candidates(link, failed, clients)
        deadline = time.monotonic() + 3 * self._server_budget_s()
        for i, candidate in enumerate(candidates):
            if time.monotonic() > deadline:
                left = len(candidates) - i
                failed.append((candidate.url, f"{left} server(s) not tried: time budget spent"))
                break
            try:
                data = self._measure(candidate, link, clients)
            except ServerFailed as exc:
                log.warning("throughput: %s (%s) failed: %s", candidate.name, candidate.url, exc)
                failed.append((candidate.url, str(exc)))
                continue
            return msgspec.structs.replace(
                data, failed_servers=[url[:500] for url, _ in failed][:16]
            )
        reasons = "; ".join(f"{url}: {why}" for url, why in failed)
        raise MeasurementError(
            f"no server carried the test: {reasons}"[:500], {"failed_servers": float(len(failed))}
        )

    def _server_budget_s(self) -> float:
        cfg = self.config
        # The warm-up lasts until steady, at most warmup_max_s (see samples).
        warmup = max(cfg.grace_download_s, cfg.grace_upload_s, cfg.warmup_max_s)
        per_direction = cfg.duration_s + warmup
        return 4 * cfg.connect_timeout_s + len(cfg.directions) * (
            per_direction + cfg.connect_timeout_s
        )

    def _http_candidate(self) -> _Candidate:
        cfg = self.config
        dl = parse_url(cfg.download_url) if cfg.download_url else None
        ul = parse_url(cfg.upload_url) if cfg.upload_url else None
        main = dl or ul
        assert main is not None  # the constructor saw to it
        return _Candidate(
            name=main.host[:200],
            url=main.url,
            id=None,
            download=dl,
            upload=ul,
            ping=parse_url(cfg.ping_url) if cfg.ping_url else None,
            download_request=_plain_download(dl, capped=cfg.max_bytes > 0) if dl else None,
            upload_request=_plain_upload(ul) if ul else None,
            bust_cache=False,
        )

    def _librespeed_candidates(
        self, link: Link, failed: list[tuple[str, str]], clients: _TlsClients
    ) -> list[_Candidate]:
        cfg = self.config
        servers = load_server_list(cfg.server_list, link, cfg.connect_timeout_s)
        if cfg.server_id:
            chosen = [s for s in servers if s.id == cfg.server_id]
            if not chosen:
                ids = ", ".join(s.id for s in servers[:20])
                raise MeasurementError(
                    f"{_KEY}.server_id = {cfg.server_id!r} is not in {cfg.server_list} (ids: {ids})"
                )
            ordered = chosen + [s for s in servers if s.id != cfg.server_id]
        else:
            alive, dead = by_ping(
                servers, link, cfg.ip_version, cfg.connect_timeout_s, tls_for=clients.get
            )
            failed.extend((s.base_url, f"ping: {why}") for s, why in dead)
            ordered = [s for s, _ in alive]
            if alive:
                log.debug("throughput: %s answers fastest (%.1f ms)", alive[0][0].name, alive[0][1])
        candidates = []
        for server in ordered:
            try:
                candidates.append(_librespeed_candidate(server))
            except ValueError as exc:
                failed.append((server.base_url, str(exc)))
        return candidates

    def _measure(self, candidate: _Candidate, link: Link, clients: _TlsClients) -> ThroughputData:
        """The whole test against one server; ServerFailed if it would not carry it."""
        cfg = self.config
        timeout = cfg.connect_timeout_s
        pinger: HttpPinger | None = None
        endpoints: dict[tuple[str, int], Endpoint] = {}

        def endpoint_for(target: Target) -> Endpoint:
            known = endpoints.get((target.host, target.port))
            if known is not None:
                return Endpoint(target, known.family, known.sockaddr)
            try:
                found, sock = reach(target, link, cfg.ip_version, timeout)
            except MeasurementError as exc:
                raise ServerFailed(exc.reason) from None
            client = clients.get(target)
            if client is not None:  # trusted? (a clear reason now, not N failed streams)
                try:
                    sock = client.handshake(sock, timeout)
                except TlsRefused as exc:
                    raise ServerFailed(exc.reason) from None
            sock.close()
            endpoints[(target.host, target.port)] = found
            return found

        idle: list[float] = []
        try:
            if candidate.ping is not None:
                try:
                    found, sock = reach(candidate.ping, link, cfg.ip_version, timeout)
                except MeasurementError as exc:
                    raise ServerFailed(exc.reason) from None
                endpoints[(found.target.host, found.target.port)] = found
                pinger = HttpPinger(
                    found,
                    link,
                    timeout_s=timeout,
                    bust_cache=candidate.bust_cache,
                    sock=sock,
                    tls=clients.get(candidate.ping),
                )
                try:
                    idle = ping_series(pinger, IDLE_PINGS, time.monotonic() + 2 * timeout)
                except TlsRefused as exc:
                    raise ServerFailed(exc.reason) from None
                except (OSError, HttpError) as exc:
                    raise ServerFailed(f"ping: {describe(exc)}") from None
            results: dict[Direction, tuple[DirectionResult, float | None]] = {}
            ip_version: Literal[4, 6] | None = None
            tls: TlsClient | None = None
            for direction in cfg.directions:
                target = candidate.download if direction == "download" else candidate.upload
                maker = (
                    candidate.download_request
                    if direction == "download"
                    else candidate.upload_request
                )
                assert target is not None
                assert maker is not None
                endpoint = endpoint_for(target)
                ip_version = ip_version or endpoint.ip_version
                client = clients.get(target)
                tls = tls or client
                results[direction] = self._direction(
                    direction, endpoint, link, maker, pinger, client
                )
        except TlsRefused as exc:  # a CA file unusable
            raise ServerFailed(exc.reason) from None
        finally:
            if pinger is not None:
                pinger.close()
        down = results.get("download")
        up = results.get("upload")
        spread = jitter_ms(idle)
        idle_ms = median_ms(idle)
        return ThroughputData(
            method=cfg.mode,
            server_name=candidate.name,
            server_url=candidate.url[:500],
            server_id=candidate.id,
            ip_version=ip_version,
            download_mbps=_r(down[0].mbps) if down else None,
            upload_mbps=_r(up[0].mbps) if up else None,
            download_bytes=down[0].bytes if down else None,
            upload_bytes=up[0].bytes if up else None,
            download_duration_s=_r(down[0].duration_s) if down else None,
            upload_duration_s=_r(up[0].duration_s) if up else None,
            download_streams=down[0].streams if down else None,
            upload_streams=up[0].streams if up else None,
            latency_idle_ms=_r(idle_ms),
            latency_download_ms=_r(down[1]) if down else None,
            latency_upload_ms=_r(up[1]) if up else None,
            jitter_ms=_r(spread),
            download_warmup_s=_r(down[0].grace_s) if down else None,
            upload_warmup_s=_r(up[0].grace_s) if up else None,
            tls_version=tls.version if tls else None,
            tls_cipher=tls.cipher if tls else None,
        )

    def _direction(  # noqa: PLR0917  (private; every argument is needed)
        self,
        direction: Direction,
        endpoint: Endpoint,
        link: Link,
        maker: RequestMaker,
        pinger: HttpPinger | None,
        tls: TlsClient | None,
    ) -> tuple[DirectionResult, float | None]:
        cfg = self.config
        download = direction == "download"
        plan = Plan(
            direction=direction,
            streams=cfg.streams_download if download else cfg.streams_upload,
            duration_s=cfg.duration_s,
            grace_s=cfg.grace_download_s if download else cfg.grace_upload_s,
            request_bytes=_request_bytes(cfg.mode, download),
            max_bytes=cfg.max_bytes,
            connect_timeout_s=cfg.connect_timeout_s,
            warmup_max_s=cfg.warmup_max_s,
            warmup_tolerance_pct=cfg.warmup_tolerance_pct,
            adaptive=(
                Adaptive(cfg.adaptive_min_s, cfg.adaptive_window_s, cfg.adaptive_tolerance_pct)
                if cfg.adaptive
                else None
            ),
        )
        loaded: float | None = None
        if pinger is None:
            result = run_direction(endpoint, link, plan, maker, tls)
        else:
            with LoadedPings(pinger, LOADED_PING_INTERVAL_S) as pings:
                result = run_direction(endpoint, link, plan, maker, tls)
            loaded = median_ms(pings.since(result.window_start))
        log.debug(
            "throughput: %s %.2f Mbit/s (%d bytes in %.2f s after %.2f s of warm-up, %d streams, "
            "%d connections, %d errors, stopped by %s)",
            direction,
            result.mbps,
            result.bytes,
            result.duration_s,
            result.grace_s,
            result.streams,
            result.connections,
            result.errors,
            result.stopped_by,
        )
        if tls is not None:
            log.debug(
                "throughput: %s over %s %s, %d of %d handshakes resumed a session",
                direction,
                tls.version,
                tls.cipher,
                tls.resumed,
                tls.handshakes,
            )
        return result, loaded


def _policies(servers: list[TlsServer]) -> dict[str, TlsPolicy]:
    """[[tls]] entries by lower-case host; ValueError naming the entry and key at fault."""
    policies: dict[str, TlsPolicy] = {}
    for i, entry in enumerate(servers):
        key = f"{_KEY}.tls[{i}]"
        host = entry.host.strip("[]").lower()
        if host in policies:
            raise ValueError(f"{key}.host = {entry.host!r}: given twice")
        if entry.ca_file and entry.pin_sha256:
            raise ValueError(f"{key}: give ca_file or pin_sha256, not both")
        if not (entry.ca_file or entry.pin_sha256):
            raise ValueError(f"{key}: give ca_file or pin_sha256 (without both, the system's CAs)")
        pin = b""
        if entry.pin_sha256:
            try:
                pin = parse_pin(entry.pin_sha256)
            except ValueError as exc:
                raise ValueError(f"{key}.pin_sha256 = {exc}") from None
        if entry.ca_file and not Path(entry.ca_file).is_file():
            raise ValueError(f"{key}.ca_file = {entry.ca_file!r}: no such file")
        policies[host] = TlsPolicy(ca_file=entry.ca_file, pin_sha256=pin)
    return policies


class _TlsClients:
    """One TlsClient per https:// server (host, port) for a run, so its streams and pings
    share one session; thread-safe (servers are pinged in parallel)."""

    def __init__(self, policies: dict[str, TlsPolicy]) -> None:
        self._policies = policies
        self._clients: dict[tuple[str, int], TlsClient] = {}
        self._lock = threading.Lock()

    def get(self, target: Target | None) -> TlsClient | None:
        """None for http://; TlsRefused if the server's CA file cannot be used."""
        if target is None or not target.tls:
            return None
        key = (target.host.lower(), target.port)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                policy = self._policies.get(key[0]) or self._policies.get("*") or TlsPolicy()
                if key[0] in self._policies or "*" in self._policies:
                    hint = f"not the CA or pin its [[{_KEY}.tls]] entry gives"
                else:
                    hint = (
                        f'to trust it, add [[{_KEY}.tls]] with host = "{key[0]}" and its CA '
                        "as ca_file, or pin_sha256"
                    )
                client = TlsClient.for_server(target.host, target.url, policy, hint=hint)
                self._clients[key] = client
            return client


def _librespeed_candidate(server: Server) -> _Candidate:
    dl, ul = parse_url(server.dl_url), parse_url(server.ul_url)
    return _Candidate(
        name=server.name,
        url=server.base_url,
        id=server.id,
        download=dl,
        upload=ul,
        ping=parse_url(server.ping_url),
        download_request=download_request(dl),
        upload_request=upload_request(ul),
        bust_cache=True,
    )


def _plain_download(target: Target, *, capped: bool) -> RequestMaker:
    """GET the file; under a byte cap, ask for only the share wanted (Range), so the cap
    bounds what crosses the line and not only what is counted."""

    def make(want: int) -> tuple[bytes, int]:
        if not capped:
            return request_head("GET", target), want
        return request_head("GET", target, byte_range=(0, want - 1)), want

    return make


def _plain_upload(target: Target) -> RequestMaker:
    def make(want: int) -> tuple[bytes, int]:
        return request_head("POST", target, content_length=want), want

    return make


def _request_bytes(mode: str, download: bool) -> int:
    if mode == "librespeed":
        return DOWNLOAD_REQUEST_BYTES if download else UPLOAD_REQUEST_BYTES
    return HTTP_DOWNLOAD_REQUEST_BYTES if download else HTTP_UPLOAD_REQUEST_BYTES


def _check_binding(link: Link, ip_version: net.IpPreference) -> None:
    """A link that cannot be bound is a probe problem: say so now, not as N dead servers."""
    if not (link.interface or link.source_address):
        return
    family = socket.AF_INET6 if ip_version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        net.bind(sock, link)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
