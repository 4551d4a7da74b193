"""Reading ModemManager over a real D-Bus: a private dbus-daemon and python-dbusmock with the
real daemon's interfaces (tests/harness/modemmanager.py), driven through what a probe's modem
lives through: LTE -> 5G NSA -> 3G fallback -> no registration -> back, unplugged, a modem
without Signal, two modems, ModemManager gone or hung, no bus at all."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from probefleet.core import wire
from probefleet.kinds.radio import dbus
from probefleet.kinds.radio.mapping import NoRadio, Reading
from probefleet.kinds.radio.reader import RadioReader

from tests.harness.modemmanager import ModemManagerMock, modemmanager

pytestmark = pytest.mark.integration
__all__ = ["modemmanager"]  # the fixture, used by name


def snapshot(reader: RadioReader, interface: str = "wwan0") -> wire.RadioSnapshot:
    got = reader.read(interface)
    assert isinstance(got, Reading), got
    return got.snapshot


def test_the_scripted_sequence_maps_every_state(modemmanager: ModemManagerMock) -> None:
    path = modemmanager.add_modem(scene="lte")
    reader = RadioReader(modemmanager.address, signal_rate_s=5, timeout_s=2.0)

    lte = snapshot(reader)
    assert (lte.technology, lte.registration, lte.operator_code, lte.operator_name) == (
        "lte", "home", "45204", "Viettel",
    )  # fmt: skip
    assert (lte.rsrp_dbm, lte.rsrq_db, lte.snr_db, lte.rssi_dbm) == (-95.0, -11.0, 12.5, -65.0)
    assert (lte.cell_id, lte.tac, lte.arfcn, lte.band) == (0x1A2B3C4, 0x2F1A, 1650, "eutran-3")
    assert (lte.sim_operator_code, lte.signal_quality_pct) == ("45204", 72)

    modemmanager.scene("nr5g_nsa")
    nsa = snapshot(reader)
    assert nsa.technology == "nr5g_nsa"
    assert (nsa.nr_rsrp_dbm, nsa.nr_rsrq_db, nsa.nr_snr_db) == (-88.0, -10.5, 18.0)
    assert nsa.rsrp_dbm == -90.0
    assert nsa.cell_id == 0x1A2B3C5

    modemmanager.scene("umts")
    umts = snapshot(reader)
    assert (umts.technology, umts.rscp_dbm, umts.ecio_db, umts.rssi_dbm) == (
        "umts", -89.0, -7.5, -75.0,
    )  # fmt: skip
    assert (umts.lac, umts.tac, umts.rsrp_dbm, umts.band) == (0x5A1, None, None, "utran-1")

    modemmanager.scene("unregistered")
    lost = snapshot(reader)
    assert lost == wire.RadioSnapshot(
        registration="searching", sim_operator_code="45204", sim_operator_name="Viettel"
    )

    modemmanager.scene("lte")
    assert snapshot(reader) == lte
    # Signal.Setup(rate) once per modem, not per read.
    calls = modemmanager.calls(path)
    assert calls.count("Setup") == 1, calls


def test_signal_setup_takes_the_configured_rate(modemmanager: ModemManagerMock) -> None:
    modemmanager.add_modem()
    reader = RadioReader(modemmanager.address, signal_rate_s=7)
    snapshot(reader)
    with dbus.ModemManagerBus(modemmanager.address) as bus:
        assert bus.get_all("/org/freedesktop/ModemManager1/Modem/0", dbus.SIGNAL)["Rate"] == 7


def test_a_modem_without_signal_has_its_technology_and_no_figures(
    modemmanager: ModemManagerMock,
) -> None:
    path = modemmanager.add_modem(scene="lte", signal=False, cells=False)
    reader = RadioReader(modemmanager.address)
    snap = snapshot(reader)
    assert (snap.technology, snap.operator_code, snap.signal_quality_pct) == ("lte", "45204", 72)
    assert (snap.rsrp_dbm, snap.rsrq_db, snap.snr_db, snap.rssi_dbm) == (None,) * 4
    # GetCellInfo unsupported: the serving cell comes from the 3GPP location instead.
    assert (snap.cell_id, snap.tac, snap.arfcn) == (0x1A2B3C4, 0x2F1A, None)
    snapshot(reader)
    assert modemmanager.calls(path).count("GetCellInfo") == 1  # not asked again
    assert "Setup" not in modemmanager.calls(path)


def test_the_modem_of_the_interface_is_picked_among_several(
    modemmanager: ModemManagerMock,
) -> None:
    modemmanager.add_modem(0, interface="wwan0", scene="lte")
    modemmanager.add_modem(1, interface="wwan1", scene="umts", model="E3372")
    reader = RadioReader(modemmanager.address)
    assert snapshot(reader, "wwan0").technology == "lte"
    assert snapshot(reader, "wwan1").technology == "umts"
    got = reader.read("eth0")
    assert isinstance(got, NoRadio)
    assert "no modem for eth0" in got.reason


def test_unplugged_and_gone_give_reasons_never_exceptions(
    modemmanager: ModemManagerMock,
) -> None:
    reader = RadioReader(modemmanager.address)
    assert reader.read("wwan0") == NoRadio("ModemManager sees no modem")
    modemmanager.add_modem()
    assert isinstance(reader.read("wwan0"), Reading)
    modemmanager.unplug()
    assert reader.read("wwan0") == NoRadio("ModemManager sees no modem")
    modemmanager.stop_service()
    got = reader.read("wwan0")
    assert isinstance(got, NoRadio)
    assert "no ModemManager on the D-Bus" in got.reason


def test_a_hung_modemmanager_costs_one_timeout(modemmanager: ModemManagerMock) -> None:
    modemmanager.add_modem()
    reader = RadioReader(modemmanager.address, timeout_s=0.3)
    assert isinstance(reader.read("wwan0"), Reading)
    modemmanager.service.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        got = reader.read("wwan0")
        took = time.monotonic() - started
    finally:
        modemmanager.service.send_signal(signal.SIGCONT)
    assert isinstance(got, NoRadio)
    assert "no answer within 0.3 s" in got.reason
    assert took < 2.0  # one call's timeout, not seven


def test_no_bus_at_all_is_a_reason(tmp_path: Path) -> None:
    got = RadioReader(f"unix:path={tmp_path}/nothing-here", timeout_s=0.5).read("wwan0")
    assert isinstance(got, NoRadio)
    assert "cannot connect to the D-Bus" in got.reason


def test_signal_is_set_up_again_after_modemmanager_restarts(
    modemmanager: ModemManagerMock,
) -> None:
    modemmanager.add_modem()
    reader = RadioReader(modemmanager.address, signal_rate_s=5)
    snapshot(reader)
    modemmanager.stop_service()
    modemmanager.start_service()  # the same modem path again, its Signal rate back to 0
    path = modemmanager.add_modem()
    snapshot(reader)
    snapshot(reader)
    assert modemmanager.calls(path).count("Setup") == 1
