"""The runner in-process: results into the spool with their seq, health carrying the
runtime's figures (spool, dropped by reason, a full disk, budgets), a crash in a
measurement becoming a result, results a refusing disk leaves in memory (bounded in bytes,
in order, every loss counted for life), and one clock reading per result."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from pathlib import Path
from typing import Any, ClassVar

import msgspec
from probefleet import kinds
from probefleet.agent.budget import MB, Budget
from probefleet.agent.clock import ClockWatch
from probefleet.agent.config import AgentConfig
from probefleet.agent.errors import StateError
from probefleet.agent.losses import LossBook
from probefleet.agent.runner import Runner
from probefleet.agent.spool import Spool
from probefleet.core import configkit, wire
from probefleet.kinds import Link, Measurement
from probefleet.kinds.dns.measure import DnsConfig
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.health.payload import HealthResult

BOOT = "5967a284-5a74-4aee-a62b-9cb68f34bf08"


class Crashing(Measurement[DnsConfig]):
    name: ClassVar[wire.Kind] = "dns"
    summary = "raises a bug"
    config_type = DnsConfig

    def run(self, link: Link) -> Any:
        raise ZeroDivisionError("a bug")


def runner(
    tmp_path: Path,
    registry: dict[wire.Kind, Any] | None = None,
    *,
    clock: ClockWatch | None = None,
    spool: Spool | None = None,
    **spool_options: Any,
) -> Runner:
    cfg = configkit.build(
        {
            "probe": {"id": "p-1", "state_dir": str(tmp_path)},
            "interfaces": [{"name": "lo", "access": "mobile", "monthly_budget_mb": 100}],
            "measurements": {"health": {"disk_path": str(tmp_path), "cpu_sample_s": 0.05}},
            "gate": {"enabled": False},
            "spool": spool_options,
        },
        AgentConfig,
    )
    return Runner(
        cfg,
        spool=spool or Spool(tmp_path, max_bytes=10**6),
        budget=Budget(tmp_path, {"lo": 100 * MB}),
        boot_id=BOOT,
        clock=clock or ClockWatch(),
        stop=threading.Event(),
        registry=registry or kinds.measurements(),
    )


def payloads(r: Runner) -> list[wire.Result]:
    return [wire.decode_result(row.payload) for row in r.spool.after(0, limit=100)]


def test_health_reports_the_spool_and_the_budgets(tmp_path: Path) -> None:
    r = runner(tmp_path)
    r.record("latency", Link("lo", "mobile"), MeasurementError("down"))
    r.budget.charge("lo", 7 * MB)
    assert r.run("health", Link()) == 2
    health = payloads(r)[1]
    assert isinstance(health, HealthResult)
    assert health.data is not None
    assert health.data.spool_depth == 1  # the latency result before it
    assert health.data.spool_dropped == 0
    assert health.data.budgets[0].interface == "lo"
    assert health.data.budgets[0].used_bytes >= 7 * MB
    assert health.data.budgets[0].limit_bytes == 100 * MB


def test_a_crashing_measurement_is_a_failed_result_and_skips_are_skipped(tmp_path: Path) -> None:
    r = runner(tmp_path, {**kinds.measurements(), "dns": Crashing})
    r.run("dns", Link())
    r.record("latency", Link(), MeasurementError("missed: the run due at ..."), skipped=True)
    crashed, missed = payloads(r)
    assert crashed.status == "failed"
    assert crashed.reason == "dns crashed: ZeroDivisionError('a bug')"
    assert missed.status == "skipped"
    assert [x.seq for x in r.last_results()] == [1, 2]


def test_a_bandwidth_test_finding_the_lock_taken_is_skipped_after_heavy_wait_s(
    tmp_path: Path,
) -> None:
    from tests.agent.standins import SlowThroughput

    r = runner(tmp_path, {**kinds.measurements(), "throughput": SlowThroughput})
    r.cfg = msgspec.structs.replace(
        r.cfg, schedule=msgspec.structs.replace(r.cfg.schedule, heavy_wait_s=1)
    )
    with r.heavy_lock:  # another bandwidth test is running
        r.run("throughput", Link())
    r.run("throughput", Link())  # free again: runs (gate disabled, unmetered link)
    held, ran = payloads(r)
    assert held.status == "skipped"
    assert held.reason == "another bandwidth test was still running after 1 s"
    assert held.detail == {"waited_s": 1.0}
    assert ran.status == "ok", ran.reason


class FailingSpool(Spool):
    """The real spool, refusing appends (a full disk) while ``failing`` is set."""

    failing = True

    def append(self, kind: str, make: Any) -> int:
        if self.failing:
            raise StateError(f"spool {self.path}: cannot store {kind}: database or disk is full")
        return super().append(kind, make)


def test_results_the_disk_refuses_wait_in_memory_and_keep_their_order(tmp_path: Path) -> None:
    spool = FailingSpool(tmp_path / "s", max_bytes=10**6)
    r = runner(tmp_path, spool=spool)
    first = wire.utc_now()
    assert r.record("latency", Link(), MeasurementError("a"), measured_at=first) is None
    assert r.record("dns", Link(), MeasurementError("b")) is None
    assert r.unspooled == 2
    spool.failing = False
    assert r.retry_unspooled() == 2
    assert r.record("ipv6", Link(), MeasurementError("c")) == 3
    kept = payloads(r)
    assert [(wire.kind_of(x), x.seq, x.reason) for x in kept] == [
        ("latency", 1, "a"),
        ("dns", 2, "b"),
        ("ipv6", 3, "c"),
    ]
    assert kept[0].measured_at == first  # measured when it was, spooled when it could be
    assert r.dropped() == {"disk_full": 0, "spool_budget": 0, "unspoolable": 0}


def test_the_memory_hold_is_bounded_in_bytes_drops_health_first_and_counts_for_life(
    tmp_path: Path,
) -> None:
    spool = FailingSpool(tmp_path / "s", max_bytes=10**6)
    r = runner(tmp_path, spool=spool, memory_max_mb=0.01)  # 10 kB of payload
    r.run("health", Link())
    for i in range(100):
        r.record("latency", Link(), MeasurementError(f"r{i}"))
    assert r.storage == "disk_full"
    assert r.unspooled_bytes <= 10_000
    held, lost = r.unspooled, r.dropped()["disk_full"]
    assert held + lost == 101
    assert 20 < held < 60  # ~300 bytes a result
    # The oldest went, the health result first. Had the agent been killed now, its next
    # start would count the held ones too (a copy of the state dir's book, read afresh).
    (tmp_path / "killed").mkdir()
    shutil.copy(r.losses.path, tmp_path / "killed")
    assert LossBook(tmp_path / "killed").counts()["disk_full"] == lost + held
    spool.failing = False
    assert r.retry_unspooled() == held
    assert r.status_figures() == (lost, "ok")
    kept = payloads(r)
    assert [x.reason for x in kept] == [f"r{i}" for i in range(100 - held, 100)]
    assert LossBook(tmp_path).counts() == {"disk_full": lost, "unspoolable": 0}
    health = r.runtime_figures()
    assert (health.dropped_disk_full, health.spool_dropped, health.disk_full) == (lost, lost, False)


def test_health_says_the_disk_is_full_and_what_is_held(tmp_path: Path) -> None:
    spool = FailingSpool(tmp_path / "s", max_bytes=10**6)
    r = runner(tmp_path, spool=spool)
    r.record("latency", Link(), MeasurementError("a"))
    r.run("health", Link())  # held too: it arrives once the disk takes results again
    spool.failing = False
    assert r.retry_unspooled() == 2
    health = payloads(r)[1]
    assert isinstance(health, HealthResult)
    assert health.data is not None
    assert health.data.disk_full is True
    assert health.data.spool_held == 1  # the latency result before it
    assert health.data.spool_dropped == 0
    assert r.status_figures() == (0, "ok")


def test_held_results_are_spooled_before_a_newer_one_and_stopping_counts_the_rest(
    tmp_path: Path,
) -> None:
    spool = FailingSpool(tmp_path / "s", max_bytes=10**6)
    r = runner(tmp_path, spool=spool)
    for reason in ("a", "b"):
        r.record("latency", Link(), MeasurementError(reason))
    spool.failing = False
    assert r.record("dns", Link(), MeasurementError("c")) == 3  # a and b first
    assert [x.reason for x in payloads(r)] == ["a", "b", "c"]
    spool.failing = True
    r.record("latency", Link(), MeasurementError("d"))
    assert r.give_up_held() == 1
    assert r.unspooled == 0
    assert LossBook(tmp_path).counts()["disk_full"] == 1
    assert r.status_figures() == (1, "disk_full")


def test_a_result_that_can_never_be_spooled_is_counted_unspoolable(tmp_path: Path) -> None:
    r = runner(tmp_path, spool=Spool(tmp_path / "s", max_bytes=200))
    assert r.record("latency", Link(), MeasurementError("x" * 300)) is None
    assert r.unspooled == 0  # not held: retrying cannot help
    assert r.dropped() == {"disk_full": 0, "spool_budget": 0, "unspoolable": 1}
    assert LossBook(tmp_path).counts()["unspoolable"] == 1


def test_a_failing_disk_is_failing_not_full(tmp_path: Path) -> None:
    class IoErrorSpool(Spool):
        def append(self, kind: str, make: Any) -> int:
            raise StateError(f"spool {self.path}: cannot store {kind}: disk I/O error")

    r = runner(tmp_path, spool=IoErrorSpool(tmp_path / "s", max_bytes=10**6))
    r.record("latency", Link(), MeasurementError("a"))
    assert (r.storage, r.unspooled) == ("failing", 1)
    assert r.runtime_figures().disk_full is False


class SteppedClock:
    """The probe's clocks as a fake: wall (UTC), monotonic, since-boot, and adjtimex's word.
    ``step`` is NTP answering: the wall clock jumps, the others only move on."""

    def __init__(self) -> None:
        self.wall = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
        self.mono = 500.0
        self.boot = 1000.0
        self.synced = False

    def watch(self) -> ClockWatch:
        return ClockWatch(
            wall=lambda: self.wall,
            mono=lambda: self.mono,
            boottime=lambda: self.boot,
            synced=lambda: self.synced,
        )

    def step(self, jump: dt.timedelta, elapsed_s: float) -> None:
        self.wall += jump + dt.timedelta(seconds=elapsed_s)
        self.mono += elapsed_s
        self.boot += elapsed_s
        self.synced = True


def test_a_measurement_straddling_a_clock_step_carries_one_reading_from_its_start(
    tmp_path: Path,
) -> None:
    fake = SteppedClock()
    jump = dt.timedelta(days=3)

    class SteppedDuringRun(Measurement[DnsConfig]):
        name: ClassVar[wire.Kind] = "dns"
        summary = "NTP steps the clock while it runs"
        config_type = DnsConfig

        def run(self, link: Link) -> Any:
            fake.step(jump, elapsed_s=40.0)  # a 40 s test; NTP answers meanwhile
            raise MeasurementError("done")

    r = runner(tmp_path, {**kinds.measurements(), "dns": SteppedDuringRun}, clock=fake.watch())
    start = fake.wall
    r.run("dns", Link())
    r.run("dns", Link())  # started after the step
    straddling, after = payloads(r)
    # measured_at and its clock state from the same moment: before the step, not synced,
    # at 1000 s since boot (the collector re-bases it from there).
    assert straddling.measured_at == start
    assert straddling.clock == wire.Clock(synced=False, uptime_s=1000.0, since_sync_s=None)
    assert after.measured_at == start + jump + dt.timedelta(seconds=40)
    assert after.clock == wire.Clock(synced=True, uptime_s=1040.0, since_sync_s=0.0)
    # The pairing holds: wall - uptime (the boot's start) is the same for both, but for the
    # step itself.
    boot_of = [x.measured_at - dt.timedelta(seconds=x.clock.uptime_s) for x in (straddling, after)]
    assert boot_of[1] - boot_of[0] == jump
