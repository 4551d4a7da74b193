"""LibreSpeed servers: their list (JSON), their URLs, and choosing one by HTTP ping.

A LibreSpeed backend answers ``garbage.php?ckSize=N`` with N × 1 MiB of random bytes (N at
most 1024), reads and discards ``POST empty.php`` and answers ``GET empty.php`` (ping), and
``getIP.php`` tells the client its address. Every request carries ``r=<random>`` against
caches. A server list is a JSON array of ``{id, name, server, dlURL, ulURL, pingURL,
getIpURL}``; each path is relative to ``server`` (a protocol-relative ``//host/`` means http;
an ``https://`` server is measured over TLS).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from probefleet.kinds.base import Link
from probefleet.kinds.common import destinations, net
from probefleet.kinds.common.endpoint import reach
from probefleet.kinds.common.http import HttpError, Target, cache_buster, parse_url, request_head
from probefleet.kinds.common.tls import TlsClient, TlsRefused
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.throughput.engine import MiB, RequestMaker
from probefleet.kinds.throughput.ping import HttpPinger, ping_series

# The browser client's sizes: 100 MiB per download request (garbagePhp_chunkSize) and 20 MiB
# per upload POST (xhr_ul_blob_megabytes); LibreSpeed servers are configured to accept POSTs
# of that size, not necessarily bigger ones.
DOWNLOAD_REQUEST_BYTES = 100 * MiB
UPLOAD_REQUEST_BYTES = 20 * MiB
MAX_CHUNKS = 1024  # garbage.php's own limit on ckSize
SELECTION_PINGS = 3
_MAX_LIST_BYTES = 1_000_000
TlsFor = Callable[[Target], TlsClient | None]  # the TLS client for an https:// target


@dataclass(frozen=True)
class Server:
    id: str
    name: str
    base_url: str  # "server", as http://
    dl_url: str
    ul_url: str
    ping_url: str
    get_ip_url: str


def _join(base: str, path: str) -> str:
    if path.startswith(("http://", "https://", "//")):
        return "http:" + path if path.startswith("//") else path
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")


def parse_server_list(data: Any) -> list[Server]:
    """LibreSpeed's JSON list -> servers; ValueError naming the entry and field at fault."""
    if not isinstance(data, list) or not data:
        raise ValueError("a server list is a non-empty JSON array of servers")
    servers = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ValueError(f"[{i}]: not an object")
        missing = [k for k in ("name", "server", "dlURL", "ulURL", "pingURL") if k not in entry]
        if missing:
            raise ValueError(f"[{i}]: missing {', '.join(missing)}")
        server = str(entry["server"])
        base = "http:" + server if server.startswith("//") else server
        servers.append(
            Server(
                id=str(entry.get("id", i)),
                name=str(entry["name"])[:200],
                base_url=base,
                dl_url=_join(base, str(entry["dlURL"])),
                ul_url=_join(base, str(entry["ulURL"])),
                ping_url=_join(base, str(entry["pingURL"])),
                get_ip_url=_join(base, str(entry.get("getIpURL", "getIP.php"))),
            )
        )
    return servers


def load_server_list(location: str, link: Link, timeout_s: float) -> list[Server]:
    """The list from a file path or an http(s) URL (fetched over ``link``). Under a
    destination guard, the list's host must pass it; the servers of a list whose host the
    probe's file names (or of a file) are trusted like it for the rest of the run."""
    guard = destinations.current()
    try:
        if location.startswith(("http://", "https://")):
            import httpx

            target = urlsplit(location)
            net.screen(
                target.hostname or "", target.port or (443 if target.scheme == "https" else 80)
            )
            # trust_env=False: a proxy would take the request off the link being measured.
            with httpx.Client(
                transport=net.httpx_transport(link), timeout=timeout_s, trust_env=False
            ) as client:
                response = client.get(location, headers={"Cache-Control": "no-cache"})
                response.raise_for_status()
                raw = response.content[:_MAX_LIST_BYTES]
        else:
            raw = Path(location).read_bytes()[:_MAX_LIST_BYTES]
        servers = parse_server_list(json.loads(raw))
    except destinations.Refused as exc:
        raise destinations.Refused(f"server list {location}: {exc.reason}") from None
    except MeasurementError:
        raise
    except (OSError, ValueError) as exc:
        raise MeasurementError(f"server list {location}: {exc}") from None
    except Exception as exc:  # httpx's errors: one tree, imported lazily
        raise MeasurementError(f"server list {location}: {type(exc).__name__}: {exc}") from None
    host = destinations.host_of("url_or_path", location)
    if guard is not None and (host is None or guard.trusts(host)):
        hosts = (destinations.host_of("url", u) for s in servers for u in _urls(s))
        guard.trust(h for h in hosts if h)
    return servers


def _urls(server: Server) -> tuple[str, ...]:
    return (server.base_url, server.dl_url, server.ul_url, server.ping_url, server.get_ip_url)


def _probe(
    server: Server,
    link: Link,
    ip_version: net.IpPreference,
    timeout_s: float,
    tls_for: TlsFor,
) -> float | str:
    """The lowest of a few HTTP pings to ``server`` in ms, or why it did not answer."""
    deadline = time.monotonic() + timeout_s
    try:
        target = parse_url(server.ping_url)
        endpoint, sock = reach(target, link, ip_version, timeout_s)
        pinger = HttpPinger(
            endpoint, link, timeout_s=timeout_s, bust_cache=True, sock=sock, tls=tls_for(target)
        )
        try:
            return min(ping_series(pinger, SELECTION_PINGS, deadline))
        finally:
            pinger.close()
    except (OSError, HttpError, ValueError) as exc:
        return describe(exc)
    except (MeasurementError, TlsRefused) as exc:
        return exc.reason


def describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _no_tls(target: Target) -> TlsClient | None:
    return None


def by_ping(
    servers: list[Server],
    link: Link,
    ip_version: net.IpPreference,
    timeout_s: float,
    *,
    tls_for: TlsFor = _no_tls,
) -> tuple[list[tuple[Server, float]], list[tuple[Server, str]]]:
    """Ping every server at once (daemon threads, so a stuck resolver cannot hold us past
    ``timeout_s`` + 1 s); return the answering ones fastest first, and the others with why."""
    results: list[float | str] = ["no answer in time"] * len(servers)

    def work(i: int) -> None:
        results[i] = _probe(servers[i], link, ip_version, timeout_s, tls_for)

    threads = [
        threading.Thread(target=destinations.carried(work), args=(i,), daemon=True)
        for i in range(len(servers))
    ]
    deadline = time.monotonic() + timeout_s + 1.0
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [(s, r) for s, r in zip(servers, results, strict=True) if isinstance(r, float)]
    dead = [(s, r) for s, r in zip(servers, results, strict=True) if isinstance(r, str)]
    alive.sort(key=lambda pair: pair[1])
    return alive, dead


def download_request(target: Target) -> RequestMaker:
    """``GET garbage.php?ckSize=N&r=...``: N MiB, as close to the wanted size as it allows."""

    def make(want: int) -> tuple[bytes, int]:
        chunks = max(1, min(MAX_CHUNKS, want // MiB))
        query = f"ckSize={chunks}&{cache_buster()}"
        return request_head("GET", target.with_query(query)), chunks * MiB

    return make


def upload_request(target: Target) -> RequestMaker:
    def make(want: int) -> tuple[bytes, int]:
        size = min(want, UPLOAD_REQUEST_BYTES)
        head = request_head("POST", target.with_query(cache_buster()), content_length=size)
        return head, size

    return make
