"""Zero loss end to end: real `probe-agent run` -> real Mosquitto -> real `probe-collector run`
-> InfluxDB. Every seq the agent ever gave lands exactly once (InfluxDB keys points by
probe, seq and time: a duplicate overwrites itself), whatever happens in between."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import statusfile
from tests.collector.helpers import BROKER_CONF, CollectorProcess, write_config
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually
from tests.runtime.helpers import AgentProcess, write_agent_config

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
