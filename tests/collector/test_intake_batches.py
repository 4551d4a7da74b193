"""Intake cost follows results, not probes: one state transaction per batch whatever the
number of probes, write requests of at most batch_max_points, a flush that stops at its
deadline with the rest unacknowledged, boots durable before any point they time."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector import clock, statedb
from probefleet.collector.config import CollectorConfig, FilesSection, InfluxSection
from probefleet.collector.deadletter import DeadLetterStore
from probefleet.collector.inventory import Enrichment
from probefleet.collector.mqtt import Inbound
from probefleet.collector.pipeline import Pipeline
from probefleet.collector.spool import Spool
from probefleet.collector.statedb import StateDB
from probefleet.collector.stats import Stats
from probefleet.collector.writer import Storage

from tests.collector.helpers import BASE_TIME, encode, result, topic_of
from tests.collector.test_pipeline import FakeLink


@dataclass
class CountingSink:
    """Records the size of every write request; ``on_write`` looks at the world first."""

    requests: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    on_write: Any = None

    def write(self, lines: Sequence[str]) -> None:
        if self.on_write is not None:
            self.on_write(lines)
        time.sleep(self.delay_s)
        self.requests.append(len(lines))


class Intake:
    def __init__(self, tmp_path: Path, *, max_points: int = 5000, delay_s: float = 0.0) -> None:
        self.cfg = CollectorConfig(
            files=FilesSection(state_dir=str(tmp_path)),
            influxdb=InfluxSection(batch_max_points=max_points),
        )
        self.link = FakeLink()
        self.sink = CountingSink(delay_s=delay_s)
        self.stats = Stats()
        self.spool = Spool(tmp_path)
        self.deadletters = DeadLetterStore(tmp_path, payload_max_bytes=100, max_rows=1000)
        self.db = StateDB(tmp_path)
        self.commits: list[str] = []
        self.db._conn.set_trace_callback(self._trace)
        storage = Storage(
            self.sink, self.spool, self.stats, spool_after_s=0.0, stopping=threading.Event()
        )
        self.pipeline = Pipeline(
            self.cfg, Enrichment(), db=self.db, deadletters=self.deadletters,
            storage=storage, link=self.link, stats=self.stats,
        )  # fmt: skip
        self.mid = 0

    def _trace(self, statement: str) -> None:
        if statement.strip().upper().startswith("COMMIT"):
            self.commits.append(statement)

    def feed(self, doc: dict[str, Any]) -> int:
        self.mid += 1
        message = Inbound(topic_of(doc), encode(doc), self.mid, 1, 1, time.time_ns())
        self.pipeline.handle(message)
        return self.mid

    def close(self) -> None:
        self.db.close()
        self.spool.close()
        self.deadletters.close()


def fleet(probes: int, per_probe: int = 1) -> list[dict[str, Any]]:
    return [
        result("latency", probe=f"p-{i:04d}", seq=s, uptime_s=100.0 + s,
               measured_at=BASE_TIME + dt.timedelta(seconds=s))
        for s in range(1, per_probe + 1)
        for i in range(probes)
    ]  # fmt: skip


def test_a_batch_of_new_probes_costs_two_commits_not_one_per_probe(tmp_path: Path) -> None:
    intake = Intake(tmp_path)
    for doc in fleet(500):
        intake.feed(doc)
    intake.pipeline.flush()
    # Boots (before the write: they time its points), then everything else.
    assert len(intake.commits) == 2
    assert intake.stats["boots_learnt"] == 500
    assert len(intake.link.acked) == 500
    assert len(intake.link.published) == 500  # one StoredAck per probe of the batch
    intake.commits.clear()
    for doc in fleet(500, per_probe=2)[500:]:  # known boots: one commit
        intake.feed(doc)
    intake.pipeline.flush()
    assert len(intake.commits) == 1
    intake.close()
    again = StateDB(tmp_path)
    assert len(again.load_boots()) == 500
    assert len(again.load_probes()) == 500
    again.close()


def test_a_backlog_is_written_in_requests_of_batch_max_points(tmp_path: Path) -> None:
    intake = Intake(tmp_path, max_points=100)
    mids = [intake.feed(doc) for doc in fleet(300)]  # 2 points each: 600 points
    assert intake.pipeline.flush() == 0
    assert intake.sink.requests == [100] * 6
    assert intake.link.acked == mids
    intake.close()


@pytest.mark.slow  # > 1 s: the full suite runs it
def test_a_flush_with_a_deadline_leaves_the_rest_unacknowledged(tmp_path: Path) -> None:
    intake = Intake(tmp_path, max_points=100, delay_s=0.05)
    mids = [intake.feed(doc) for doc in fleet(1000)]  # 40 requests of 0.05 s: 2 s
    began = time.monotonic()
    left = intake.pipeline.flush(deadline_s=0.3)
    assert time.monotonic() - began < 0.5
    assert 0 < left < 1000
    done = len(intake.link.acked)
    assert done + left == 1000
    assert intake.link.acked == mids[:done]  # a prefix, in arrival order
    assert max(intake.sink.requests) == 100
    assert intake.pipeline.flush() == 0  # the next flush (or the broker) takes the rest
    assert intake.link.acked == mids
    intake.close()


def test_a_boots_start_is_durable_before_any_point_it_times_is_written(tmp_path: Path) -> None:
    intake = Intake(tmp_path)
    unsynced = result("latency", seq=1, synced=False, measured_at=BASE_TIME, uptime_s=5.0)
    synced = result("dns", seq=2, measured_at=BASE_TIME + dt.timedelta(seconds=50), uptime_s=60.0)
    seen: list[dict[tuple[str, str], int | None]] = []

    def look(_lines: Sequence[str]) -> None:
        conn = sqlite3.connect(f"file:{tmp_path / statedb.FILENAME}?mode=ro", uri=True)
        rows = conn.execute("SELECT probe, boot_id, boot_time_ns FROM boots").fetchall()
        conn.close()
        seen.append({(p, b): ns for p, b, ns in rows})

    intake.sink.on_write = look
    intake.feed(unsynced)
    intake.feed(synced)
    intake.pipeline.flush()
    boot_ns = clock.ns(BASE_TIME) - 10 * 10**9
    [boots] = seen
    assert list(boots.values()) == [boot_ns]
    intake.close()


def test_quarantined_rows_are_found_after_a_restart(tmp_path: Path) -> None:
    intake = Intake(tmp_path)
    bogus = dt.datetime(1970, 1, 1, 0, 1, tzinfo=dt.UTC)
    intake.feed(result("latency", seq=1, synced=False, measured_at=bogus, uptime_s=30.0))
    intake.pipeline.flush()
    intake.close()
    again = Intake(tmp_path)
    assert again.db.quarantine_count() == 1
    again.feed(result("dns", seq=2, measured_at=BASE_TIME, uptime_s=100.0))
    again.pipeline.flush()
    assert again.stats["released"] == 1
    assert again.db.quarantine_count() == 0
    again.close()
