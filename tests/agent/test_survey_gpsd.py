"""The survey kind against a real gpsd fed by gpsfake: a walk through Ấp 2 (Phú Lâm, X26102)
and Khu phố 3 (Tân Phú, X26101) of config/areas/dongnai.sample.geojson, with a stretch
without fix between them. Points with a fix carry the position, accuracy and speed; points
without are kept and flagged; run id and point_n count as the run goes."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest
from probefleet.kinds.base import Link
from probefleet.kinds.survey.measure import Survey, SurveyConfig
from probefleet.kinds.survey.payload import SurveyData

from tests.harness import eventually
from tests.harness.gpsd import BareGpsd, GpsFake, Track
from tests.harness.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SPEED_MPS = 10.0
STEP_DEG = SPEED_MPS / 109_200  # one second of driving east at 11.28 N, in longitude
AP2 = [(11.285, 107.405 + i * STEP_DEG) for i in range(30)]  # Ấp 2, Phú Lâm
KP3 = [(11.285, 107.470 + i * STEP_DEG) for i in range(30)]  # Khu phố 3, Tân Phú
NO_FIX = range(30, 50)  # 20 s under trees between them


def test_a_walk_through_two_hamlets_with_a_stretch_without_fix(tmp_path: Path) -> None:
    track = Track.walk(AP2 + [(0.0, 0.0)] * len(NO_FIX) + KP3, no_fix=NO_FIX, speed_mps=SPEED_MPS)
    with GpsFake(tmp_path / "gps", track.nmea(), cycle_s=0.05) as gps:  # 3 sentences: 0.15 s/s
        survey = Survey(
            msgspec.convert(
                {"enabled": True, "gpsd_port": gps.port, "stale_s": 2.0, "max_accuracy_m": 50.0},
                SurveyConfig,
            )
        )
        survey.bind(probe_id="survey-01", state_dir=tmp_path, previous=None)
        points: list[SurveyData] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            points.append(survey.run(Link("lo", "mobile")))
            if len([p for p in points if p.fix_ok and (p.lon_deg or 0) > 107.47]) >= 5:
                break
            time.sleep(0.1)
        survey.ending()
        last = survey.run(Link("lo", "mobile"))
        survey.close()
    points.append(last)
    assert [p.point_n for p in points] == list(range(1, len(points) + 1))
    assert {p.run_id for p in points} == {points[0].run_id}
    assert points[0].run_id.endswith("-survey-01-1")
    assert [p.last for p in points] == [False] * (len(points) - 1) + [True]
    good = [p for p in points if p.fix_ok]
    in_ap2 = [p for p in good if p.lon_deg is not None and p.lon_deg < 107.43]
    in_kp3 = [p for p in good if p.lon_deg is not None and p.lon_deg > 107.452]
    assert in_ap2, "no good fix in Ấp 2"
    assert in_kp3, "no good fix in Khu phố 3"
    for p in good:
        assert p.fix_mode == "3d"
        assert p.lat_deg == pytest.approx(11.285, abs=1e-6)
        assert p.horizontal_accuracy_m is not None
        assert 0 < p.horizontal_accuracy_m <= 50.0
    # gpsd dates a fix from RMC: the first report after a GGA alone may have no time yet.
    timed = [p.gps_time for p in good if p.gps_time is not None]
    assert len(timed) >= len(good) // 2
    assert all(t.date().isoformat() == "2026-12-03" for t in timed)
    speeds = [p.speed_mps for p in good if p.speed_mps is not None]
    assert speeds
    assert sorted(speeds)[len(speeds) // 2] == pytest.approx(SPEED_MPS, rel=0.05)
    # The stretch without fix, between the two hamlets: kept, flagged, no position.
    first_kp3 = points.index(in_kp3[0])
    lost = [p for p in points[points.index(in_ap2[-1]) : first_kp3] if not p.fix_ok]
    assert lost, "no point without fix between the hamlets"
    for p in lost:
        assert (p.fix_mode, p.lat_deg, p.lon_deg) == ("none", None, None)
        assert p.fix_reason
        assert "no fix" in p.fix_reason or "stale" in p.fix_reason


def _survey(port: int, tmp_path: Path) -> Survey:
    survey = Survey(
        msgspec.convert({"enabled": True, "gpsd_port": port, "timeout_s": 1.0}, SurveyConfig)
    )
    survey.bind(probe_id="survey-01", state_dir=tmp_path, previous=None)
    return survey


def _point_saying(survey: Survey, why: str) -> SurveyData | None:
    point = survey.run(Link("lo", "mobile"))
    return point if why in (point.fix_reason or "") else None


def test_gpsd_without_a_receiver_gives_points_that_say_so(tmp_path: Path) -> None:
    with BareGpsd(tmp_path / "gpsd") as gpsd:
        survey = _survey(gpsd.port, tmp_path)
        survey.run(Link("lo", "mobile"))  # starts watching
        point = eventually(
            lambda: _point_saying(survey, "no GPS device"), timeout_s=10, message="no reason"
        )
        survey.close()
    assert point is not None
    assert (point.fix_ok, point.fix_mode, point.lat_deg) == (False, "none", None)
    assert point.point_n >= 2


def test_no_gpsd_gives_points_that_say_so(tmp_path: Path) -> None:
    survey = _survey(free_port(), tmp_path)
    survey.run(Link("lo", "mobile"))
    point = eventually(
        lambda: _point_saying(survey, "cannot connect"), timeout_s=10, message="no reason"
    )
    survey.close()
    assert point is not None
    assert (point.fix_ok, point.lat_deg) == (False, None)
