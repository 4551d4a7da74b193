"""The pipeline without a broker: ack order, dead letters, clocks and quarantine, seq resets.

Fakes only at the seams (the MQTT link and the InfluxDB sink); SQLite state is real.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector import clock
from probefleet.collector.config import ClockSection, CollectorConfig, FilesSection
from probefleet.collector.deadletter import DeadLetterStore, list_deadletters
from probefleet.collector.errors import WriteUnavailable
from probefleet.collector.inventory import Enrichment
from probefleet.collector.mqtt import Inbound
from probefleet.collector.pipeline import Pipeline
from probefleet.collector.spool import Spool
from probefleet.collector.statedb import StateDB
from probefleet.collector.stats import Stats
from probefleet.collector.writer import Storage
from probefleet.core import wire

from tests.collector.helpers import BASE_TIME, encode, iso, result, topic_of

OTHER_BOOT = "0b7a8d9e-1111-4222-8333-944455556666"


@dataclass
class FakeLink:
    acked: list[int] = field(default_factory=list)
    published: list[tuple[str, bytes]] = field(default_factory=list)
    generation: int = 1

    def ack(self, message: Inbound) -> bool:
        if message.generation != self.generation:
            return False
        self.acked.append(message.mid)
        return True

    def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        self.published.append((topic, payload))

    def acks(self, probe: str) -> list[wire.StoredAck]:
        return [
            wire.decode(p, wire.StoredAck) for t, p in self.published if t.endswith(f"{probe}/ack")
        ]


@dataclass
class FakeSink:
    lines: list[str] = field(default_factory=list)
    down: bool = False

    def write(self, lines: Sequence[str]) -> None:
        if self.down:
            raise WriteUnavailable(503, "down")
        self.lines.extend(lines)

    def times(self, measurement: str) -> list[int]:
        return [
            int(line.rsplit(" ", 1)[1]) for line in self.lines if line.startswith(measurement + ",")
        ]


class Harness:
    def __init__(self, tmp_path: Path, **clock_cfg: Any) -> None:
        self.cfg = CollectorConfig(
            files=FilesSection(state_dir=str(tmp_path)), clock=ClockSection(**clock_cfg)
        )
        self.tmp_path = tmp_path
        self.link = FakeLink()
        self.sink = FakeSink()
        self.stats = Stats()
        self.spool = Spool(tmp_path)
        self.deadletters = DeadLetterStore(tmp_path, payload_max_bytes=100, max_rows=1000)
        self.db = StateDB(tmp_path)
        storage = Storage(
            self.sink, self.spool, self.stats, spool_after_s=0.0, stopping=threading.Event()
        )
        self.pipeline = Pipeline(
            self.cfg, Enrichment(), db=self.db, deadletters=self.deadletters,
            storage=storage, link=self.link, stats=self.stats,
        )  # fmt: skip
        self.mid = 0

    def feed(
        self,
        doc: dict[str, Any] | bytes,
        topic: str | None = None,
        *,
        received_ns: int | None = None,
    ) -> int:
        self.mid += 1
        payload = doc if isinstance(doc, bytes) else encode(doc)
        topic = topic or (
            topic_of(doc) if isinstance(doc, dict) else "probefleet/v1/probe-a/results/latency"
        )
        now = received_ns if received_ns is not None else time.time_ns()
        self.pipeline.handle(Inbound(topic, payload, self.mid, 1, self.link.generation, now))
        return self.mid


def test_everything_is_acked_in_arrival_order_after_the_write(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    mids = [
        h.feed(result("latency", seq=1)),
        h.feed(b"garbage"),
        h.feed(result("dns", seq=2)),
        h.feed(result("latency", probe="probe-b", seq=1), topic_of(result("latency"))),  # forged
        h.feed(result("health", seq=3)),
    ]
    assert h.link.acked == []
    assert h.sink.lines == []
    h.pipeline.flush()
    assert h.link.acked == mids
    assert h.deadletters.count() == 2
    assert len(h.sink.times("latency")) == 2
    assert len(h.sink.times("dns")) == 3
    [ack] = h.link.acks("probe-a")
    assert ack.stored_through_seq == 3  # the valid seqs, the forged one does not count


def test_a_rejected_result_of_the_topics_probe_still_counts_as_handled(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    bad = result("latency", seq=2)
    bad["data"]["targets"][0]["loss_pct"] = 250.0
    h.feed(result("latency", seq=1))
    h.feed(bad)
    h.feed(result("latency", seq=3))
    h.pipeline.flush()
    # Kept as a dead letter, so acknowledged: no resend loop for a message that cannot pass.
    assert h.link.acks("probe-a")[-1].stored_through_seq == 3
    [letter] = list_deadletters(tmp_path)
    assert (letter.probe, letter.field, letter.stage) == (
        "probe-a",
        "data.targets[0].loss_pct",
        "parse",
    )
    assert letter.payload_bytes > 100
    assert len(letter.payload) == 100


def test_acks_from_an_older_connection_are_not_sent(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.feed(result("latency", seq=1))
    h.link.generation += 1  # the broker connection was lost meanwhile
    second = h.feed(result("latency", seq=2))
    h.pipeline.flush()
    assert h.link.acked == [second]
    assert h.stats["acked"] == 1


def test_unsynced_results_wait_for_their_boot_then_are_rebased(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    bogus = dt.datetime(1970, 1, 1, 0, 0, 41, tzinfo=dt.UTC)
    early = [
        result("latency", seq=s, synced=False, measured_at=bogus + dt.timedelta(seconds=s),
               uptime_s=40.0 + s)
        for s in (1, 2)
    ]  # fmt: skip
    for doc in early:
        h.feed(doc)
    h.pipeline.flush()
    assert h.sink.lines == []
    assert h.db.quarantine_count() == 2
    assert h.link.acks("probe-a")[-1].stored_through_seq == 2  # durable in the quarantine
    # The first synced result of the boot: uptime 100 s at 13:00:03 -> boot at 12:58:23.
    synced_at = BASE_TIME + dt.timedelta(seconds=3)
    h.feed(result("dns", seq=3, measured_at=synced_at, uptime_s=100.0))
    h.pipeline.flush()
    boot_ns = clock.ns(synced_at) - 100 * 10**9
    assert sorted(set(h.sink.times("latency"))) == [boot_ns + 41 * 10**9, boot_ns + 42 * 10**9]
    assert all(
        'time_source="rebased"' in line for line in h.sink.lines if line.startswith("latency")
    )
    assert h.db.quarantine_count() == 0
    # Later unsynced results of the same boot are re-based at once, identically on redelivery.
    late = result("latency", seq=4, synced=False, measured_at=bogus, uptime_s=200.0)
    h.feed(late)
    h.feed(late)
    h.pipeline.flush()
    assert h.sink.times("latency")[-4:] == [boot_ns + 200 * 10**9] * 4


def test_a_forged_uptime_cannot_put_results_a_century_away(tmp_path: Path) -> None:
    """A trusted result claiming 100 years of uptime teaches a boot start in 1926; the
    boot's unsynchronised results are then estimated from their arrival, not re-based."""
    h = Harness(tmp_path)
    century = 100 * 365 * 86_400.0
    h.feed(result("dns", seq=1, measured_at=BASE_TIME, uptime_s=century))
    bogus = dt.datetime(1970, 1, 1, 0, 1, tzinfo=dt.UTC)
    arrived = time.time_ns()
    h.feed(result("latency", seq=2, synced=False, measured_at=bogus, uptime_s=60.0),
           received_ns=arrived)  # fmt: skip
    h.pipeline.flush()
    [when] = set(h.sink.times("latency"))
    assert clock.ns(wire.SANE_AFTER) <= when <= arrived
    assert all(
        'time_source="estimated"' in line for line in h.sink.lines if line.startswith("latency")
    )
    # ... and a plausible uptime of the same boot still re-bases (the bound is no blanket).
    h2 = Harness(tmp_path / "2")
    h2.feed(result("dns", seq=1, measured_at=BASE_TIME, uptime_s=100.0))
    h2.feed(result("latency", seq=2, synced=False, measured_at=bogus, uptime_s=160.0))
    h2.pipeline.flush()
    assert set(h2.sink.times("latency")) == {clock.ns(BASE_TIME) + 60 * 10**9}


def test_a_synced_clock_stepped_backwards_is_rebased_never_stored_early(tmp_path: Path) -> None:
    """The boot's start is known (13:00:00 - 100 s). Then the probe's clock steps 2 h back
    while it still says "synced": its results go to boot start + uptime, their true time,
    not 2 h early; redelivered, the same. A clock within the tolerance stays trusted."""
    h = Harness(tmp_path)
    h.feed(result("dns", seq=1, measured_at=BASE_TIME, uptime_s=100.0))
    stepped = BASE_TIME + dt.timedelta(seconds=60) - dt.timedelta(hours=2)
    late = result("latency", seq=2, measured_at=stepped, uptime_s=160.0,
                  sent_at=iso(stepped + dt.timedelta(seconds=1)))  # fmt: skip
    h.feed(late)
    h.feed(late)
    # 0.4 s of drift after a day of uptime: within 1 s + 100 ppm.
    drifted = BASE_TIME + dt.timedelta(seconds=86_400.4)
    h.feed(result("ipv6", seq=3, measured_at=drifted, uptime_s=86_500.0))
    h.pipeline.flush()
    true_ns = clock.ns(BASE_TIME) + 60 * 10**9
    assert set(h.sink.times("latency")) == {true_ns}
    assert all('time_source="rebased"' in ln for ln in h.sink.lines if ln.startswith("latency"))
    assert set(h.sink.times("ipv6")) == {clock.ns(drifted)}
    assert h.pipeline.stats.snapshot()["clock_steps"] == 2


def test_boot_time_survives_a_restart_and_in_batch_quarantine_is_released(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    unsynced = result("latency", seq=1, synced=False, measured_at=BASE_TIME, uptime_s=5.0)
    h.feed(unsynced)
    h.feed(result("dns", seq=2, measured_at=BASE_TIME + dt.timedelta(seconds=50), uptime_s=60.0))
    h.pipeline.flush()  # both in one batch: the unsynced one never reaches the quarantine
    boot_ns = clock.ns(BASE_TIME) - 10 * 10**9
    assert set(h.sink.times("latency")) == {boot_ns + 5 * 10**9}
    h.db.close()
    again = Harness(tmp_path)
    again.feed(result("latency", seq=3, synced=False, measured_at=BASE_TIME, uptime_s=7.0))
    again.pipeline.flush()
    assert set(again.sink.times("latency")) == {boot_ns + 7 * 10**9}


def test_quarantine_expires_to_an_estimated_time(tmp_path: Path) -> None:
    h = Harness(tmp_path, quarantine_max_s=60.0)
    received = clock.ns(BASE_TIME)
    doc = result(
        "latency",
        seq=1,
        synced=False,
        measured_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        uptime_s=9.0,
    )
    doc["sent_at"] = iso(dt.datetime(1970, 1, 1, 0, 0, 30, tzinfo=dt.UTC))  # sent 30 s after
    h.feed(doc, received_ns=received)
    h.pipeline.flush()
    assert h.pipeline.release_expired(received + 59 * 10**9) == 0
    assert h.pipeline.release_expired(received + 61 * 10**9) == 1
    h.pipeline.flush()
    assert set(h.sink.times("latency")) == {received - 30 * 10**9}
    assert 'time_source="estimated"' in h.sink.lines[0]
    assert h.db.quarantine_count() == 0


@pytest.mark.parametrize(
    ("synced", "measured", "trusted"),
    [
        (True, BASE_TIME, True),
        (False, BASE_TIME, False),
        (True, dt.datetime(2024, 12, 31, tzinfo=dt.UTC), False),  # before the sane date
        (True, BASE_TIME + dt.timedelta(hours=1), False),  # far ahead of the collector
    ],
)
def test_which_clocks_are_trusted(synced: bool, measured: dt.datetime, trusted: bool) -> None:
    doc = result("latency", seq=1, synced=synced, measured_at=measured)
    doc["sent_at"] = iso(BASE_TIME + dt.timedelta(seconds=1))
    parsed = wire.decode_result(encode(doc))
    received = clock.ns(BASE_TIME) + 10**9
    assert clock.trusted(parsed, received, max_future_s=300) is trusted


def test_a_new_boot_restarting_the_seq_resets_the_book(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    for seq in (1, 2, 3):
        h.feed(result("latency", seq=seq))
    h.pipeline.flush()
    h.feed(result("latency", seq=1, boot=OTHER_BOOT, measured_at=BASE_TIME + dt.timedelta(days=1)))
    h.pipeline.flush()
    assert h.stats["seq_resets"] == 1
    assert h.link.acks("probe-a")[-1].stored_through_seq == 1  # not 3: 2 and 3 are new


def test_a_late_result_of_an_older_boot_is_not_a_reset(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.feed(result("latency", seq=5, boot=OTHER_BOOT))
    h.pipeline.flush()
    h.feed(result("latency", seq=2))  # seq 2 of an earlier boot, in the gap 1..4
    h.pipeline.flush()
    assert h.stats["seq_resets"] == 0
    assert h.link.acks("probe-a")[-1].also_stored == [(2, 2), (5, 5)]


def test_influxdb_down_means_spooled_then_acked(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.sink.down = True
    mid = h.feed(result("latency", seq=1))
    h.pipeline.flush()
    assert h.link.acked == [mid]
    assert h.spool.points == 2


def test_a_failed_flush_acks_nothing_and_keeps_the_batch(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.feed(result("latency", seq=1))
    h.spool.close()  # the spool's disk is gone
    h.sink.down = True
    with pytest.raises(Exception):  # noqa: B017, PT011 - any failure will do
        h.pipeline.flush()
    assert h.link.acked == []
    assert len(h.pipeline.items) == 1
    h.sink.down = False
    h.spool = Spool(tmp_path)
    h.pipeline.storage.spool = h.spool
    h.pipeline.flush()
    assert h.link.acked == [1]


def test_deeply_nested_messages_on_any_topic_are_dead_lettered_not_fatal(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    deep = b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    claim = encode(result("latency", seq=9))[:-1] + b',"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    mids = [
        h.feed(deep, "probefleet/v1/probe-a/status"),
        h.feed(deep),
        h.feed(claim),
        h.feed(b"[" * 60_000),
        h.feed(result("latency", seq=1)),
    ]
    h.pipeline.flush()
    assert h.link.acked == mids
    assert h.deadletters.count() == 4
    reasons = [d.reason for d in list_deadletters(tmp_path)]
    assert sum("nested deeper than 16" in r for r in reasons) == 4, reasons
    assert len(h.sink.times("latency")) == 2


def test_a_seq_no_probe_reaches_is_refused_not_turned_into_a_giant_gap(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    at = BASE_TIME
    mids = [
        h.feed(result("latency", seq=2**53 - 1, measured_at=at, uptime_s=10.0)),  # a 9e15-seq gap
        h.feed(result("latency", seq=3, measured_at=at, uptime_s=10.0)),
    ]
    h.pipeline.flush()  # the bound is from what is committed: seq 3 now
    later = at + dt.timedelta(seconds=1)
    mids += [
        h.feed(result("latency", seq=3 + 2**32 + 1, measured_at=later, uptime_s=10.0)),
        h.feed(result("latency", seq=3 + 2**32, measured_at=later, uptime_s=10.0)),  # right at it
    ]
    h.pipeline.flush()
    assert h.link.acked == mids
    reasons = [d.reason for d in list_deadletters(tmp_path)]
    assert len(reasons) == 2
    assert all("beyond this probe's seq" in r for r in reasons), reasons
    state = h.pipeline.book.states["probe-a"]
    assert state.max_seq == 3 + 2**32
    assert sum(g.last - g.first + 1 for g in state.gaps) == 2 + 2**32 - 1  # 1..2, 4..2^32+2
