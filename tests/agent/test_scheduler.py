"""Scheduling rules: per-probe offsets, one job per measurement and link, cron with an
offset, runs that could not start recorded, re-anchoring after a clock jump."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from probefleet import kinds
from probefleet.agent.config import AgentConfig
from probefleet.agent.scheduler import (
    Scheduler,
    _Shifted,
    job_specs,
    offset_s,
    slots_in,
    trigger_for,
)
from probefleet.core import configkit, wire
from probefleet.kinds import Link

from tests.harness import eventually


def config(**sections: Any) -> AgentConfig:
    data: dict[str, Any] = {"probe": {"id": "dongnai-tanphu-01"}, **sections}
    return configkit.build(data, AgentConfig)


def test_offsets_are_stable_spread_and_within_the_interval() -> None:
    assert offset_s("p-1", "latency@eth0", 300) == offset_s("p-1", "latency@eth0", 300)
    fleet = [offset_s(f"dongnai-{i:03d}", "throughput@eth0", 3600) for i in range(200)]
    assert all(0 <= o < 3600 for o in fleet)
    # 200 probes on one hourly test: spread over the hour, not bunched (no 5-minute slot
    # holds more than 3x its fair share of 200 / 12).
    slots = [sum(1 for o in fleet if k * 300 <= o < (k + 1) * 300) for k in range(12)]
    assert max(slots) < 3 * 200 / 12, slots
    assert len(set(fleet)) > 190


def test_one_job_per_enabled_measurement_and_link() -> None:
    cfg = config(
        interfaces=[{"name": "eth0", "access": "fixed"}, {"name": "wwan0", "access": "mobile"}],
        measurements={"dns": {"enabled": False}, "throughput": {"interface": "eth0"}},
    )
    ids = {s.job_id for s in job_specs(cfg)}
    assert "throughput@eth0" in ids
    assert "throughput@wwan0" not in ids
    assert {"latency@eth0", "latency@wwan0", "health@default"} <= ids
    assert not any(i.startswith("dns@") for i in ids)
    # The radio kind reads the modem of a mobile link: no job on a fixed one.
    assert "radio@wwan0" in ids
    assert "radio@eth0" not in ids


def test_interval_slots_sit_on_the_probe_grid() -> None:
    cfg = config(schedule={"jitter_s": 0})
    spec = next(s for s in job_specs(cfg) if s.kind == "latency")
    trigger = trigger_for(spec, 0)
    now = dt.datetime(2026, 3, 1, 12, 0, 7, tzinfo=dt.UTC)
    first = trigger.get_next_fire_time(None, now)
    assert first > now
    assert (first.timestamp() - spec.offset_s) % spec.interval_s == 0
    second = trigger.get_next_fire_time(first, first)
    assert (second - first).total_seconds() == spec.interval_s


def test_cron_runs_are_shifted_by_the_offset_and_jittered_within_bounds() -> None:
    cfg = config(measurements={"throughput": {"cron": "0 19-22 * * *"}}, schedule={"jitter_s": 30})
    spec = next(s for s in job_specs(cfg) if s.kind == "throughput")
    assert 0 <= spec.offset_s < 300  # cron: spread within 10 x jitter_s
    trigger = trigger_for(spec, 30)
    assert isinstance(trigger, _Shifted)
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    fire = trigger.get_next_fire_time(None, now)
    assert fire is not None
    base = dt.datetime(2026, 3, 1, 19, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=spec.offset_s)
    assert base <= fire <= base + dt.timedelta(seconds=30)
    nxt = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    assert nxt is not None
    assert dt.timedelta(minutes=59) < nxt - fire < dt.timedelta(minutes=61)


def test_a_bad_cron_line_is_a_config_error_naming_the_key(tmp_path: Any) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[probe]\nid = "p"\n[measurements.dns]\ncron = "61 * * * *"\n')
    from probefleet.agent.config import load_config

    with pytest.raises(configkit.ConfigError, match=r"measurements\.dns\.cron = '61 \* \* \* \*'"):
        load_config(path, env={})


def test_a_run_that_finds_the_previous_one_going_is_recorded() -> None:
    cfg = config(measurements={k: {"enabled": k == "latency"} for k in kinds.names()})
    missed: list[tuple[str, str]] = []
    release = threading.Event()

    def run(kind: wire.Kind, link: Link) -> None:
        release.wait(5)

    sched = Scheduler(cfg, run, lambda k, _l, why: missed.append((k, why)),
                      interval_override_s=0.2)  # fmt: skip
    sched.start()
    try:
        eventually(lambda: missed, timeout_s=10, message="no not-started run recorded")
    finally:
        release.set()
        sched.shutdown()
    kind, why = missed[0]
    assert kind == "latency"
    assert "found the previous run still going" in why


def test_reanchor_after_a_clock_jump_recomputes_next_runs_from_now() -> None:
    cfg = config(schedule={"jitter_s": 0})
    sched = Scheduler(cfg, lambda k, lnk: None, lambda k, lnk, why: None)
    sched.start()
    try:
        job = sched._sched.get_job("latency@default")
        # What a wall clock set back by a day leaves: the next run a day away.
        job.modify(next_run_time=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        sched.reanchor()
        nxt = dt.datetime.fromisoformat(sched.next_runs()["latency@default"])
        assert nxt - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=300)
    finally:
        sched.shutdown()
    time.sleep(0)  # the scheduler thread exits on its own


def test_clock_jumps_are_noticed_both_ways_and_small_drift_is_not() -> None:
    from probefleet.agent.daemon import ClockJumps

    wall, mono = [1_000_000.0], [50.0]
    jumps = ClockJumps(lambda: wall[0], lambda: mono[0], threshold_s=30)
    mono[0] += 10
    wall[0] += 10.5  # NTP slewing: no jump
    assert jumps.check() is None
    mono[0] += 1
    wall[0] += 3601  # stepped an hour forward
    assert jumps.check() == pytest.approx(3600, abs=1)
    assert jumps.check() is None  # measured against the new offset from now on
    wall[0] -= 86_400  # set back a day
    assert jumps.check() == pytest.approx(-86_400, abs=1)


@pytest.mark.slow  # ~9 s of real waiting
def test_runs_missed_beyond_the_grace_time_are_recorded_once() -> None:
    cfg = config(
        measurements={k: {"enabled": k == "latency"} for k in kinds.names()},
        schedule={"misfire_grace_s": 5, "jitter_s": 0},
    )
    missed: list[str] = []
    ran: list[float] = []
    sched = Scheduler(cfg, lambda k, lnk: ran.append(time.monotonic()),
                      lambda k, lnk, why: missed.append(why), interval_override_s=1.0)  # fmt: skip
    sched.start()
    try:
        eventually(lambda: ran, timeout_s=5, message="never ran")
        sched._sched.pause()  # what a stalled process or a suspended board looks like
        time.sleep(7)
        sched._sched.resume()
        eventually(lambda: missed, timeout_s=5, message="missed run not recorded")
        time.sleep(1.5)
    finally:
        sched.shutdown()
    # Seven slots went by: coalesced into the latest one (run), the others reported once.
    assert len(missed) == 1, missed
    assert missed[0].startswith("missed: ")
    count = int(missed[0].split()[1])
    assert 5 <= count <= 8, missed[0]
    assert "never started" in missed[0]


def test_slots_are_counted_for_intervals_and_cron() -> None:
    cfg = config(measurements={"dns": {"cron": "*/10 * * * *"}}, schedule={"jitter_s": 0})
    specs = {s.kind: s for s in job_specs(cfg)}
    t0 = dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)
    lat = specs["latency"]  # every 300 s
    assert slots_in(lat, t0, t0 + dt.timedelta(hours=1)) == 12
    assert slots_in(lat, t0, t0) == 0
    dns = specs["dns"]  # 6 an hour, shifted by its offset
    assert slots_in(dns, t0, t0 + dt.timedelta(hours=2)) == 12
