"""The survey kind at its seams: TPV reports to fixes, the payload's rules, run ids and
points, and the reader against a gpsd stand-in on a loopback socket (the real gpsd, fed by
gpsfake: tests/agent/test_survey_gpsd.py)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from probefleet import kinds
from probefleet.core import wire
from probefleet.kinds.base import Link
from probefleet.kinds.survey.measure import Survey, SurveyConfig
from probefleet.kinds.survey.payload import SurveyData
from probefleet.kinds.survey.reader import Fix, GpsReader, NoFix, fix_from_tpv
from probefleet.kinds.survey.run import FILE, start_run

from tests.harness import eventually

NOW = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
TPV = {"class": "TPV", "mode": 3, "lat": 11.285, "lon": 107.4, "eph": 4.5, "speed": 8.2,
       "time": "2026-12-03T08:00:01.000Z"}  # fmt: skip
WWAN0 = Link("wwan0", "mobile")


def test_a_3d_report_maps_to_a_fix() -> None:
    got = fix_from_tpv(TPV)
    assert got == Fix(
        "3d", 11.285, 107.4, 4.5, 8.2, dt.datetime(2026, 12, 3, 8, 0, 1, tzinfo=dt.UTC)
    )


def test_accuracy_from_epx_epy_without_eph_and_bad_figures_left_out() -> None:
    got = fix_from_tpv({**TPV, "eph": None, "epx": 3.0, "epy": 4.0, "speed": -1, "time": "x"})
    assert isinstance(got, Fix)
    assert (got.horizontal_accuracy_m, got.speed_mps, got.gps_time) == (5.0, None, None)


@pytest.mark.parametrize(
    ("report", "why"),
    [
        ({**TPV, "mode": 1}, "no fix (gpsd mode 1)"),
        ({**TPV, "mode": True}, "no fix"),
        ({"class": "TPV"}, "no fix (gpsd mode None)"),
        ({**TPV, "lat": 91.0}, "without a valid position"),
        ({**TPV, "lon": float("nan")}, "without a valid position"),
    ],
)
def test_no_fix_says_why(report: dict[str, object], why: str) -> None:
    got = fix_from_tpv(report)
    assert isinstance(got, NoFix)
    assert why in got.reason


def _data(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"run_id": "r-1", "run_started_at": "2026-12-03T08:00:00Z",
                               "point_n": 1, "fix_mode": "3d", "fix_ok": True,
                               "lat_deg": 11.0, "lon_deg": 107.0}  # fmt: skip
    return {**base, **over}


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"run_id": "a b"}, "run_id"),
        ({"point_n": 0}, "point_n"),
        ({"lat_deg": 90.5}, "lat_deg"),
        ({"fix_mode": "4d"}, "fix_mode"),
        ({"gps_time": "2026-12-03T08:00:00+07:00"}, "must be in UTC"),
        ({"run_started_at": "2026-12-03T09:00:00+01:00"}, "must be in UTC"),
    ],
)
def test_the_payload_refuses_what_cannot_be(over: dict[str, object], why: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=why):
        msgspec.json.decode(json.dumps(_data(**over)), type=SurveyData)


def test_run_ids_count_up_per_day_and_a_configured_one_never_repeats(tmp_path: Path) -> None:
    ids = [start_run(configured="", probe_id="p-1", state_dir=tmp_path, now=NOW).run_id
           for _ in range(2)]  # fmt: skip
    assert ids == ["20261203-p-1-1", "20261203-p-1-2"]
    named = [start_run(configured="phulam-a", probe_id="p-1", state_dir=tmp_path, now=NOW).run_id
             for _ in range(2)]  # fmt: skip
    assert named == ["phulam-a", "phulam-a.2"]
    assert json.loads((tmp_path / FILE).read_text()) == {"20261203-p-1": 2, "phulam-a": 2}
    (tmp_path / FILE).write_text("not json")  # a broken file: ids start again, no crash
    assert start_run(configured="", probe_id="p-1", state_dir=tmp_path, now=NOW).run_id.endswith(
        "-1"
    )


class _Reader:
    def __init__(self, got: Fix | NoFix) -> None:
        self.got = got

    def fix(self) -> Fix | NoFix:
        return self.got


def _survey(tmp_path: Path, got: Fix | NoFix, **config: object) -> Survey:
    survey = Survey(msgspec.convert({"enabled": True, **config}, SurveyConfig))
    survey.bind(probe_id="p-1", state_dir=tmp_path, previous=None)
    survey._reader = _Reader(got)  # type: ignore[assignment]  # the seam
    return survey


def test_points_count_up_poor_fixes_are_kept_flagged_and_the_last_one_ends_the_run(
    tmp_path: Path,
) -> None:
    fix = fix_from_tpv(TPV)
    assert isinstance(fix, Fix)
    survey = _survey(tmp_path, fix, max_accuracy_m=4.0)
    first = survey.run(WWAN0)
    assert (first.point_n, first.fix_ok, first.lat_deg) == (1, False, 11.285)
    assert first.fix_reason == "accuracy 4 m is worse than max_accuracy_m = 4"
    survey.config = msgspec.structs.replace(survey.config, max_accuracy_m=10.0)
    second = survey.run(WWAN0)
    assert (second.point_n, second.fix_ok, second.fix_reason, second.last) == (2, True, None, False)
    survey._reader = _Reader(NoFix("the GPS has no fix (gpsd mode 1)"))  # type: ignore[assignment]
    third = survey.run(WWAN0)
    assert (third.point_n, third.fix_mode, third.lat_deg, third.fix_ok) == (3, "none", None, False)
    assert survey.ending() == ["wwan0"]
    last = survey.run(WWAN0)
    assert (last.point_n, last.last, last.run_id) == (4, True, first.run_id)
    again = survey.run(WWAN0)  # after the last point: a new run
    day = first.run_id.split("-")[0]  # the day the run started (UTC): today's
    assert day == wire.utc_now().strftime("%Y%m%d")
    assert (again.point_n, again.run_id) == (1, f"{day}-p-1-2")
    assert first.run_id == f"{day}-p-1-1"


def test_a_new_config_keeps_the_run_unless_its_run_id_changed(tmp_path: Path) -> None:
    old = _survey(tmp_path, NoFix("x"))
    old.run(WWAN0)
    same = Survey(old.config)
    same.bind(probe_id="p-1", state_dir=tmp_path, previous=old)
    assert same.run(WWAN0).point_n == 2
    renamed = Survey(msgspec.structs.replace(old.config, run_id="kp3"))
    renamed.bind(probe_id="p-1", state_dir=tmp_path, previous=same)
    renamed._reader = _Reader(NoFix("x"))  # type: ignore[assignment]
    got = renamed.run(WWAN0)
    assert (got.run_id, got.point_n) == ("kp3", 1)


@pytest.fixture
def gpsd_standin() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback socket that speaks like gpsd: the lines in the list, then silence."""
    lines: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(100)  # the WATCH
            for line in lines:
                conn.sendall(line)
            conn.recv(100)  # until the reader closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], lines
    server.close()
    thread.join(timeout=5)


def test_the_reader_keeps_the_newest_fix_and_says_when_it_goes_stale(
    gpsd_standin: tuple[int, list[bytes]],
) -> None:
    port, lines = gpsd_standin
    lines += [b'{"class":"VERSION"}\n', json.dumps({**TPV, "lat": 11.0}).encode() + b"\n",
              json.dumps(TPV).encode() + b"\n"]  # fmt: skip
    reader = GpsReader("127.0.0.1", port, stale_s=0.3, timeout_s=5.0)
    assert isinstance(reader.fix(), Fix)  # the first call waits for gpsd's first word
    got = eventually(lambda: _when(reader, lambda f: isinstance(f, Fix) and f.lat_deg == 11.285),
                     timeout_s=5, message="no fix")  # fmt: skip
    assert isinstance(got, Fix)
    assert got.horizontal_accuracy_m == 4.5
    stale = eventually(lambda: _when(reader, lambda f: isinstance(f, NoFix)), timeout_s=5,
                       message="never stale")  # fmt: skip
    assert isinstance(stale, NoFix)
    assert "stale after 0.3 s" in stale.reason
    reader.close()


def _when(reader: GpsReader, ok: Callable[[Fix | NoFix], bool]) -> Fix | NoFix | None:
    got = reader.fix()
    return got if ok(got) else None


def test_no_gpsd_is_a_reason_never_an_exception() -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
    reader = GpsReader("127.0.0.1", port, timeout_s=0.5, retry_s=0.1)
    got = eventually(lambda: _when(reader, lambda f: "cannot connect" in getattr(f, "reason", "")),
                     timeout_s=5, message="no reason")  # fmt: skip
    assert isinstance(got, NoFix)
    reader.close()


@pytest.mark.parametrize(
    ("name", "tags", "fields"),
    [
        ("result-survey.json", {"run_id": "20251103-dongnai-tanphu-01-1", "fix_ok": "true"},
         {"point_n": 405, "last": False, "fix_mode": "3d", "fix_reason": None,
          "lat_deg": 11.2851234, "lon_deg": 107.4701234, "horizontal_accuracy_m": 4.6,
          "speed_mps": 8.3}),
        ("result-survey-nofix.json", {"run_id": "20251103-dongnai-tanphu-01-1", "fix_ok": "false"},
         {"point_n": 406, "last": True, "fix_mode": "none",
          "fix_reason": "the GPS has no fix (gpsd mode 1)", "lat_deg": None, "lon_deg": None,
          "horizontal_accuracy_m": None, "speed_mps": None}),
    ],
)  # fmt: skip
def test_the_goldens_map_to_their_rows(
    name: str, tags: dict[str, str], fields: dict[str, object]
) -> None:
    golden = Path(__file__).resolve().parents[3] / "tests" / "golden" / name
    result = wire.decode_result(golden.read_bytes())
    (row,) = kinds.spec("survey").rows(result.data)
    assert row.tags == tags
    assert row.fields == fields  # no download_mbps / rtt_ms keys without a stop test
