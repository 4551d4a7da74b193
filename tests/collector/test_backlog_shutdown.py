"""Shutdown behind a large backlog: the real ``probe-collector run`` exits within 10 s of
SIGTERM, leaves what it has not handled to the broker's session, and a restart stores
everything exactly once (real Mosquitto and InfluxDB)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.collector.helpers import BROKER_CONF, CollectorProcess, count, result, write_config
from tests.collector.test_backlog_presence import PER_RESULT, Publisher
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PROBES = [f"shutdown-{i:02d}" for i in range(20)]
EACH = 1500  # 30,000 results queued
WINDOW = 5000
SHUTDOWN_S = 10.0


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


def test_sigterm_behind_a_backlog_exits_within_10_s_and_nothing_is_lost(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    config, _cfg = write_config(
        tmp_path,
        broker,
        influx_db,
        mqtt={"receive_maximum": WINDOW},
        influxdb={"batch_max_latency_ms": 200},
        log={"level": "INFO"},
    )
    proc = CollectorProcess(config, tmp_path / "collector.log").start()
    assert proc.terminate() == 0  # its session now exists: the backlog queues in it
    publisher = Publisher(broker)
    try:
        publisher.results(
            [result("latency", probe=p, seq=s) for s in range(1, EACH + 1) for p in PROBES]
        )
    finally:
        publisher.close()
    total = PER_RESULT * len(PROBES) * EACH

    proc.start()
    eventually(lambda: count(influx_db, "latency") > 0, timeout_s=30, message="not draining")
    asked = time.monotonic()
    assert proc.terminate(timeout_s=30) == 0
    took_s = time.monotonic() - asked
    stored_then = count(influx_db, "latency")
    log = proc.log_since_start()
    left = [int(n) for n in re.findall(r"(\d+) left to the broker's session", log)]
    held = [int(n) for n in re.findall(r"held at most (\d+)", log)]
    print(
        f"SIGTERM with {total - stored_then} of {total} points to go: exited in {took_s:.2f} s, "
        f"{left[-1]} messages left to the broker's session, held at most {held[-1]} "
        f"(window {WINDOW})"
    )
    assert took_s < SHUTDOWN_S
    assert stored_then < total, "the backlog drained before SIGTERM: make it larger"
    assert left[-1] > 0
    assert held[-1] <= WINDOW

    proc.start()
    try:
        eventually(lambda: count(influx_db, "latency") >= total, timeout_s=180,
                   message="not everything stored after the restart")  # fmt: skip
        # Exactly once: a redelivered result overwrites its own points, adds none.
        assert count(influx_db, "latency") == total
        seqs = influx_db.server.query(
            'SELECT count(distinct("seq")) FROM "latency" GROUP BY "probe"', db=influx_db.db
        )
        assert {s["tags"]["probe"]: s["values"][0][1] for s in seqs} == dict.fromkeys(PROBES, EACH)
    finally:
        assert proc.terminate() == 0
    assert "Traceback" not in proc.log_since_start()
