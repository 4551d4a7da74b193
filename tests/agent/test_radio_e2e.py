"""The radio context end to end: a real `probe-agent run` on a mobile link, reading a
ModemManager on a private D-Bus (python-dbusmock) -> real Mosquitto -> real `probe-collector
run` -> InfluxDB. A mobile throughput result lands with its technology, operator and RSRP,
the radio kind lands as measurement `radio`; without a bus the results land as before and
the agent says why radio is absent."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import AgentProcess, write_agent_config
from tests.collector.helpers import BROKER_CONF, CollectorProcess, write_config
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually
from tests.harness.modemmanager import ModemManagerMock, modemmanager

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
__all__ = ["modemmanager"]


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


@contextlib.contextmanager
def running(*procs: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()


def agent_on_mobile_lo(tmp_path: Path, broker: Mosquitto, bus: str) -> AgentProcess:
    """The stand-in throughput (no traffic) and the radio kind, every second, on `lo`
    declared a mobile link."""
    config = write_agent_config(
        tmp_path, broker, enabled=("throughput", "radio"), radio={"bus": bus, "timeout_s": 1.0}
    )
    with config.open("a") as handle:
        handle.write('[[interfaces]]\nname = "lo"\naccess = "mobile"\n')
    return AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="1")


def rows(target: InfluxTarget, query: str) -> list[dict[str, Any]]:
    series = target.server.query(query, db=target.db)
    return [dict(zip(s["columns"], v, strict=True)) for s in series for v in s["values"]]


def test_a_mobile_result_lands_with_its_radio_context(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget, modemmanager: ModemManagerMock
) -> None:
    modemmanager.add_modem(scene="lte", interface="lo")
    config, _ = write_config(tmp_path, broker, influx_db)
    collector = CollectorProcess(config, tmp_path / "collector.log")
    agent = agent_on_mobile_lo(tmp_path, broker, modemmanager.address)
    with running(agent, collector):
        collector.start()
        agent.start(wait_for="MQTT connected")
        throughput = eventually(
            lambda: rows(
                influx_db,
                'SELECT "download_mbps", "radio_rsrp_dbm", "radio_end_technology", '
                '"radio_technology", "radio_operator" FROM "throughput" '
                "WHERE \"radio_technology\" = 'lte' AND \"radio_operator\" = '45204'",
            ),
            timeout_s=60,
            message=lambda: f"no mobile throughput with radio\n{agent.log_since_start()[-2000:]}",
        )
        first = throughput[0]
        assert first["download_mbps"] == 42.0  # the stand-in's
        assert first["radio_rsrp_dbm"] == -95.0
        assert first["radio_end_technology"] == "lte"
        radio = eventually(
            lambda: rows(
                influx_db,
                'SELECT "radio_rsrp_dbm", "registered", "modem_model", "radio_band", '
                '"radio_technology" FROM "radio" WHERE "status" = \'ok\'',
            ),
            timeout_s=60,
            message="no radio point",
        )
        assert radio[0]["radio_rsrp_dbm"] == -95.0
        assert radio[0]["registered"] is True
        assert (radio[0]["modem_model"], radio[0]["radio_band"]) == ("EC25", "eutran-3")
        assert radio[0]["radio_technology"] == "lte"
        # The modem falls back to 3G: the following results say so.
        modemmanager.scene("umts")
        eventually(
            lambda: rows(
                influx_db,
                'SELECT "radio_rscp_dbm" FROM "radio" WHERE "radio_technology" = \'umts\'',
            ),
            timeout_s=30,
            message="no 3G point",
        )
        assert agent.terminate() == 0
        assert collector.terminate() == 0


def test_without_a_bus_results_land_as_before_and_the_agent_says_why(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    config, _ = write_config(tmp_path, broker, influx_db)
    collector = CollectorProcess(config, tmp_path / "collector.log")
    agent = agent_on_mobile_lo(tmp_path, broker, f"unix:path={tmp_path}/no-bus-here")
    with running(agent, collector):
        collector.start()
        agent.start(wait_for="MQTT connected")
        eventually(
            lambda: rows(influx_db, 'SELECT "download_mbps" FROM "throughput"'),
            timeout_s=60,
            message="no throughput",
        )
        skipped = eventually(
            lambda: rows(influx_db, 'SELECT "reason" FROM "radio" WHERE "status" = \'skipped\''),
            timeout_s=60,
            message="no skipped radio point",
        )
        assert "cannot connect to the D-Bus" in skipped[0]["reason"]
        tags = rows(influx_db, 'SHOW TAG KEYS FROM "throughput"')
        assert "radio_technology" not in {t["tagKey"] for t in tags}
        fields = rows(influx_db, 'SHOW FIELD KEYS FROM "throughput"')
        assert not [f for f in fields if f["fieldKey"].startswith("radio_")]
        assert agent.terminate() == 0
        assert collector.terminate() == 0
    status = json.loads((tmp_path / "agent-state" / "status.json").read_text())
    assert "cannot connect to the D-Bus" in status["radio"]["interfaces"]["lo"]
    assert "no radio context on lo: ModemManager could not be read" in agent.log_since_start()
