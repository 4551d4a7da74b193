"""speedtest-cli's discovery requests (config, server list): redirected, remembered, explained.

Used inside the speedtest child process only (see :mod:`._speedtest_seam`); imports no
``speedtest`` itself. speedtest-cli reads everything through one urllib opener, so wrapping
that opener is enough to point its config and server-list requests elsewhere and to keep
their failures, which ``Speedtest.get_servers`` otherwise swallows.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from probefleet.kinds.errors import MeasurementError

Discovery = Literal["config", "servers"]
_PATHS: dict[str, Discovery] = {
    "/speedtest-config.php": "config",
    "/speedtest-servers-static.php": "servers",
    "/speedtest-servers.php": "servers",
}
_HOSTS = frozenset({"www.speedtest.net", "c.speedtest.net"})
_WHAT: dict[Discovery, str] = {"config": "config", "servers": "server list"}

Failure = tuple[str, int | None]  # (what went wrong, HTTP status if there was one)


def discovery_of(url: str) -> Discovery | None:
    """Which of speedtest.net's discovery endpoints ``url`` is, if any."""
    parts = urlsplit(url)
    return _PATHS.get(parts.path) if parts.hostname in _HOSTS else None


def origin(override: str | None) -> str:
    """Who answers discovery requests, for reasons: speedtest.net or the override's host."""
    return (urlsplit(override).netloc or override) if override else "speedtest.net"


def describe(exc: BaseException, timeout_s: float) -> Failure:
    """A urllib/socket failure in words, with its HTTP status when it has one."""
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code}", exc.code
    reason: Any = exc.reason if isinstance(exc, URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g} s", None
    if isinstance(reason, OSError):
        return (reason.strerror or str(reason) or type(reason).__name__), None
    return (str(reason) or type(reason).__name__), None


def fetch_failure(kind: Discovery, source: str, failure: Failure) -> MeasurementError:
    """The MeasurementError for a config or server-list request that failed."""
    what = _WHAT[kind]
    text, status = failure
    detail = {"http_status": float(status)} if status is not None else None
    if status == 429:
        return MeasurementError(f"rate-limited by {source} (HTTP 429) on the {what}", detail)
    if status in (401, 403):
        return MeasurementError(f"{source} refused the {what} request (HTTP {status})", detail)
    if status is not None:
        return MeasurementError(f"{source} answered the {what} request with HTTP {status}", detail)
    return MeasurementError(f"cannot fetch the {what} from {source}: {text}")


class FailureLog:
    """The last failure of each discovery request, as :func:`describe` words it."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._seen: dict[Discovery, Failure] = {}

    def add(self, kind: Discovery, exc: BaseException) -> None:
        self._seen[kind] = describe(exc, self.timeout_s)

    def add_status(self, kind: Discovery, status: int) -> None:
        self._seen[kind] = (f"HTTP {status}", status)

    def get(self, kind: Discovery) -> Failure | None:
        return self._seen.get(kind)


class Opener:
    """Stands in for speedtest-cli's ``OpenerDirector`` (it only ever calls ``open``)."""

    def __init__(
        self, inner: Any, *, redirects: dict[Discovery, str | None], failures: FailureLog
    ) -> None:
        self._inner = inner
        self._redirects = redirects
        self._failures = failures

    def open(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        kind = discovery_of(request.full_url)
        if kind is None:  # downloads, uploads: untouched
            return self._inner.open(request, *args, **kwargs)
        target = self._redirects.get(kind)
        if target:
            query = urlsplit(request.full_url).query  # keep ?threads=..&x=<cache buster>
            request.full_url = f"{target}{'&' if '?' in target else '?'}{query}"
        try:
            response = self._inner.open(request, *args, **kwargs)
        except Exception as exc:
            self._failures.add(kind, exc)
            raise
        if int(response.code) != 200:  # speedtest-cli treats any other 2xx as "no data"
            self._failures.add_status(kind, int(response.code))
        return response
