"""The only module that talks to InfluxDB: InfluxQL over HTTP ``/query``, with progress.

One seam for both servers the product meets: InfluxDB 1.x (``/query?db=``) and 2.x/3.x
through their v1-compatible ``/query`` with a DBRP mapping and ``Authorization: Token …``
(docs.influxdata.com, "/query 1.x compatibility API"). Statements go in a POST form body:
the peak-hour queries carry one subquery per day, far past what a URL may hold. Usage::

    client = HttpInfluxQL(url, database="probefleet", token="…")
    fetcher = Fetcher(client, progress=print)
    rows = fetcher.rows(query, "by commune", text)        # -> list[Row]
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from probefleet.collector.queries import Query
from probefleet.collector.report.errors import QueryFailed

Value = float | int | str | bool | None
# Peak windows: a month of days per HTTP request (a year = 12 requests).
STATEMENTS_PER_REQUEST: Final = 31


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a result: the series' tags, and the columns (``time`` as epoch seconds)."""

    tags: dict[str, str]
    values: dict[str, Value]

    def num(self, column: str) -> float | None:
        value = self.values.get(column)
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    def count(self, column: str) -> int:
        value = self.num(column)
        return int(value) if value is not None else 0


class InfluxQL(Protocol):
    """Runs InfluxQL (one statement, or several joined by ``;``) and returns the JSON
    ``results``, one per statement (the seam's test double implements just this)."""

    def run(self, text: str) -> list[dict[str, Any]]: ...


class HttpInfluxQL:
    """InfluxQL over HTTP ``POST /query`` (stdlib only: nothing to install for a report)."""

    def __init__(
        self,
        url: str,
        *,
        database: str,
        token: str = "",
        retention_policy: str = "",
        timeout_s: float = 300.0,
    ) -> None:
        self.url = url.rstrip("/") + "/query"
        self.database = database
        self.token = token
        self.retention_policy = retention_policy
        self.timeout_s = timeout_s
        # The collector's own database: never send this through an http_proxy variable.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def run(self, text: str) -> list[dict[str, Any]]:
        form = {"db": self.database, "q": text, "epoch": "s"}
        if self.retention_policy:
            form["rp"] = self.retention_policy
        request = urllib.request.Request(  # noqa: S310 - the configured http(s) URL
            self.url,
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                **({"Authorization": f"Token {self.token}"} if self.token else {}),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:2000].decode("utf-8", "replace").strip()
            # Not InfluxDB's JSON error (a proxy's page)? Then quote it as it came.
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = str(json.loads(detail)["error"])
            if exc.code == 400:
                raise QueryFailed(f"InfluxDB refused the query (HTTP 400): {detail}") from None
            raise QueryFailed(f"{self.url} answered HTTP {exc.code}: {detail[:300]}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise QueryFailed(f"cannot reach InfluxDB at {self.url}: {reason}") from None
        try:
            doc = json.loads(body)
            results: list[dict[str, Any]] = doc["results"]
            errors = [r["error"] for r in results if "error" in r]
        except (ValueError, KeyError, IndexError, TypeError):
            raise QueryFailed(f"{self.url}: not an InfluxQL answer: {body[:200]!r}") from None
        if errors:
            raise QueryFailed(f"InfluxDB refused the query: {errors[0]}")
        return results


@dataclass
class Fetcher:
    """Runs catalogue queries one by one, announcing each (``progress``) and timing them."""

    client: InfluxQL
    progress: Callable[[str], None] | None = None
    total: int = 0  # statements expected, for "[3/40]"; 0 = unknown
    done: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def rows(self, query: Query, what: str, texts: list[str]) -> list[Row]:
        """The rows of ``texts`` (statements of one query, e.g. one per peak window), sent
        ``STATEMENTS_PER_REQUEST`` at a time, one progress line per request."""
        out: list[Row] = []
        key = f"{query.name} {what}"
        for first in range(0, len(texts), STATEMENTS_PER_REQUEST):
            chunk = texts[first : first + STATEMENTS_PER_REQUEST]
            self.done += 1
            if self.progress is not None:
                of = f"/{self.total}" if self.total else ""
                part = (
                    f" ({first + 1}-{first + len(chunk)} of {len(texts)})"
                    if first or len(chunk) < len(texts)
                    else ""
                )
                self.progress(f"[{self.done}{of}] {query.name} {what}{part}")
            started = time.perf_counter()
            try:
                results = self.client.run(";\n".join(chunk))
            except QueryFailed as exc:
                raise QueryFailed(f"query {query.name} ({what}): {exc}") from None
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started
            for result in results:
                for series in result.get("series", []):
                    tags = {k: str(v) for k, v in (series.get("tags") or {}).items()}
                    columns = series["columns"]
                    for values in series["values"]:
                        out.append(Row(tags, dict(zip(columns, values, strict=True))))
        return out
