"""The runner and the survey kind, against a real gpsd (gpsfake) and ModemManager on a
private D-Bus (python-dbusmock): survey points on a mobile link carry the radio context like
every result there, a new config keeps the run going, and stopping cleanly
(Runner.finish) gives the run its last point."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from probefleet import kinds
from probefleet.agent.budget import Budget
from probefleet.agent.clock import ClockWatch
from probefleet.agent.config import AgentConfig
from probefleet.agent.runner import Runner
from probefleet.agent.spool import Spool
from probefleet.core import configkit, wire
from probefleet.kinds import Link
from probefleet.kinds.survey.payload import SurveyResult

from tests.harness import eventually
from tests.harness.gpsd import GpsFake, Track
from tests.harness.modemmanager import ModemManagerMock, modemmanager

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
__all__ = ["modemmanager"]

BOOT = "5967a284-5a74-4aee-a62b-9cb68f34bf08"
WWAN0 = Link("wwan0", "mobile")
AP2 = [(11.285, 107.405 + i * 0.0001) for i in range(200)]  # Ấp 2, Phú Lâm (X26102-02)


def config(tmp_path: Path, bus: str, port: int, **survey: Any) -> AgentConfig:
    return configkit.build(
        {
            "probe": {"id": "survey-01", "state_dir": str(tmp_path)},
            "interfaces": [{"name": "wwan0", "access": "mobile"}],
            "gate": {"enabled": False},
            "radio": {"bus": bus, "timeout_s": 1.0},
            "measurements": {"survey": {"enabled": True, "gpsd_port": port, **survey}},
        },
        AgentConfig,
    )


def points(r: Runner) -> list[SurveyResult]:
    got = [wire.decode_result(row.payload) for row in r.spool.after(0, limit=100)]
    return [p for p in got if isinstance(p, SurveyResult)]


def test_survey_points_carry_the_radio_context_and_a_clean_stop_ends_the_run(
    tmp_path: Path, modemmanager: ModemManagerMock
) -> None:
    modemmanager.add_modem(scene="lte", interface="wwan0")
    track = Track.walk(AP2, speed_mps=10.0)
    with GpsFake(tmp_path / "gps", track.nmea(), cycle_s=0.05) as gps:
        cfg = config(tmp_path, modemmanager.address, gps.port)
        runner = Runner(
            cfg, spool=Spool(tmp_path, max_bytes=10**6), budget=Budget(tmp_path, {}),
            boot_id=BOOT, clock=ClockWatch(), stop=threading.Event(),
            registry=kinds.measurements(),
        )  # fmt: skip
        runner.run("survey", WWAN0)
        eventually(
            lambda: runner.run("survey", WWAN0) and points(runner)[-1].data.fix_ok,  # type: ignore[union-attr]
            timeout_s=20, message=lambda: f"no good fix: {points(runner)[-1]}",
        )  # fmt: skip
        # A new config (a remote one) with the same run_id: the run goes on.
        runner.configure(config(tmp_path, modemmanager.address, gps.port, max_accuracy_m=60.0))
        runner.run("survey", WWAN0)
        assert runner.finish() == 1
    got = points(runner)
    data = [p.data for p in got if p.data is not None]
    assert len(data) == len(got) >= 4
    assert [d.point_n for d in data] == list(range(1, len(data) + 1))
    assert {d.run_id for d in data} == {f"{data[0].run_started_at:%Y%m%d}-survey-01-1"}
    assert [d.last for d in data] == [False] * (len(data) - 1) + [True]
    good = [d for d in data if d.fix_ok]
    assert good
    assert good[0].lat_deg == pytest.approx(11.285, abs=1e-6)
    for point in got:
        assert point.radio is not None, "a survey point on a mobile link without radio context"
        assert point.radio.start.technology == "lte"
        assert point.radio.start.operator_code == "45204"
        assert point.radio.end is None  # not a bandwidth test: one snapshot
    # Stopped: no run goes on, nothing more to finish.
    assert runner.finish() == 0
