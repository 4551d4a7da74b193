"""The one module that imports ``speedtest`` (sivel's speedtest-cli): runs it in a child process.

speedtest-cli is one unmaintained 2,000-line file with network I/O in its constructor, errors
swallowed or raised from a dozen classes, and busy-wait threads (``join(timeout=0.001)``
loops). So it never runs inside the agent: :func:`run_speedtest` starts a child Python
(``main`` below), hands it the request as JSON on stdin, reads one JSON reply on stdout and
SIGKILLs it when ``timeout_s`` runs out. A thread could not be stopped: speedtest-cli's config
and server-list reads honour no shutdown flag, and a server trickling one byte per socket
timeout would keep an abandoned thread (and its sockets and buffers) alive for good, while
its busy-waits stole the GIL from the agent's MQTT and scheduler threads during every test.
A killed process gives everything back; the cost is ~0.4 s of interpreter start.

Inside the child, speedtest-cli's own code does the work; we only
- pin every socket it opens to the link and to IPv4 (it has no IPv6), through :mod:`net`;
- wrap its URL opener to redirect speedtest.net's config and server-list URLs when asked
  (``config_url``/``servers_url``: a site's mirror, or a test server) and to remember why
  those requests failed (speedtest-cli drops the server-list errors);
- or skip discovery entirely with ``config_override`` (speedtest-cli's own config dict) and
  ``servers_override`` (its server dicts), so tests never reach speedtest.net;
- turn its exception zoo into :class:`MeasurementError` with a reason a technician can act on.
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
from typing import Any

import msgspec
from probefleet.kinds.base import Link
from probefleet.kinds.common import net
from probefleet.kinds.errors import MeasurementError, MeasurementTimeout
from probefleet.kinds.ookla.fetch import FailureLog, Opener, describe, fetch_failure, origin

_STAGE = "@stage "  # progress lines on the child's stderr: where a timeout struck
_STAGES = {
    "start": "while starting",
    "config": "while fetching the config",
    "servers": "while fetching the server list",
    "ping": "while choosing the server (latency)",
    "download": "during the download",
    "upload": "during the upload",
}
# speedtest-cli records a failed latency request as 3600 s; its ping is sum(3 tries) / 6, so
# one failure alone makes it >= 600,000 ms.
_FAILED_PING_MS = 600_000.0


class SpeedtestOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one run measured. Speeds are speedtest-cli's bit/s (bytes * 8 / wall time of the
    whole phase); ``ping_ms`` is its "ping": half the mean of three fresh-connection GETs of
    latency.txt (sum / 6 on purpose, sivel/speedtest-cli#199), None if any of them failed."""

    server_id: str
    server_name: str
    server_url: str
    ping_ms: float | None = None
    download_bps: float | None = None  # None: not measured
    upload_bps: float | None = None
    bytes_received: int = 0
    bytes_sent: int = 0
    download_s: float | None = None
    upload_s: float | None = None
    download_streams: int | None = None
    upload_streams: int | None = None


class _Request(msgspec.Struct, frozen=True, kw_only=True):
    server_id: str | None
    secure: bool
    socket_timeout_s: float
    download: bool
    upload: bool
    interface: str | None
    source_address: str | None
    config_url: str | None
    servers_url: str | None
    config_override: dict[str, Any] | None
    servers_override: list[dict[str, Any]] | None


class _Reply(msgspec.Struct, frozen=True, kw_only=True):
    outcome: SpeedtestOutcome | None = None
    reason: str | None = None
    detail: dict[str, float] = {}


def run_speedtest(
    *,
    link: Link,
    server_id: str | None,
    timeout_s: float,
    secure: bool = True,
    socket_timeout_s: float = 10.0,
    download: bool = True,
    upload: bool = True,
    config_url: str | None = None,
    servers_url: str | None = None,
    config_override: dict[str, Any] | None = None,
    servers_override: list[dict[str, Any]] | None = None,
) -> SpeedtestOutcome:
    """Run speedtest-cli once over ``link`` in a child process killed after ``timeout_s``.

    ``server_id`` None/"" = the best of the five closest by latency. Raises MeasurementError
    (MeasurementTimeout when killed) with the reason.

        outcome = run_speedtest(link=Link(), server_id=None, timeout_s=90)
    """
    request = _Request(
        server_id=server_id or None,
        secure=secure,
        socket_timeout_s=socket_timeout_s,
        download=download,
        upload=upload,
        interface=link.interface,
        source_address=link.source_address,
        config_url=config_url,
        servers_url=servers_url,
        config_override=config_override,
        servers_override=servers_override,
    )
    code = "from probefleet.kinds.ookla.seam import main; main()"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            input=msgspec.json.encode(request),
            capture_output=True,
            timeout=timeout_s,  # then SIGKILL: threads, sockets and buffers all go with it
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        where = _STAGES.get(_last_stage(exc.stderr), "")
        raise MeasurementTimeout(
            f"speedtest-cli timed out after {timeout_s:g} s {where}".rstrip(),
            {"timeout_s": timeout_s},
        ) from None
    try:
        reply = msgspec.json.decode(proc.stdout.strip().splitlines()[-1], type=_Reply)
    except (IndexError, msgspec.DecodeError):
        lines = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        last = lines[-1] if lines else "no output"
        raise MeasurementError(
            f"speedtest-cli crashed (exit status {proc.returncode}): {last}"
        ) from None
    if reply.outcome is None:
        raise MeasurementError(reply.reason or "speedtest-cli failed", dict(reply.detail))
    return reply.outcome


def _last_stage(stderr: bytes | None) -> str:
    stages = [
        line[len(_STAGE) :].strip()
        for line in (stderr or b"").decode(errors="replace").splitlines()
        if line.startswith(_STAGE)
    ]
    return stages[-1] if stages else "start"


# --- the child process ---------------------------------------------------------------------


def main() -> None:
    """Child entry point: one _Request on stdin, one _Reply line on stdout, then exit."""
    reply_to = sys.stdout
    sys.stdout = sys.stderr  # speedtest-cli prints; only the reply goes to the real stdout
    _stage("start")
    try:
        request = msgspec.json.decode(sys.stdin.buffer.read(), type=_Request)
        reply = _Reply(outcome=_measure(request))
    except MeasurementError as exc:
        reply = _Reply(reason=exc.reason, detail=exc.detail)
    except Exception as exc:  # anything unforeseen in speedtest-cli is still a reason, not a hang
        reply = _Reply(reason=f"speedtest-cli failed: {type(exc).__name__}: {exc}"[:500])
    reply_to.write(msgspec.json.encode(reply).decode() + "\n")
    reply_to.flush()
    sys.stderr.flush()
    os._exit(0)  # do not wait for speedtest-cli's leftover non-daemon threads


def _stage(name: str) -> None:
    sys.stderr.write(f"{_STAGE}{name}\n")
    sys.stderr.flush()


def _measure(req: _Request) -> SpeedtestOutcome:
    import speedtest

    _pin_sockets(req)
    failures = FailureLog(req.socket_timeout_s)
    config_from = origin(req.config_url)
    servers_from = origin(req.servers_url)
    _stage("config")
    try:
        tester = _speedtest_class(speedtest)(
            request=req,
            failures=failures,
            timeout=req.socket_timeout_s,
            secure=req.secure,
        )
    except speedtest.ConfigRetrievalError as exc:
        cause = exc.args[0] if exc.args else exc  # the urllib/socket error it wraps
        seen = describe(cause, req.socket_timeout_s) if isinstance(cause, BaseException) else None
        seen = seen or failures.get("config") or (str(cause), None)
        raise fetch_failure("config", config_from, seen) from None
    except speedtest.SpeedtestConfigError as exc:
        raise MeasurementError(
            f"{config_from} sent a config speedtest-cli cannot read: {exc}"
        ) from None
    except (KeyError, TypeError, ValueError) as exc:  # a non-200 answer leaves config empty
        seen = failures.get("config")
        if seen:
            raise fetch_failure("config", config_from, seen) from None
        raise MeasurementError(f"{config_from} sent an incomplete config ({exc!r})") from None

    _stage("servers")
    chosen: list[dict[str, Any]] | None = None
    if req.servers_override is not None:
        chosen = [copy.deepcopy(s) for s in req.servers_override]
        if req.server_id:
            chosen = [s for s in chosen if str(s.get("id")) == req.server_id]
        if not chosen:
            raise _no_server(req.server_id, "the given server list")
    else:
        wanted = [int(req.server_id)] if req.server_id else None
        try:
            tester.get_servers(servers=wanted)
        except speedtest.NoMatchedServers:
            tester.servers = {}
        except speedtest.SpeedtestServersError as exc:
            raise MeasurementError(
                f"{servers_from} sent a server list speedtest-cli cannot read: {exc}"
            ) from None
        if not tester.servers:
            seen = failures.get("servers")
            if seen:  # every URL failed: say why, not "no server"
                raise fetch_failure("servers", servers_from, seen)
            raise _no_server(req.server_id, f"the server list from {servers_from}")

    _stage("ping")
    try:
        best = tester.get_best_server(chosen)
    except speedtest.SpeedtestBestServerFailure:
        raise MeasurementError("no Ookla server to test against") from None
    latency = float(best.get("latency", _FAILED_PING_MS))
    name = " ".join(str(best.get(k) or "") for k in ("sponsor", "name")).strip()
    outcome: dict[str, Any] = {
        "server_id": str(best.get("id", "")),
        "server_name": (name or str(best.get("host") or "?"))[:200],
        "server_url": str(best["url"]),
        "ping_ms": latency if latency < _FAILED_PING_MS else None,
    }
    where = f"the Ookla server {outcome['server_name']} ({outcome['server_url']})"

    if req.download:
        _stage("download")
        outcome["download_bps"] = bps = float(tester.download())
        outcome["bytes_received"] = count = int(tester.results.bytes_received)
        # speedtest-cli's own clock (bytes * 8 / bit/s): the span its speed is computed over.
        outcome["download_s"] = count * 8 / bps if bps > 0 else None
        outcome["download_streams"] = int(tester.config["threads"]["download"])
        if outcome["bytes_received"] == 0:  # its threads swallow every error: 0 is a failure
            raise MeasurementError(f"{where} sent no download data")
    if req.upload:
        _stage("upload")
        outcome["upload_bps"] = bps = float(tester.upload(pre_allocate=True))
        outcome["bytes_sent"] = count = int(tester.results.bytes_sent)
        outcome["upload_s"] = count * 8 / bps if bps > 0 else None  # excludes pre-allocation
        # Read after download(): speedtest-cli raises it to 8 when the download was fast.
        outcome["upload_streams"] = int(tester.config["threads"]["upload"])
        if outcome["bytes_sent"] == 0:
            detail = {}
            if outcome.get("download_bps") is not None:
                detail["download_mbps"] = outcome["download_bps"] / 1e6
            raise MeasurementError(f"{where} accepted no upload data", detail)
    return SpeedtestOutcome(**outcome)


def _no_server(server_id: str | None, where: str) -> MeasurementError:
    if server_id:
        return MeasurementError(f"no Ookla server matched id {server_id} in {where}")
    return MeasurementError(f"{where} holds no Ookla server")


def _pin_sockets(req: _Request) -> None:
    """Route every connection speedtest-cli makes through :func:`net.connect` over IPv4.

    speedtest-cli connects with ``socket.create_connection`` (its HTTP(S) connection classes
    and its latency test): replacing that function in this child process, which runs nothing
    else, binds all of them to the link, which it cannot do itself (only a source address)."""
    link = Link(interface=req.interface, source_address=req.source_address)
    # Fail now with net's reason, rather than let speedtest-cli's threads swallow it as 0 bytes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as trial:
        net.bind(trial, link)

    def create_connection(
        address: tuple[str, int], timeout: object = None, source_address: object = None
    ) -> socket.socket:
        try:
            sock, _ = net.connect(
                address[0], address[1], link, ip_version=4, timeout_s=req.socket_timeout_s
            )
        except MeasurementError as exc:  # speedtest-cli expects socket errors
            raise OSError(exc.reason) from None
        return sock

    socket.create_connection = create_connection  # type: ignore[assignment]


def _speedtest_class(speedtest: Any) -> Any:
    """speedtest.Speedtest with discovery we can redirect or replace (speedtest is imported
    lazily, so the subclass is built here)."""

    class _Speedtest(speedtest.Speedtest):  # type: ignore[misc]
        _opener: Any  # set by speedtest.Speedtest.__init__ before it calls get_config()

        def __init__(self, *, request: _Request, failures: Any, **kwargs: Any) -> None:
            self._request = request
            self._failures = failures
            super().__init__(**kwargs)  # calls get_config() below

        def get_config(self) -> Any:
            if not isinstance(self._opener, Opener):
                self._opener = Opener(
                    self._opener,
                    redirects={
                        "config": self._request.config_url,
                        "servers": self._request.servers_url,
                    },
                    failures=self._failures,
                )
            override = self._request.config_override
            if override is None:
                return super().get_config()
            self.config.update(copy.deepcopy(override))
            client = self.config.setdefault("client", {})
            self.lat_lon = (float(client.get("lat", 0.0)), float(client.get("lon", 0.0)))
            return self.config

    return _Speedtest
