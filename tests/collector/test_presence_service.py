"""Presence and self-metrics end to end: a probe's status and Last Will through real
Mosquitto, the collector in-process, points in real InfluxDB, `probe-collector fleet`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TypedDict

import pytest

from tests.collector.helpers import ROOT, AgentSession, result, write_config
from tests.collector.test_service import broker, collector  # noqa: F401 - fixtures
from tests.harness import InfluxTarget, Mosquitto, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PROBE = "dongnai-tanphu-01"


class Sections(TypedDict):
    """Config sections for write_config's keyword arguments."""

    metrics: dict[str, float]
    presence: dict[str, float]


FAST: Sections = {"metrics": {"interval_s": 1.0}, "presence": {"offline_after_s": 60.0}}


def _last(target: InfluxTarget, query: str) -> dict[str, object]:
    series = target.server.query(query, db=target.db)
    if not series:
        return {}
    cols, values = series[0]["columns"], series[0]["values"]
    return dict(zip(cols, values[-1], strict=True))


def test_status_last_will_and_results_make_presence_and_it_survives_a_restart(
    tmp_path: Path,
    broker: Mosquitto,  # noqa: F811
    influx_db: InfluxTarget,
) -> None:
    with collector(tmp_path, broker, influx_db, **FAST) as service:
        agent = AgentSession(broker, PROBE)
        agent.publish(result("health", probe=PROBE, seq=1, interface=None))
        agent.publish(result("latency", probe=PROBE, seq=2))

        def state() -> str:
            return {r.probe: r.state for r in service.fleet(time.time())}[PROBE]

        eventually(lambda: state() == "online", message="online")
        rows = {r.probe: r for r in service.fleet(time.time())}
        assert rows[PROBE].line_up is True
        assert rows[PROBE].last_test_ok is True
        assert rows["dongnai-bienhoa-01"].state == "never seen"
        agent.die()
        eventually(lambda: state() == "offline", timeout_s=20, message="Last Will not seen")
        query = f"SELECT state, online_01 FROM presence WHERE probe = '{PROBE}'"  # noqa: S608
        eventually(
            lambda: _last(influx_db, query).get("state") == "offline",
            timeout_s=20,
            message="presence point",
        )
        eventually(
            lambda: _last(influx_db, 'SELECT sum("stored") FROM "collector"').get("sum") == 4,
            timeout_s=20,
            message="self-metrics: 2 results + 2 statuses stored",
        )
        own = _last(influx_db, 'SELECT * FROM "collector"')
        assert own["collector"] == "collector-test"
        assert isinstance(own["queue_depth"], int)
    # A new collector on the same state remembers, and so does the fleet command.
    config, _cfg = write_config(tmp_path, broker, influx_db, **FAST)
    proc = subprocess.run(
        [sys.executable, "-m", "probefleet.collector.cli", "fleet", "--config", str(config),
         "--format", "json"],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    by = {d["probe"]: d for d in json.loads(proc.stdout)}
    assert by[PROBE]["state"] == "offline"
    assert by[PROBE]["reason"] == "connection lost"
    assert by[PROBE]["line_up"] is True
    assert by["dongnai-bienhoa-01"]["state"] == "never seen"
    table = subprocess.run(
        [sys.executable, "-m", "probefleet.collector.cli", "fleet", "--config", str(config)],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
    ).stdout  # fmt: skip
    assert "0 of 2 probes online" in table
