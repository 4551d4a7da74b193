"""The survey kind end to end: a real `probe-agent run` on a mobile link reading a real gpsd
(gpsfake replaying a drive through Ấp 2 of Phú Lâm) and ModemManager on a private D-Bus ->
real Mosquitto -> real `probe-collector run` -> InfluxDB: the points land as measurement
`survey` with their `run_id` and `fix_ok` tags, position, accuracy and the radio tags, and
follow the modem when it falls back from 4G to 3G along the way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import AgentProcess, write_agent_config
from tests.agent.test_radio_e2e import broker, rows, running
from tests.collector.helpers import CollectorProcess, write_config
from tests.harness import InfluxTarget, Mosquitto, eventually
from tests.harness.gpsd import GpsFake, Track
from tests.harness.modemmanager import ModemManagerMock, modemmanager

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
__all__ = ["broker", "modemmanager"]

# A slow drive east through Ấp 2 (X26102-02), 10 m/s, a fix a second.
DRIVE = [(11.285, 107.400 + i * 0.0000916) for i in range(600)]


def test_survey_points_land_with_run_id_fix_ok_and_radio(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget, modemmanager: ModemManagerMock
) -> None:
    modemmanager.add_modem(scene="lte", interface="lo")
    with GpsFake(tmp_path / "gps", Track.walk(DRIVE, speed_mps=10.0).nmea(), cycle_s=0.1) as gps:
        config = write_agent_config(
            tmp_path, broker, probe="survey-01", enabled=("survey",),
            options={"survey": {"gpsd_port": gps.port, "run_id": "phulam-ap2"}},
            radio={"bus": modemmanager.address, "timeout_s": 1.0},
        )  # fmt: skip
        with config.open("a") as handle:
            handle.write('[[interfaces]]\nname = "lo"\naccess = "mobile"\n')
        collector_config, _ = write_config(tmp_path, broker, influx_db)
        collector = CollectorProcess(collector_config, tmp_path / "collector.log")
        agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="1")
        with running(agent, collector):
            collector.start()
            agent.start(wait_for="MQTT connected")
            got: list[dict[str, Any]] = eventually(
                lambda: rows(
                    influx_db,
                    'SELECT "point_n", "lat_deg", "lon_deg", "horizontal_accuracy_m", '
                    '"speed_mps", "fix_mode", "radio_rsrp_dbm", "radio_technology", "run_id" '
                    'FROM "survey" WHERE "fix_ok" = \'true\' AND "run_id" = \'phulam-ap2\'',
                ),
                timeout_s=60,
                message=lambda: f"no good survey point\n{agent.log_since_start()[-2000:]}",
            )
            # Further along, the modem falls back to 3G: the survey points there say so.
            modemmanager.scene("umts")
            eventually(
                lambda: rows(
                    influx_db,
                    'SELECT "radio_rscp_dbm", "lat_deg" FROM "survey" '
                    "WHERE \"radio_technology\" = 'umts' AND \"fix_ok\" = 'true'",
                ),
                timeout_s=30,
                message="no survey point on 3G",
            )
            assert agent.terminate() == 0
            assert collector.terminate() == 0
    first = got[0]
    assert first["fix_mode"] == "3d"
    assert first["lat_deg"] == pytest.approx(11.285, abs=1e-6)
    assert 107.40 <= first["lon_deg"] <= 107.43  # Ấp 2 of Phú Lâm
    assert 0 < first["horizontal_accuracy_m"] <= 50
    assert first["radio_technology"] == "lte"
    assert first["radio_rsrp_dbm"] == -95.0
    assert isinstance(first["point_n"], int)
    assert first["point_n"] >= 1
    tags = {t["tagKey"] for t in rows(influx_db, 'SHOW TAG KEYS FROM "survey"')}
    assert {"run_id", "fix_ok", "radio_technology", "radio_operator", "probe"} <= tags
