"""The collector in-process against real Mosquitto and InfluxDB: end to end, hostile input,
forged ids, StoredAck and ResendRequest, the in-flight window, the deadletters command."""

from __future__ import annotations

import contextlib
import fnmatch
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector.service import Service, load_enrichment

from tests.collector.helpers import (
    BROKER_CONF,
    ROOT,
    StandInProbe,
    count,
    result,
    write_config,
)
from tests.collector.test_points import HOSTILE_CORPUS
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


@contextlib.contextmanager
def collector(
    tmp_path: Path, broker: Mosquitto, target: InfluxTarget, sink: Any = None, **sections: Any
) -> Iterator[Service]:
    _path, cfg = write_config(tmp_path, broker, target, **sections)
    service = Service(cfg, load_enrichment(cfg), sink=sink)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(service.run()), daemon=True)
    thread.start()
    try:
        assert service.link.wait_subscribed(10), "collector did not subscribe"
        status = service.status_link
        assert status is None or status.wait_subscribed(10), "no status subscription"
        yield service
    finally:
        service.request_stop()
        thread.join(30)
        assert codes == [0]


@contextlib.contextmanager
def probe(broker: Mosquitto, name: str = "probe-a", **kwargs: Any) -> Iterator[StandInProbe]:
    stand_in = StandInProbe(broker, name, **kwargs).start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


KINDS = ["latency", "dns", "throughput", "service", "health", "ipv6", "ookla"]
POINTS_PER_RESULT = {"latency": 2, "dns": 3, "throughput": 1, "service": 2, "health": 3,
                     "ipv6": 6, "ookla": 1}  # fmt: skip


def test_results_from_many_probes_are_stored_exactly_once(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    probes = [f"probe-{i}" for i in range(5)]
    per_kind = dict.fromkeys(KINDS, 0)
    with collector(tmp_path, broker, influx_db) as service:
        stand_ins = [StandInProbe(broker, p).start() for p in probes]
        try:
            for seq in range(1, 101):
                for stand_in in stand_ins:
                    kind = KINDS[seq % len(KINDS)]
                    per_kind[kind] += 1
                    stand_in.publish(result(kind, probe=stand_in.probe, seq=seq))
            for kind, n in per_kind.items():
                want = n * POINTS_PER_RESULT[kind]

                def all_written(k: str = kind, w: int = want) -> bool:
                    return count(influx_db, k) == w

                eventually(all_written, timeout_s=30, message=f"{kind}: want {want} points")
            for stand_in in stand_ins:

                def acked(s: StandInProbe = stand_in) -> bool:
                    return s.stored_through() == 100

                eventually(acked, message="StoredAck")
                # PUBACK 0 (not 0x10 "no subscribers"): the collector's session was there.
                assert set(stand_in.pubacks.values()) == {0}
        finally:
            for stand_in in stand_ins:
                stand_in.stop()
    assert service.stats["received"] == 500
    assert service.stats["rejected"] == 0
    # Tags from the inventory: probe-0 is unknown to it, flagged, and stored anyway.
    rows = influx_db.server.query(
        'SHOW TAG VALUES FROM "latency" WITH KEY = "inventory"', db=influx_db.db
    )
    assert rows[0]["values"] == [["inventory", "unknown"]]


def _delivered(topic: str) -> bool:
    return fnmatch.fnmatchcase(topic, "probefleet/v1/*/results/*") and topic.count("/") == 4


def test_hostile_messages_are_dead_lettered_and_valid_ones_still_stored(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    delivered = [c for c in HOSTILE_CORPUS if _delivered(c[1])]
    assert len(delivered) >= 50
    with collector(tmp_path, broker, influx_db) as service, probe(broker, "probe-a") as good:
        raw = StandInProbe(broker, "attacker").start()
        try:
            for seq, (_name, topic, payload) in enumerate(delivered, start=1):
                good.publish(result("latency", probe="probe-a", seq=seq))
                raw.publish_raw(topic, payload)
            want = 2 * len(delivered)
            eventually(lambda: count(influx_db, "latency", "probe = 'probe-a'") == want,
                       timeout_s=30, message="valid results missing")  # fmt: skip
            eventually(lambda: service.stats["rejected"] == len(delivered), timeout_s=30,
                       message="not every hostile message was rejected")  # fmt: skip
        finally:
            raw.stop()
        eventually(lambda: service.deadletters.count() == len(delivered), message="dead letters")
        # Acks follow the batch's commit (the dead letters are durable first): wait for them.
        eventually(lambda: service.stats["acked"] == 2 * len(delivered), message="acks")
        eventually(lambda: good.stored_through() == len(delivered), message="StoredAck")
    # The engineer's view: `probe-collector deadletters`.
    config = tmp_path / "collector.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "probefleet.collector.cli", "deadletters", "--config", str(config),
         "--limit", "500"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout.count("\n#") + 1 == len(delivered)
    assert "probe_id: payload claims probe" in proc.stdout
    assert "not valid JSON" in proc.stdout
    assert "payload is 65" in proc.stdout  # the oversized one, with the limit


def test_a_probe_publishing_under_another_id_is_rejected(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    with collector(tmp_path, broker, influx_db) as service, probe(broker, "probe-b") as forger:
        forger.publish(
            result("latency", probe="probe-a", seq=1), topic="probefleet/v1/probe-b/results/latency"
        )
        forger.publish(result("latency", probe="probe-b", seq=1))
        eventually(lambda: count(influx_db, "latency") == 2, message="the honest result")
        eventually(lambda: service.stats["rejected"] == 1, message="the forged result")
    rows = influx_db.server.query(
        'SHOW TAG VALUES FROM "latency" WITH KEY = "probe"', db=influx_db.db
    )
    assert rows[0]["values"] == [["probe", "probe-b"]]


def test_stored_ack_and_resend_request_for_a_gap(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    with collector(tmp_path, broker, influx_db, sequences={"resend_grace_s": 1.0}), \
            probe(broker) as stand_in:  # fmt: skip
        docs = {seq: result("dns", seq=seq) for seq in range(1, 11)}
        for seq in (1, 2, 3, 4, 6, 7, 8, 9, 10):
            stand_in.publish(docs[seq])
        eventually(lambda: stand_in.acks and stand_in.acks[-1].also_stored == [(6, 10)],
                   message="StoredAck with the run after the gap")  # fmt: skip
        assert stand_in.stored_through() == 4
        eventually(lambda: stand_in.resends, timeout_s=10, message="no ResendRequest")
        assert stand_in.resends[0].ranges == [(5, 5)]
        assert stand_in.resends[0].probe_id == "probe-a"
        stand_in.publish(docs[5])
        eventually(lambda: stand_in.stored_through() == 10, message="gap filled, ack moved")
        assert stand_in.acks[-1].also_stored == []
    assert count(influx_db, "dns") == 30


class BlockingSink:
    """Blocks every write until released: shows how much the broker hands over meanwhile."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.release = threading.Event()

    def write(self, lines: Sequence[str]) -> None:
        if not self.release.wait(30):
            raise AssertionError("never released")
        self.inner.write(lines)


def test_the_broker_never_hands_over_more_than_receive_maximum(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    from probefleet.collector.config import InfluxSection
    from probefleet.collector.writer import InfluxSink

    inner = InfluxSink(InfluxSection(url=influx_db.server.url, bucket=influx_db.db, token="x:y"))
    sink = BlockingSink(inner)
    window = 10
    small = {"receive_maximum": window}
    with collector(tmp_path, broker, influx_db, sink=sink, mqtt=small) as service, \
            probe(broker) as stand_in:  # fmt: skip
        stand_in.publish_all(result("dns", seq=s) for s in range(1, 101))

        # The flush of the first half-window blocks; the broker fills the window, then stops.
        def taken() -> int:
            return service.stats["received"] + service.inbox.qsize()

        eventually(lambda: taken() == window, message="window not filled")
        with pytest.raises(AssertionError):
            eventually(lambda: taken() > window, timeout_s=1.0)
        sink.release.set()
        eventually(lambda: count(influx_db, "dns") == 300, timeout_s=30, message="all stored")
    inner.close()
