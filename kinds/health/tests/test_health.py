"""The `health` measurement: temperature selection through the sensors seam, interface
counters, the runtime's figures, real values of this machine checked against /proc and
/sys, and `probe-agent measure health`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema  # type: ignore[import-untyped]  # untyped; types-jsonschema is not locked
import pytest
from probefleet.core import configkit, wire
from probefleet.kinds.base import Link
from probefleet.kinds.health.measure import (
    Health,
    HealthConfig,
    RuntimeFigures,
    existing_ancestor,
    interface_counters,
    pick_temperature,
)
from probefleet.kinds.health.payload import BudgetUsage, HealthData, HealthResult, InterfaceCounters

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "schema" / "result.schema.json").read_text())
SYS_NET = Path("/sys/class/net")


class Temp(NamedTuple):  # the shape of psutil's shwtemp
    label: str
    current: float
    high: float | None = None
    critical: float | None = None


def _health(sensors: Mapping[str, Sequence[Temp]] | None = None, **options: Any) -> Health:
    options.setdefault("cpu_sample_s", 0.1)
    config = configkit.build(options, HealthConfig)
    if sensors is None:
        return Health(config)
    return Health(config, sensors=lambda: sensors)


def _run(health: Health) -> HealthData:
    data = health.run(Link())
    # What the agent would publish must pass the wire's own checks.
    return wire.decode(wire.encode(data), HealthData)


# --- temperature: which sensor is "the probe's" (fake sensors at the psutil seam) -----------

PI = {"cpu_thermal": [Temp("", 48.312)]}
INTEL = {
    "acpitz": [Temp("", 27.8)],
    "coretemp": [Temp("Core 0", 51.0), Temp("Package id 0", 55.0), Temp("Core 1", 53.0)],
    "nvme": [Temp("Composite", 39.9)],
}
AMD = {"k10temp": [Temp("Tctl", 61.25), Temp("Tccd1", 58.0)], "amdgpu": [Temp("edge", 45.0)]}
OTHER_SOC = {"cpu0_thermal": [Temp("", 44.0)], "gpu_thermal": [Temp("", 40.0)]}
PI_BROKEN = {"cpu_thermal": [Temp("", float("nan"))], "coretemp": [Temp("Core 0", 50.0)]}
PI_ABSURD = {"cpu_thermal": [Temp("", 500.0)], "soc_thermal": [Temp("", 70.0)]}


@pytest.mark.parametrize(
    ("sensors", "wanted", "expected"),
    [
        (PI, "", ("cpu_thermal", 48.3)),
        (INTEL, "", ("coretemp", 55.0)),  # the package, not a core; coretemp before acpitz
        (AMD, "", ("k10temp", 61.2)),  # Tctl; round() halves to even
        ({"acpitz": [Temp("", 27.8)], "nvme": [Temp("Composite", 39.9)]}, "", ("acpitz", 27.8)),
        (OTHER_SOC, "", ("cpu0_thermal", 44.0)),  # unknown, but named cpu
        ({"nvme": [Temp("Composite", 39.9)], "amdgpu": [Temp("edge", 45.0)]}, "", None),
        ({}, "", None),
        (PI_BROKEN, "", ("coretemp", 50.0)),  # NaN is no reading
        ({"cpu_thermal": [Temp("", -273.0)]}, "", None),
        (PI_ABSURD, "", ("soc_thermal", 70.0)),  # outside the wire's -60..150: skipped
        (INTEL, "nvme", ("nvme", 39.9)),
        (INTEL, "missing", None),
    ],
)  # fmt: skip
def test_the_cpus_sensor_is_picked(
    sensors: Mapping[str, Sequence[Temp]], wanted: str, expected: tuple[str, float] | None
) -> None:
    assert pick_temperature(sensors, wanted) == expected


def test_temperature_reaches_the_payload_through_the_seam() -> None:
    assert _run(_health(PI)).temperature_c == 48.3
    assert _run(_health(INTEL, temperature_sensor="acpitz")).temperature_c == 27.8
    assert _run(_health({})).temperature_c is None


def test_an_unreadable_sensor_costs_the_temperature_only() -> None:
    def broken() -> Mapping[str, Sequence[Temp]]:
        raise OSError(5, "Input/output error")

    health = Health(HealthConfig(cpu_sample_s=0.1), sensors=broken)
    data = _run(health)
    assert data.temperature_c is None
    assert data.memory_available_bytes > 0


# --- interface counters and the runtime's figures ----------------------------------------------


class Stats(NamedTuple):  # psutil's snicstats, the fields used
    isup: bool
    flags: str


class Io(NamedTuple):  # psutil's snetio
    bytes_sent: int
    bytes_recv: int
    packets_sent: int = 0
    packets_recv: int = 0
    errin: int = 0
    errout: int = 0
    dropin: int = 0
    dropout: int = 0


def test_interface_counters_skip_loopback_and_keep_32() -> None:
    stats = {
        "lo": Stats(True, "up,loopback,running"),
        "lo2": Stats(True, "up,loopback"),  # another loopback, by its flag
        "eth0": Stats(True, "up,broadcast,running,multicast"),
        "wwan0": Stats(False, "pointopoint,noarp"),
    }
    counters = {
        "lo": Io(1, 1),
        "lo2": Io(2, 2),
        "eth0": Io(bytes_sent=10, bytes_recv=20, errin=1, errout=2, dropin=3, dropout=4),
        "wwan0": Io(5, 6),
        "gone0": Io(7, 8),  # counters but no stats (vanished in between): reported down
        "a-name-far-too-long": Io(9, 9),  # not a Linux name: the wire would refuse it
    }
    got = interface_counters(stats, counters)
    assert got == [
        InterfaceCounters(
            interface="eth0", up=True, rx_bytes=20, tx_bytes=10,
            rx_errors=1, tx_errors=2, rx_drops=3, tx_drops=4,
        ),
        InterfaceCounters(interface="gone0", up=False, rx_bytes=8, tx_bytes=7),
        InterfaceCounters(interface="wwan0", up=False, rx_bytes=6, tx_bytes=5),
    ]  # fmt: skip
    many = {f"veth{i:02d}": Io(i, i) for i in range(40)}
    capped = interface_counters({}, many)
    assert [c.interface for c in capped] == [f"veth{i:02d}" for i in range(32)]


def test_the_runtimes_figures_are_reported() -> None:
    health = _health()
    assert _run(health).spool_depth is None  # no provider: absent
    budget = BudgetUsage(
        interface="wwan0", month="2026-11", used_bytes=4_200_000_000, limit_bytes=20_000_000_000
    )
    health.extra = lambda: RuntimeFigures(
        spool_depth=3, spool_bytes=4096, spool_dropped=0, budgets=(budget,)
    )
    data = _run(health)
    assert (data.spool_depth, data.spool_bytes, data.spool_dropped) == (3, 4096, 0)
    assert data.budgets == [budget]


def test_a_failing_provider_costs_the_spool_fields_only(caplog: pytest.LogCaptureFixture) -> None:
    health = _health()

    def broken() -> RuntimeFigures:
        raise RuntimeError("spool database is locked")

    health.extra = broken
    data = _run(health)
    assert (data.spool_depth, data.budgets) == (None, [])
    assert data.uptime_s > 0
    assert "spool database is locked" in caplog.text


# --- the disk --------------------------------------------------------------------------------


def test_a_missing_disk_path_falls_back_to_its_nearest_existing_parent(tmp_path: Path) -> None:
    assert existing_ancestor(str(tmp_path / "not" / "yet")) == tmp_path
    assert existing_ancestor(str(tmp_path)) == tmp_path
    assert existing_ancestor("/nonexistent-probefleet/state") == Path("/")


def test_disk_path_must_be_absolute() -> None:
    with pytest.raises(ValueError, match=r"measurements\.health\.disk_path = 'state'"):
        _health(disk_path="state")


def test_disk_figures_are_those_of_the_paths_filesystem(tmp_path: Path) -> None:
    data = _run(_health(disk_path=str(tmp_path / "state-dir-not-created-yet")))
    fs = os.statvfs(tmp_path)
    free = fs.f_bavail * fs.f_frsize
    used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
    # df's "Use%": used / (used + available to users); others write meanwhile, hence approx.
    assert data.disk_free_bytes == pytest.approx(free, rel=0.01, abs=64 * 1024**2)
    assert data.disk_used_pct == pytest.approx(100 * used / (used + free), abs=0.5)


# --- real values of this machine ---------------------------------------------------------------


def _vm_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} in /proc/meminfo")


def _sys_counter(name: str, counter: str) -> int:
    return int((SYS_NET / name / "statistics" / counter).read_text())


def _loopbacks() -> set[str]:
    # IFF_LOOPBACK = 0x8 in /sys/class/net/<if>/flags
    return {p.name for p in SYS_NET.iterdir() if int((p / "flags").read_text(), 16) & 0x8}


def test_real_values_match_proc_and_sys() -> None:
    names = sorted(p.name for p in SYS_NET.iterdir())
    before = {n: _sys_counter(n, "rx_bytes") for n in names}
    started = time.monotonic()
    data = _run(_health(cpu_sample_s=0.3))
    elapsed = time.monotonic() - started
    proc_uptime = float(Path("/proc/uptime").read_text().split()[0])
    after = {n: _sys_counter(n, "rx_bytes") for n in names}

    assert elapsed >= 0.3  # the CPU really was sampled over cpu_sample_s
    assert 0.0 <= data.cpu_pct <= 100.0
    assert data.load_1m == pytest.approx(os.getloadavg()[0], abs=1.0)
    assert 0 < data.memory_available_bytes <= _meminfo("MemTotal")
    assert 0.0 < data.memory_used_pct < 100.0
    assert data.uptime_s == pytest.approx(proc_uptime, abs=1.0)
    assert data.agent_rss_bytes == pytest.approx(_vm_rss_bytes(), rel=0.2)

    reported = {c.interface: c for c in data.interfaces}
    expected = sorted(set(names) - _loopbacks())[:32]
    assert sorted(reported) == expected
    assert "lo" not in reported
    for name, counters in reported.items():
        assert before[name] <= counters.rx_bytes <= after[name], name
        operstate = (SYS_NET / name / "operstate").read_text().strip()
        if operstate == "up":
            assert counters.up, name


def test_cpu_use_follows_a_busy_process() -> None:
    # One core spinning: the machine-wide share is at least 1/ncpu of it, minus noise.
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _run(_health(cpu_sample_s=0.5)).cpu_pct
    finally:
        spinner.kill()
        spinner.wait()
    assert busy >= 0.6 * 100 / (os.cpu_count() or 1), busy


# --- the command a technician types -----------------------------------------------------------


def test_probe_agent_measure_health_prints_a_valid_result(tmp_path: Path) -> None:
    agent_toml = tmp_path / "agent.toml"
    agent_toml.write_text(
        '[probe]\nid = "health-test"\n'
        f'[measurements.health]\ncpu_sample_s = 0.1\ndisk_path = "{tmp_path}"\n'
    )
    argv = [
        sys.executable,
        "-m",
        "probefleet.agent.cli",
        "measure",
        "health",
        "--config",
        str(agent_toml),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(result)
    decoded = wire.decode_result(proc.stdout)
    assert isinstance(decoded, HealthResult)
    assert decoded.status == "ok"
    assert decoded.interface is None  # health is per probe, not per link
    data = result["data"]
    for key in (
        "cpu_pct",
        "load_1m",
        "memory_used_pct",
        "memory_available_bytes",
        "disk_used_pct",
        "disk_free_bytes",
        "uptime_s",
        "agent_rss_bytes",
    ):
        assert key in data, key  # fmt: skip
    # No runtime behind a one-shot measurement: the spool fields are left out.
    assert not {"spool_depth", "spool_bytes", "spool_dropped", "budgets"} & set(data)
    assert 0 < data["agent_rss_bytes"] < 1024**3
