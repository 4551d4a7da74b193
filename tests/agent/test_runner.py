"""The runner in-process: results into the spool with their seq, health carrying the
runtime's figures (spool, dropped, budgets), a crash in a measurement becoming a result."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import msgspec
from probefleet import kinds
from probefleet.agent.budget import MB, Budget
from probefleet.agent.clock import ClockWatch
from probefleet.agent.config import AgentConfig
from probefleet.agent.errors import StateError
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


def runner(tmp_path: Path, registry: dict[wire.Kind, Any] | None = None) -> Runner:
    cfg = configkit.build(
        {
            "probe": {"id": "p-1", "state_dir": str(tmp_path)},
            "interfaces": [{"name": "lo", "access": "mobile", "monthly_budget_mb": 100}],
            "measurements": {"health": {"disk_path": str(tmp_path)}},
            "gate": {"enabled": False},
        },
        AgentConfig,
    )
    return Runner(
        cfg,
        spool=Spool(tmp_path, max_bytes=10**6),
        budget=Budget(tmp_path, {"lo": 100 * MB}),
        boot_id=BOOT,
        clock=ClockWatch(),
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
    r = runner(tmp_path)
    spool = FailingSpool(tmp_path / "s", max_bytes=10**6)
    r.spool = spool
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
    assert r.unspooled_lost == 0
