"""The runner and the radio context, against ModemManager on a private D-Bus (python-dbusmock):
a mobile result carries the modem at its start (and a bandwidth test's at its end too), a
modem unplugged mid-test leaves the end out and the result still lands, no ModemManager
leaves the results as they were and says why, and the `radio` kind becomes results."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from probefleet import kinds
from probefleet.agent.budget import Budget
from probefleet.agent.clock import ClockWatch
from probefleet.agent.config import AgentConfig
from probefleet.agent.runner import Runner
from probefleet.agent.spool import Spool
from probefleet.core import configkit, wire
from probefleet.kinds import Link, Measurement
from probefleet.kinds.latency.payload import LatencyData, LatencyTarget
from probefleet.kinds.radio.payload import RadioResult
from probefleet.kinds.throughput.measure import ThroughputConfig
from probefleet.kinds.throughput.payload import ThroughputData

from tests.harness.modemmanager import ModemManagerMock, modemmanager

pytestmark = pytest.mark.integration
__all__ = ["modemmanager"]

BOOT = "5967a284-5a74-4aee-a62b-9cb68f34bf08"
WWAN0 = Link("wwan0", "mobile")
ETH0 = Link("eth0", "fixed")
DURING: list[Callable[[], None]] = []  # what happens to the modem while the test runs


class Throughput(Measurement[ThroughputConfig]):
    name: ClassVar[wire.Kind] = "throughput"
    summary = "a bandwidth test that moves nothing; the modem changes meanwhile"
    config_type = ThroughputConfig
    heavy = True

    def run(self, link: Link) -> ThroughputData:
        for change in DURING:
            change()
        return ThroughputData(method="http", server_name="s", server_url="http://s.invalid/",
                              download_mbps=38.4)  # fmt: skip


def runner(tmp_path: Path, bus: str, **radio: Any) -> Runner:
    cfg = configkit.build(
        {
            "probe": {"id": "p-1", "state_dir": str(tmp_path)},
            "interfaces": [{"name": "wwan0", "access": "mobile"},
                           {"name": "eth0", "access": "fixed"}],
            "gate": {"enabled": False},
            "radio": {"bus": bus, "timeout_s": 1.0, **radio},
        },
        AgentConfig,
    )  # fmt: skip
    registry = kinds.measurements()
    registry["throughput"] = Throughput
    return Runner(
        cfg,
        spool=Spool(tmp_path, max_bytes=10**6),
        budget=Budget(tmp_path, {}),  # unmetered: the budget is not what is tested here
        boot_id=BOOT,
        clock=ClockWatch(),
        stop=threading.Event(),
        registry=registry,
    )


def results(r: Runner) -> list[wire.Result]:
    return [wire.decode_result(row.payload) for row in r.spool.after(0, limit=100)]


@pytest.fixture(autouse=True)
def _no_changes() -> None:
    DURING.clear()


def test_a_mobile_bandwidth_test_carries_the_radio_at_start_and_end(
    tmp_path: Path, modemmanager: ModemManagerMock
) -> None:
    modemmanager.add_modem(scene="lte")
    DURING.append(lambda: modemmanager.scene("umts"))  # falls back to 3G during the test
    r = runner(tmp_path, modemmanager.address)
    assert r.run("throughput", WWAN0) == 1
    [result] = results(r)
    assert result.status == "ok"
    assert result.radio is not None
    assert result.radio.start.technology == "lte"
    assert result.radio.start.rsrp_dbm == -95.0
    assert result.radio.end is not None
    assert result.radio.end.technology == "umts"
    assert result.radio.end.rscp_dbm == -89.0


def test_unplugged_mid_test_the_result_lands_with_its_start(
    tmp_path: Path, modemmanager: ModemManagerMock
) -> None:
    modemmanager.add_modem(scene="lte")
    DURING.append(modemmanager.unplug)
    r = runner(tmp_path, modemmanager.address)
    assert r.run("throughput", WWAN0) == 1
    [result] = results(r)
    assert result.status == "ok"
    assert isinstance(result.data, ThroughputData)
    assert result.data.download_mbps == 38.4
    assert result.radio is not None
    assert result.radio.start.technology == "lte"
    assert result.radio.end is None
    assert r.radio.status()["interfaces"] == {"wwan0": "ModemManager sees no modem"}


def test_other_mobile_results_carry_the_start_only_and_fixed_ones_none(
    tmp_path: Path, modemmanager: ModemManagerMock
) -> None:
    modemmanager.add_modem(scene="nr5g_nsa")
    r = runner(tmp_path, modemmanager.address)
    target = LatencyTarget(target="t.invalid", method="tcp", port=80, sent=1, received=1,
                           loss_pct=0.0, rtt_median_ms=30.0)  # fmt: skip

    class Latency(Measurement[Any]):
        name: ClassVar[wire.Kind] = "latency"
        summary = "fixed figures"
        config_type = kinds.measurements()["latency"].config_type

        def run(self, link: Link) -> LatencyData:
            return LatencyData(targets=[target])

    r.measurements["latency"] = Latency(r.cfg.measurements.of("latency"))
    r.run("latency", WWAN0)
    r.run("latency", ETH0)
    mobile, fixed = results(r)
    assert mobile.radio is not None
    assert mobile.radio.end is None
    assert mobile.radio.start.technology == "nr5g_nsa"
    assert fixed.radio is None


def test_without_modemmanager_results_are_as_before_and_say_why(
    tmp_path: Path, modemmanager: ModemManagerMock
) -> None:
    modemmanager.stop_service()
    r = runner(tmp_path, modemmanager.address)
    r.run("throughput", WWAN0)
    r.run("radio", WWAN0)
    bandwidth, radio = results(r)
    assert bandwidth.status == "ok"
    assert bandwidth.radio is None
    assert "radio" not in wire.encode(bandwidth).decode()  # the very same bytes as before
    assert isinstance(radio, RadioResult)
    assert radio.status == "skipped"
    assert radio.reason is not None
    assert "no ModemManager" in radio.reason
    why = r.radio.status()
    assert why["attach"] is True
    assert "no ModemManager" in why["interfaces"]["wwan0"]  # type: ignore[index]
    assert [x.reason for x in r.last_results() if x.kind == "radio"] == [radio.reason]


def test_without_any_bus_nothing_changes(tmp_path: Path) -> None:
    r = runner(tmp_path, f"unix:path={tmp_path}/no-bus")
    r.run("throughput", WWAN0)
    [result] = results(r)
    assert result.status == "ok"
    assert result.radio is None
    assert "cannot connect" in str(r.radio.status()["interfaces"])


def test_attach_false_sends_no_context(tmp_path: Path, modemmanager: ModemManagerMock) -> None:
    modemmanager.add_modem()
    r = runner(tmp_path, modemmanager.address, attach=False)
    r.run("throughput", WWAN0)
    r.run("radio", WWAN0)
    bandwidth, radio = results(r)
    assert bandwidth.radio is None
    assert isinstance(radio, RadioResult)
    assert radio.status == "ok"


def test_the_radio_kind_reads_the_modem_and_skips_fixed_links(
    tmp_path: Path, modemmanager: ModemManagerMock
) -> None:
    modemmanager.add_modem(scene="umts", model="E3372", revision="21.180.99.00.00")
    r = runner(tmp_path, modemmanager.address)
    assert r.run("radio", ETH0) is None  # no modem on a fixed link: no result at all
    assert r.run("radio", WWAN0) == 1
    [result] = results(r)
    assert isinstance(result, RadioResult)
    assert result.data is not None
    assert result.radio is None  # its payload is the snapshot
    assert result.data.snapshot.technology == "umts"
    assert result.data.modem_model == "E3372"
    assert result.data.modem_imei_sha256 is not None
    assert len(result.data.modem_imei_sha256) == 64
