"""Writing to InfluxDB: synchronous writes, our own retry, bisecting 4xx, spill and replay.

The only module that imports influxdb_client. Never its batching WriteApi: that one drops a
batch when its retries run out and tells only a callback. Here a batch of lines either

- reaches InfluxDB (a 400/413/422 is bisected down to the lines InfluxDB refuses, which are
  returned for dead-lettering; the rest is written), or
- after ``spool_after_s`` of 5xx / connection errors, lands in the fsynced local spool,
  from which :class:`Replayer` writes it, oldest first, when InfluxDB answers again.

While the spool holds anything, new batches go there too (oldest first, and no 10 s stall
per batch during an outage).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from probefleet.collector.config import InfluxSection
from probefleet.collector.deadletter import DeadLetter, DeadLetterStore
from probefleet.collector.errors import WriteRejected, WriteUnavailable
from probefleet.collector.spool import Spool
from probefleet.collector.stats import Stats

log = logging.getLogger(__name__)

# HTTP statuses that are about the data: retrying the same lines cannot help.
_DATA_ERRORS = frozenset({400, 413, 422})


class Sink(Protocol):
    """Writes lines of line protocol (nanosecond timestamps) or raises WriteError."""

    def write(self, lines: Sequence[str]) -> None: ...


class InfluxSink:
    """influxdb-client's synchronous write API, with its errors sorted into ours."""

    def __init__(self, cfg: InfluxSection) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.bucket = cfg.bucket
        self.org = cfg.org
        # retries=False is the default: we retry ourselves, knowing what is retryable.
        self._client = InfluxDBClient(
            url=cfg.url, token=cfg.token, org=cfg.org, timeout=int(cfg.timeout_s * 1000)
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: Sequence[str]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._api.write(
                bucket=self.bucket,
                org=self.org,
                record="\n".join(lines),
                # The class holds plain strings though the signature names the class.
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            message = str(exc.body or exc.reason or "").strip()[:500]
            if status in _DATA_ERRORS:
                raise WriteRejected(status, message) from None
            raise WriteUnavailable(status, message) from None
        except Exception as exc:  # urllib3/socket errors: no answer at all
            raise WriteUnavailable(0, f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def write_isolating(sink: Sink, lines: Sequence[str]) -> list[tuple[int, WriteRejected]]:
    """Write ``lines``; on a data error split the batch in halves, down to single lines.

    Returns (index, error) of every line InfluxDB refused; everything else is written
    (lines of a half that was fine may be written twice: same point, overwritten).
    WriteUnavailable propagates: the caller retries the whole batch."""
    refused: list[tuple[int, WriteRejected]] = []

    def write(lo: int, hi: int) -> None:
        try:
            sink.write(lines[lo:hi])
        except WriteRejected as exc:
            if hi - lo == 1:
                refused.append((lo, exc))
                return
            mid = (lo + hi) // 2
            write(lo, mid)
            write(mid, hi)

    if lines:
        write(0, len(lines))
    return refused


def refused_letter(topic: str, line: str, error: WriteRejected, when: float) -> DeadLetter:
    probe = topic.split("/")[-3] if topic.count("/") >= 3 else None
    return DeadLetter(
        received_at=when,
        topic=topic,
        probe=probe,
        stage="influxdb",
        field=line.split(",", 1)[0].split(" ", 1)[0],
        reason=f"InfluxDB refused the point (HTTP {error.status}): {error.message}",
        payload=line.encode(),
    )


class Storage:
    """The live write path: InfluxDB now, or the spool; returns only once stored."""

    def __init__(
        self,
        sink: Sink,
        spool: Spool,
        stats: Stats,
        *,
        spool_after_s: float,
        stopping: threading.Event,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.stats = stats
        self.spool_after_s = spool_after_s
        self.stopping = stopping
        self._sleep = sleep or stopping.wait

    def store(self, lines: Sequence[str], topics: Sequence[str]) -> list[tuple[int, WriteRejected]]:
        """Lines InfluxDB refused (index, error); the others are in InfluxDB or the spool.

        Raises StateError (or sqlite3.Error) only if the spool itself cannot be written."""
        if not lines:
            return []
        if self.spool.rows:
            self._spill(lines, topics, "the spool is not empty yet")
            return []
        deadline = time.monotonic() + self.spool_after_s
        delay = 0.2
        while True:
            started = time.monotonic()
            try:
                refused = write_isolating(self.sink, lines)
            except WriteUnavailable as exc:
                self.stats.add("write_retries")
                if self.stopping.is_set() or time.monotonic() + delay > deadline:
                    self._spill(lines, topics, str(exc))
                    return []
                log.warning("InfluxDB write failed (%s); retrying in %.1f s", exc, delay)
                self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.stats.observe("write_latency_s", time.monotonic() - started)
            self.stats.add("points_written", len(lines) - len(refused))
            return refused

    def _spill(self, lines: Sequence[str], topics: Sequence[str], why: str) -> None:
        self.spool.append(lines, topics)
        self.stats.add("points_spooled", len(lines))
        log.info("spooled %d points locally (%s); %d waiting", len(lines), why, self.spool.points)


class Replayer(threading.Thread):
    """Moves the spool into InfluxDB, oldest batch first, backing off while it is down."""

    def __init__(
        self,
        sink: Sink,
        spool: Spool,
        deadletters: DeadLetterStore,
        stats: Stats,
        *,
        max_points: int,
        stopping: threading.Event,
    ) -> None:
        super().__init__(name="spool-replayer", daemon=True)
        self.sink = sink
        self.spool = spool
        self.deadletters = deadletters
        self.stats = stats
        self.max_points = max_points
        self.stopping = stopping

    def run(self) -> None:
        delay = 0.5
        while not self.stopping.is_set():
            if not self.spool.rows:
                self.stopping.wait(0.2)
                continue
            try:
                self._replay_once()
            except WriteUnavailable as exc:
                log.info("spool replay: InfluxDB still unavailable (%s)", exc)
                self.stopping.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            except Exception:  # a surprise must not end the thread: the spool would stall
                log.exception("spool replay failed; retrying")
                self.stopping.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.5

    def _replay_once(self) -> None:
        rows = self.spool.oldest(self.max_points)
        lines = [line for row in rows for line in row.lines]
        topics = [topic for row in rows for topic in row.topics]
        refused = write_isolating(self.sink, lines)
        now = time.time()
        self.deadletters.add(refused_letter(topics[i], lines[i], err, now) for i, err in refused)
        self.spool.delete(rows)
        self.stats.add("points_replayed", len(lines) - len(refused))
        self.stats.add("points_rejected", len(refused))
        log.info("replayed %d points from the spool; %d left", len(lines), self.spool.points)
