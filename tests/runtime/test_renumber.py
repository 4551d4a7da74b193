"""The publisher's side of a new life under an old name (wiped state dir, reflashed SD card):
StoredAcks from the previous life renumber the spool and delete nothing they cannot have
stored; late StoredAcks of this life renumber nothing. Fast: the pump is driven by hand
(no broker), with a real spool and real wire payloads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest
from probefleet.agent import results
from probefleet.agent.config import AgentConfig
from probefleet.agent.publisher import Publisher
from probefleet.agent.spool import Spool
from probefleet.core import configkit, wire
from probefleet.kinds.base import DEFAULT_LINK

from tests.runtime.standins import FastLatency

TOPICS = wire.Topics()
BOOT = "5967a284-5a74-4aee-a62b-9cb68f34bf08"
T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def spool_results(spool: Spool, n: int) -> None:
    data = FastLatency(None).run(DEFAULT_LINK)  # type: ignore[arg-type]

    def make(seq: int) -> tuple[str, bytes]:
        result = results.build(
            kind="latency", outcome=data, probe_id="probe-a", boot_id=BOOT, seq=seq,
            measured_at=T0 + dt.timedelta(minutes=seq),
            clock=wire.Clock(synced=True, uptime_s=float(seq), since_sync_s=1.0),
            link=DEFAULT_LINK,
        )  # fmt: skip
        return TOPICS.result("probe-a", "latency"), wire.encode(result)

    for _ in range(n):
        spool.append("latency", make)


def ack(through: int, also: list[tuple[int, int]] | None = None) -> tuple[str, bytes]:
    message = wire.StoredAck(schema=1, probe_id="probe-a", stored_through_seq=through,
                             also_stored=also or [], at=wire.utc_now())  # fmt: skip
    return TOPICS.channel("probe-a", "ack"), wire.encode(message)


@pytest.fixture
def publisher(tmp_path: Path) -> Publisher:
    cfg = configkit.build(
        {
            "probe": {"id": "probe-a", "state_dir": str(tmp_path)},
            "mqtt": {"host": "127.0.0.1", "port": 1, "tls": False},
        },
        AgentConfig,
    ).resolve({}, [], tmp_path)
    return Publisher("probe-a", cfg.mqtt, cfg.spool, Spool(tmp_path, max_bytes=10**7))


def seqs(spool: Spool) -> list[int]:
    return [r.seq for r in spool.after(0, limit=1000)]


def test_late_acks_of_this_life_confirm_and_never_renumber(publisher: Publisher) -> None:
    spool = publisher.spool
    spool_results(spool, 6)
    publisher._message(*ack(6))  # the whole spool confirmed: depth 0, six seqs issued
    assert seqs(spool) == []
    spool_results(spool, 2)  # 7, 8
    for late in (3, 6, 8):  # late or repeated, never above the highest seq issued
        publisher._message(*ack(late))
    assert spool.figures().next_seq == 9
    assert publisher.state.renumbered == 0
    assert spool.figures().renumbered == 0


def test_an_ack_from_the_previous_life_renumbers_and_deletes_nothing(
    publisher: Publisher,
) -> None:
    spool = publisher.spool
    spool_results(spool, 5)
    before = spool.after(0, limit=10)
    publisher._message(*ack(3, [(5, 40_000)]))  # an also_stored range reaches beyond
    after = spool.after(0, limit=10)
    assert [r.seq for r in after] == [40_001, 40_002, 40_003, 40_004, 40_005]
    for old, new in zip(before, after, strict=True):
        decoded = wire.decode_result(new.payload)
        assert decoded == msgspec.structs.replace(wire.decode_result(old.payload), seq=new.seq)
        assert new.topic == old.topic
    assert publisher.state.renumbered == 5
    assert spool.figures().next_seq == 40_006
    # The pump starts again from the spool, oldest first, in the new numbering.
    assert publisher._next_row().seq == 40_001  # type: ignore[union-attr]


def test_a_burst_of_previous_life_acks_deletes_only_what_was_published(
    publisher: Publisher,
) -> None:
    spool = publisher.spool
    spool_results(spool, 5)
    publisher._message(*ack(1000))  # 1..5 -> 1001..1005
    publisher._message(*ack(1003))  # the old life's next ack, queued right behind the first
    assert seqs(spool) == [1001, 1002, 1003, 1004, 1005], "deleted results never published"
    for _ in range(2):  # 1001 and 1002 go out; the collector stores them, acks them
        publisher._next_row()
    publisher._message(*ack(1002))
    assert seqs(spool) == [1003, 1004, 1005]
    publisher._message(*ack(1010))  # beyond again: renumbered once more, nothing deleted
    assert seqs(spool) == [1011, 1012, 1013]
    assert publisher.state.renumbered == 8
