"""Zero loss, end to end, with `probe-collector run` as a real process: N results in, exactly
N points per measurement out, across a collector kill -9, an InfluxDB outage, broker restarts
and a broker crash that loses acknowledged messages (healed by resend requests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.collector.helpers import (
    BROKER_CONF,
    CollectorProcess,
    StandInProbe,
    count,
    result,
    write_config,
)
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

N = 500


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


@contextlib.contextmanager
def collector_process(
    tmp_path: Path, broker: Mosquitto, target: InfluxTarget, **sections: Any
) -> Iterator[CollectorProcess]:
    config, _cfg = write_config(tmp_path, broker, target, **sections)
    process = CollectorProcess(config, tmp_path / "collector.log")
    try:
        yield process
    finally:
        process.kill()


@contextlib.contextmanager
def stand_in(broker: Mosquitto, **kwargs: Any) -> Iterator[StandInProbe]:
    probe = StandInProbe(broker, **kwargs).start()
    try:
        yield probe
    finally:
        probe.stop()


def docs(first: int, last: int) -> list[dict[str, Any]]:
    # Latency gives 2 points per result, dns 3: both are checked to be exactly right.
    return [result("latency" if s % 2 else "dns", seq=s) for s in range(first, last + 1)]


def assert_exactly(target: InfluxTarget, first: int, last: int) -> None:
    odd = sum(1 for s in range(first, last + 1) if s % 2)
    even = last - first + 1 - odd
    eventually(
        lambda: (count(target, "latency"), count(target, "dns")) == (2 * odd, 3 * even),
        timeout_s=60,
        message=f"want {2 * odd} latency and {3 * even} dns points",
    )


def test_collector_killed_mid_batch_loses_and_doubles_nothing(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    # A small window keeps the collector busy long enough to kill it mid-way.
    slow = {"mqtt": {"receive_maximum": 20}}
    with (
        collector_process(tmp_path, broker, influx_db, **slow) as collector,
        stand_in(broker) as probe,
    ):
        collector.start()
        probe.wait_pubacks(probe.publish_all(docs(1, N)))
        eventually(lambda: count(influx_db, "latency") > 0, interval_s=0.002, message="nothing yet")
        collector.kill()
        stored = count(influx_db, "latency") + count(influx_db, "dns")
        assert 0 < stored < 2 * N, "the kill came too late to test anything"
        collector.start()
        assert_exactly(influx_db, 1, N)
        eventually(lambda: probe.stored_through() == N, message="StoredAck after the restart")
        assert collector.terminate() == 0
    log = collector.log_since_start()
    assert "session resumed" in log
    assert "stopped: received=" in log


def test_influxdb_down_results_wait_in_the_spool(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    server = influx_db.server
    with collector_process(tmp_path, broker, influx_db) as collector, stand_in(broker) as probe:
        collector.start()
        probe.wait_pubacks(probe.publish_all(docs(1, 100)))
        assert_exactly(influx_db, 1, 100)
        server.kill()
        try:
            probe.wait_pubacks(probe.publish_all(docs(101, N)))
            # Spooled is stored: the probe hears it may delete, InfluxDB still down.
            eventually(lambda: probe.stored_through() == N, timeout_s=30, message="StoredAck")
            assert "spooled" in collector.log_since_start()
        finally:
            server.restart()
        assert_exactly(influx_db, 1, N)
        eventually(lambda: "left" in collector.log_since_start(), message="replay not logged")
        assert collector.terminate() == 0


def test_broker_restarts_lose_nothing(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    with collector_process(tmp_path, broker, influx_db) as collector, stand_in(broker) as probe:
        collector.start()
        # 1. Collector away, results queued for its session, broker restarted (it saves
        #    its state on SIGTERM), collector back: the queue is still there.
        assert collector.terminate() == 0
        probe.wait_pubacks(probe.publish_all(docs(1, 200)))
        broker.restart()
        collector.start()
        assert_exactly(influx_db, 1, 200)
        # 2. Broker restarted while results flow.
        probe.publish_all(docs(201, 350))
        broker.restart()
        mids = probe.publish_all(docs(351, N))
        probe.wait_pubacks(mids, timeout_s=60)
        assert_exactly(influx_db, 1, N)
        eventually(lambda: probe.stored_through() == N, timeout_s=30, message="StoredAck")
        assert collector.terminate() == 0


def test_broker_crash_losing_acked_messages_is_healed_by_resend(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    seqs = {"sequences": {"resend_grace_s": 1.0, "resend_interval_s": 2.0}}
    with collector_process(tmp_path, broker, influx_db, **seqs) as collector, \
            stand_in(broker, answer_resends=True) as probe:  # fmt: skip
        collector.start()
        assert collector.terminate() == 0
        # Mosquitto acknowledges before it writes to disk: a kill -9 now loses these 100
        # (and the collector's whole session with them).
        probe.wait_pubacks(probe.publish_all(docs(1, 100)))
        broker.kill()
        broker.start()
        collector.start()
        probe.wait_pubacks(probe.publish_all(docs(101, 110)))
        # The collector sees 101..110, asks for 1..100, the probe publishes them again.
        assert_exactly(influx_db, 1, 110)
        eventually(lambda: probe.stored_through() == 110, timeout_s=30, message="StoredAck")
        assert probe.resends
        assert probe.resends[0].ranges[0] == (1, 100)
        assert "the broker lost our session" in collector.log_since_start()
        assert collector.terminate() == 0
