"""Zero loss end to end: real `probe-agent run` -> real Mosquitto -> real `probe-collector run`
-> InfluxDB. Every seq the agent ever gave lands exactly once (InfluxDB keys points by
probe, seq and time: a duplicate overwrites itself), whatever happens in between."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from probefleet.agent import statusfile

from tests.agent.helpers import AgentProcess, write_agent_config
from tests.collector.helpers import BROKER_CONF, CollectorProcess, write_config
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF, start=False)


@contextlib.contextmanager
def running(*procs: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()


def collector_for(tmp_path: Path, broker: Mosquitto, target: InfluxTarget) -> CollectorProcess:
    config, _ = write_config(tmp_path, broker, target)
    return CollectorProcess(config, tmp_path / "collector.log")


def stored_seqs(target: InfluxTarget) -> list[int]:
    """Every seq in the database, one per point (any measurement)."""
    series = target.server.query('SELECT "seq" FROM /.*/', db=target.db)
    return sorted(int(row[1]) for s in series for row in s["values"])


def spooled(state_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(state_dir / "spool.db")) as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def given(state_dir: Path) -> int:
    """How many seqs the agent gave out (it wrote status.json when it stopped)."""
    return int(statusfile.read(state_dir)["spool"]["next_seq"]) - 1


def assert_all_stored(target: InfluxTarget, n: int, state_dir: Path) -> None:
    """Seqs 1..n each stored exactly once (stand-in latency: one point per result) and
    the agent's spool emptied by StoredAcks."""
    eventually(
        lambda: stored_seqs(target) == list(range(1, n + 1)),
        timeout_s=90,
        message=f"want seqs 1..{n} once each",
    )
    eventually(lambda: spooled(state_dir) == 0, timeout_s=60, message="spool not emptied")


def test_broker_down_at_start_then_everything_arrives_once(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    state = tmp_path / "agent-state"
    config = write_agent_config(tmp_path, broker)
    agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="0.2")
    collector = collector_for(tmp_path, broker, influx_db)
    with running(agent, collector):
        agent.start()
        eventually(lambda: spooled(state) >= 15, timeout_s=30, message="nothing spooled")
        assert "MQTT connected" not in agent.log_since_start()
        broker.start()
        collector.start()
        eventually(
            lambda: "MQTT connected" in agent.log_since_start(), timeout_s=30,
            message="agent did not reconnect",
        )  # fmt: skip
        eventually(lambda: len(stored_seqs(influx_db)) >= 30, timeout_s=60, message="no flow")
        assert agent.terminate() == 0
        n = given(state)
        # Drain what the stopped agent left, with nothing measuring any more.
        write_agent_config(tmp_path, broker, enabled=())
        agent.start(wait_for="MQTT connected")
        assert_all_stored(influx_db, n, state)
        assert agent.terminate() == 0
        assert collector.terminate() == 0
    status = json.loads((state / "status.json").read_text())
    assert status["state"] == "stopped"
    assert status["spool"]["dropped"] == 0


def test_agent_killed_mid_publish_loses_nothing(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    state = tmp_path / "agent-state"
    config = write_agent_config(tmp_path, broker)
    agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="0.05")
    collector = collector_for(tmp_path, broker, influx_db)
    with running(agent, collector):
        broker.start()
        collector.start()
        agent.start(wait_for="MQTT connected")
        eventually(lambda: len(stored_seqs(influx_db)) >= 20, timeout_s=60, message="no flow")
        # StoredAcks (QoS 0) arrive within milliseconds: hold the collector so that results
        # pile up unconfirmed, then kill the agent among them.
        assert collector.proc is not None
        collector.proc.send_signal(signal.SIGSTOP)

        def unconfirmed() -> int:
            with contextlib.closing(sqlite3.connect(state / "spool.db")) as db:
                return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])

        eventually(lambda: unconfirmed() >= 5, timeout_s=30, message="nothing unconfirmed")
        agent.kill()  # results in the spool, some in flight, some PUBACKed, not yet confirmed
        collector.proc.send_signal(signal.SIGCONT)
        # kill -9 wrote no status.json at the end: the spool itself says what was given.
        with contextlib.closing(sqlite3.connect(state / "spool.db")) as db:
            n = int(db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0]) - 1
            left = int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        assert left > 0, "the kill came too late to test anything"
        write_agent_config(tmp_path, broker, enabled=())
        agent.start(wait_for="MQTT connected")
        assert_all_stored(influx_db, n, state)
        assert agent.terminate() == 0
        assert collector.terminate() == 0


def test_broker_crash_after_puback_is_healed_from_the_spool(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    state = tmp_path / "agent-state"
    config = write_agent_config(tmp_path, broker, spool={"retry_s": 1.0, "ack_timeout_s": 5.0})
    agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="0.2")
    collector = collector_for(tmp_path, broker, influx_db)
    with running(agent, collector):
        broker.start()
        collector.start()
        assert collector.terminate() == 0  # its session now queues results at the broker
        agent.start(wait_for="MQTT connected")
        # PUBACKed (0x00: the collector's session subscribes) but only in the broker's memory.
        eventually(
            lambda: statusfile.read(state)["mqtt"]["unconfirmed"] >= 15, timeout_s=30,
            message="nothing PUBACKed",
        )  # fmt: skip
        broker.kill()  # Mosquitto saves its state every 30 min: the queue is gone
        broker.start()
        collector.start()
        eventually(lambda: len(stored_seqs(influx_db)) >= 30, timeout_s=60, message="no flow")
        assert agent.terminate() == 0
        n = given(state)
        write_agent_config(tmp_path, broker, enabled=())
        agent.start(wait_for="MQTT connected")
        assert_all_stored(influx_db, n, state)
        assert agent.terminate() == 0
        assert collector.terminate() == 0
    log = (tmp_path / "agent.log").read_text()
    # Healed by the collector's resend requests and/or the agent's own ack timeout.
    assert "resend request" in log or "not confirmed by the collector" in log


def fill_week(state: Path, n: int, probe: str = "probe-a") -> None:
    """``n`` results spread over the past week in the agent's spool, as the agent writes
    them (built and encoded by the agent's own code), in one transaction for speed. Their
    boot is this machine's, as an agent started now says (a new life on the same boot)."""
    import datetime as dt

    from probefleet.agent import clock, results
    from probefleet.agent.spool import Spool
    from probefleet.core import wire
    from probefleet.kinds.base import DEFAULT_LINK

    from tests.agent.standins import FastLatency

    Spool(state, max_bytes=10**9).close()  # creates the schema
    start = wire.utc_now() - dt.timedelta(days=7)
    step = dt.timedelta(days=7) / n
    data = FastLatency(None).run(DEFAULT_LINK)  # type: ignore[arg-type]
    topic = wire.Topics().result(probe, "latency")
    rows = []
    for seq in range(1, n + 1):
        when = start + seq * step
        result = results.build(
            kind="latency", outcome=data, probe_id=probe,
            boot_id=clock.boot_id(), seq=seq, measured_at=when,
            clock=wire.Clock(synced=True, uptime_s=float(seq) * 121, since_sync_s=1.0),
            link=DEFAULT_LINK,
        )  # fmt: skip
        rows.append((seq, "latency", topic, wire.encode(result), when.timestamp()))
    with contextlib.closing(sqlite3.connect(state / "spool.db")) as db, db:
        db.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("INSERT INTO meta VALUES ('next_seq', ?)", (n + 1,))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_week_of_backlog_drains_oldest_first_with_bounded_memory(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    n = 5000
    state = tmp_path / "agent-state"
    fill_week(state, n)
    config = write_agent_config(tmp_path, broker, enabled=())
    agent = AgentProcess(config, tmp_path / "agent.log")
    collector = collector_for(tmp_path, broker, influx_db)
    arrivals: list[int] = []
    lock = threading.Lock()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            arrivals.append(json.loads(msg.payload)["seq"])

    watcher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = on_message
    with running(agent, collector):
        broker.start()
        collector.start()
        watcher.connect(broker.host, broker.port)
        watcher.subscribe("probefleet/v1/+/results/+", qos=1)
        watcher.loop_start()
        try:
            agent.start(wait_for="MQTT connected")
            assert agent.proc is not None
            peak = 0.0
            while spooled(state) and agent.alive():
                peak = max(peak, rss_mb(agent.proc.pid))
                time.sleep(0.05)
            assert_all_stored(influx_db, n, state)
            assert agent.terminate() == 0
            assert collector.terminate() == 0
        finally:
            watcher.loop_stop()
            watcher.disconnect()
    with lock:
        firsts = list(dict.fromkeys(arrivals))  # first arrival of each seq, in order
    assert firsts == list(range(1, n + 1)), "not drained oldest first"
    # The spool streams from disk in windows: memory does not grow with the backlog.
    assert peak < 150, f"agent RSS peaked at {peak:.0f} MB while draining {n} results"


def test_a_wiped_state_dir_renumbers_above_the_previous_life_and_loses_nothing(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    """The collector stored seqs 1..N of probe-a; the probe's state dir is wiped (same boot,
    same probe id) and its new spool starts again at seq 1; one batch of the new life is lost
    by a broker crash after its PUBACK. Every result of both lives ends up in InfluxDB once,
    the new life's renumbered above N, and the new spool empties."""
    n_old = 200
    first = tmp_path / "first-life"
    first.mkdir()
    fill_week(first / "agent-state", n_old)
    old_config = write_agent_config(first, broker, enabled=())
    old_agent = AgentProcess(old_config, first / "agent.log")
    second = tmp_path / "second-life"
    second.mkdir()
    state = second / "agent-state"  # fresh: nothing of the first life
    config = write_agent_config(second, broker, spool={"retry_s": 1.0, "ack_timeout_s": 5.0})
    agent = AgentProcess(config, second / "agent.log", STANDIN_INTERVAL_S="0.2")
    collector = collector_for(tmp_path, broker, influx_db)
    with running(old_agent, agent, collector):
        broker.start()
        collector.start()
        old_agent.start(wait_for="MQTT connected")
        assert_all_stored(influx_db, n_old, first / "agent-state")
        assert old_agent.terminate() == 0
        assert collector.terminate() == 0  # its session now queues results at the broker
        agent.start(wait_for="MQTT connected")
        eventually(
            lambda: statusfile.read(state)["mqtt"]["unconfirmed"] >= 5, timeout_s=30,
            message="nothing PUBACKed",
        )  # fmt: skip
        broker.kill()  # the PUBACKed results die with the broker's memory
        broker.start()
        collector.start()
        eventually(
            lambda: len(stored_seqs(influx_db)) >= n_old + 20, timeout_s=60, message="no flow"
        )
        assert agent.terminate() == 0
        n = given(state)
        write_agent_config(second, broker, enabled=())
        agent.start(wait_for="MQTT connected")
        # Seqs 1..n_old of the first life and n_old+1..n of the second, each once: the new
        # life's first results were stored under seqs 1.. too, then overwritten in place
        # (same tags and time) by their renumbered selves.
        assert_all_stored(influx_db, n, state)
        assert agent.terminate() == 0
        assert collector.terminate() == 0
    status = statusfile.read(state)
    assert status["spool"]["renumbered"] >= 5
    assert status["spool"]["next_seq"] == n + 1 > n_old + 20
    assert f"RENUMBERED {status['spool']['renumbered']} results" in statusfile.render(status)[0]
    log = (second / "agent.log").read_text()
    assert "from this probe's previous life" in log
    assert "Traceback" not in log
