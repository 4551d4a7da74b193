"""The radio kind without D-Bus: ModemManager's properties -> snapshot, rows, the measurement.

The same mapping against a real bus (python-dbusmock) is tests/agent/test_radio_dbus.py."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import msgspec
import pytest
from probefleet.core import wire
from probefleet.kinds import Link
from probefleet.kinds.radio import fields, mapping
from probefleet.kinds.radio.mapping import ModemState, NoRadio, Reading
from probefleet.kinds.radio.measure import Radio, RadioAbsent, RadioConfig
from probefleet.kinds.radio.payload import RadioData

LTE, NR, UMTS, HSPA_PLUS, EDGE = 1 << 14, 1 << 15, 1 << 5, 1 << 9, 1 << 4
WWAN0 = Link("wwan0", "mobile")


def modem(**props: Any) -> dict[str, Any]:
    base = {
        "Model": "EC25",
        "Revision": "EC25EFAR06A06M4G",
        "EquipmentIdentifier": "867962041294151",
        "PrimaryPort": "cdc-wdm0",
        "Ports": [("cdc-wdm0", 6), ("ttyUSB2", 3), ("wwan0", 2)],
        "AccessTechnologies": LTE,
        "SignalQuality": (72, True),
    }
    return {**base, **props}


def state(**parts: Any) -> ModemState:
    parts.setdefault("modem", modem())
    parts.setdefault("modem3gpp", {"RegistrationState": 1, "OperatorCode": "45204",
                                   "OperatorName": "Viettel"})  # fmt: skip
    return ModemState(path="/org/freedesktop/ModemManager1/Modem/0", **parts)


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        (0, None),
        (EDGE, "gsm"),
        (UMTS | HSPA_PLUS, "umts"),
        (LTE, "lte"),
        (1 << 16, "lte"),  # LTE Cat-M
        (LTE | NR, "nr5g_nsa"),
        (NR, "nr5g_sa"),
        (UMTS | LTE, "lte"),  # the highest generation wins
        (1 << 10, None),  # CDMA 1xRTT: not ours
    ],
)
def test_access_technologies_bits_give_the_generation(bits: int, expected: str | None) -> None:
    assert mapping.technology(bits) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "idle"), (1, "home"), (2, "searching"), (3, "denied"), (4, "unknown"), (5, "roaming"),
     (6, "home"), (7, "roaming"), (8, "emergency_only"), (9, "home"), (10, "roaming"),
     (11, "emergency_only"), (99, "unknown")],
)  # fmt: skip
def test_registration_states_map_to_ours(value: int, expected: str) -> None:
    assert mapping.registration(value) == expected


def test_an_lte_modem_gives_every_figure_it_reports() -> None:
    got = mapping.read(
        state(
            signal={"Lte": {"rssi": -65.0, "rsrp": -95.0, "rsrq": -11.0, "snr": 12.5}},
            sim={"OperatorIdentifier": "45204", "OperatorName": "Viettel"},
            cells=[{"cell-type": 5, "serving": True, "tac": "2F1A", "ci": "1A2B3C4",
                    "earfcn": 1650}],
        )
    )  # fmt: skip
    assert got.snapshot == wire.RadioSnapshot(
        technology="lte", registration="home", operator_code="45204", operator_name="Viettel",
        sim_operator_code="45204", sim_operator_name="Viettel", signal_quality_pct=72,
        rssi_dbm=-65.0, rsrp_dbm=-95.0, rsrq_db=-11.0, snr_db=12.5, cell_id=0x1A2B3C4,
        tac=0x2F1A, arfcn=1650, band="eutran-3",
    )  # fmt: skip
    assert got.identity.model == "EC25"
    assert got.identity.imei_sha256 == hashlib.sha256(b"867962041294151").hexdigest()
    assert "867962041294151" not in repr(got)


def test_unknowns_are_absent_never_zero() -> None:
    """ModemManager's NaN, 0 and "" for unknown never become a figure."""
    got = mapping.read(
        state(
            modem=modem(SignalQuality=(0, False), Model="", Revision="", EquipmentIdentifier=""),
            modem3gpp={"RegistrationState": 1, "OperatorCode": "", "OperatorName": ""},
            signal={"Lte": {"rssi": math.nan, "rsrp": -95.0, "rsrq": math.nan}, "Nr5g": {}},
            cells=[{"cell-type": 5, "serving": True, "tac": "", "ci": "FFFFFFF"}],
        )
    )
    snap = got.snapshot
    assert snap.technology == "lte"
    assert snap.rsrp_dbm == -95.0
    assert (snap.rssi_dbm, snap.rsrq_db, snap.snr_db, snap.nr_rsrp_dbm) == (None,) * 4
    assert (snap.operator_code, snap.operator_name, snap.cell_id, snap.tac) == (None,) * 4
    assert snap.signal_quality_pct == 0  # in service and said so: 0 % is a reading
    assert got.identity == mapping.Identity()


def test_figures_beyond_physics_are_left_out_and_named() -> None:
    got = mapping.read(state(signal={"Lte": {"rsrp": 12.0, "rsrq": -11.0, "snr": 999.0}}))
    assert got.snapshot.rsrp_dbm is None
    assert got.snapshot.snr_db is None
    assert got.snapshot.rsrq_db == -11.0
    assert set(got.dropped) == {"rsrp_dbm", "snr_db"}


def test_nsa_takes_the_lte_anchor_cell_and_the_nr_leg_figures() -> None:
    got = mapping.read(
        state(
            modem=modem(AccessTechnologies=LTE | NR),
            signal={"Lte": {"rsrp": -90.0}, "Nr5g": {"rsrp": -88.0, "rsrq": -10.5, "snr": 18.0}},
            cells=[
                {"cell-type": 6, "serving": True, "nrarfcn": 632628},
                {"cell-type": 5, "serving": True, "ci": "1A2B3C5", "tac": "2F1A", "earfcn": 1650},
                {"cell-type": 5, "serving": False, "ci": "999", "earfcn": 100},
            ],
        )
    )
    snap = got.snapshot
    assert (snap.technology, snap.cell_id, snap.arfcn, snap.band) == (
        "nr5g_nsa", 0x1A2B3C5, 1650, "eutran-3",
    )  # fmt: skip
    assert (snap.nr_rsrp_dbm, snap.nr_rsrq_db, snap.nr_snr_db) == (-88.0, -10.5, 18.0)


def test_sa_takes_the_nr_cell() -> None:
    got = mapping.read(
        state(
            modem=modem(AccessTechnologies=NR),
            cells=[{"cell-type": 6, "serving": True, "ci": "ABCDEF012", "tac": "00A1B2",
                    "nrarfcn": 632628}],
        )
    )  # fmt: skip
    assert (got.snapshot.technology, got.snapshot.cell_id, got.snapshot.tac) == (
        "nr5g_sa", 0xABCDEF012, 0xA1B2,
    )  # fmt: skip
    assert got.snapshot.band == "ngran-78"


def test_umts_rssi_comes_from_the_umts_figures() -> None:
    got = mapping.read(
        state(
            modem=modem(AccessTechnologies=UMTS | HSPA_PLUS),
            signal={"Lte": {"rssi": -50.0}, "Umts": {"rssi": -75.0, "rscp": -89.0, "ecio": -7.5}},
            cells=None,
            location={1: "452,04,05A1,0F2A3B1,0"},
        )
    )
    snap = got.snapshot
    assert (snap.technology, snap.rssi_dbm, snap.rscp_dbm, snap.ecio_db) == (
        "umts", -75.0, -89.0, -7.5,
    )  # fmt: skip
    assert (snap.lac, snap.cell_id, snap.tac) == (0x5A1, 0xF2A3B1, None)  # from Location


def test_not_registered_has_no_technology_quality_or_cell() -> None:
    got = mapping.read(
        state(
            modem=modem(AccessTechnologies=LTE, SignalQuality=(0, False)),
            modem3gpp={"RegistrationState": 2, "OperatorCode": "", "OperatorName": ""},
            location={1: "452,04,0,1A2B3C4,2F1A"},  # stale, from before
        )
    )
    assert got.snapshot == wire.RadioSnapshot(registration="searching")


def test_a_modem_without_signal_still_has_its_technology() -> None:
    got = mapping.read(state(signal=None, cells=None))
    assert got.snapshot.technology == "lte"
    assert got.snapshot.rsrp_dbm is None
    assert got.snapshot.rssi_dbm is None


def test_the_modem_of_an_interface_is_found_by_its_ports() -> None:
    assert mapping.serves(modem(), "wwan0")
    assert mapping.serves(modem(), "cdc-wdm0")
    assert not mapping.serves(modem(), "wwan1")


@pytest.mark.parametrize(
    ("cell_type", "arfcn", "band"),
    [(5, 0, "eutran-1"), (5, 1650, "eutran-3"), (5, 3600, "eutran-8"), (5, 9300, "eutran-28"),
     (5, 70000, None), (6, 632628, "ngran-78"), (6, 520110, "ngran-41"), (3, 10700, "utran-1"),
     (3, 3000, "utran-8"), (2, 50, None)],
)  # fmt: skip
def test_bands_from_channel_numbers(cell_type: int, arfcn: int, band: str | None) -> None:
    assert mapping.band(cell_type, arfcn) == band


def test_rows_carry_the_radio_tags_and_fields() -> None:
    snap = wire.RadioSnapshot(technology="umts", registration="roaming", operator_code="45202",
                              rscp_dbm=-90.0, lac=1441)  # fmt: skip
    data = msgspec.convert(
        {"snapshot": msgspec.to_builtins(snap), "modem_model": "E3372"}, RadioData
    )
    [row] = fields.rows(data)
    assert row.tags == {"radio_technology": "umts", "radio_operator": "45202"}
    assert row.fields["radio_rscp_dbm"] == -90.0
    assert row.fields["radio_lac"] == 1441
    assert row.fields["radio_registration"] == "roaming"
    assert row.fields["registered"] is True
    assert row.fields["modem_model"] == "E3372"
    assert "radio_technology" not in row.fields
    assert "radio_operator_code" not in row.fields


def test_a_context_says_whether_the_radio_changed_during_the_run() -> None:
    lte = wire.RadioSnapshot(technology="lte", operator_code="45204", cell_id=1, rsrp_dbm=-90.0)
    same = fields.context_fields(wire.RadioContext(start=lte, end=lte))
    assert same["radio_changed"] is False
    assert same["radio_end_technology"] == "lte"
    fallback = wire.RadioSnapshot(technology="umts", operator_code="45204", cell_id=1)
    moved = fields.context_fields(wire.RadioContext(start=lte, end=fallback))
    assert moved["radio_changed"] is True
    assert moved["radio_rsrp_dbm"] == -90.0
    assert moved["radio_end_rsrp_dbm"] is None
    assert "radio_changed" not in fields.context_fields(wire.RadioContext(start=lte))


def reads(got: Reading | NoRadio) -> Radio:
    radio = Radio(RadioConfig())
    radio.read = lambda _interface: got
    return radio


def test_the_measurement_returns_the_read() -> None:
    snap = wire.RadioSnapshot(technology="lte")
    data = reads(Reading(mapping.Identity(model="EC25"), snap)).run(WWAN0)
    assert data.snapshot == snap
    assert data.modem_model == "EC25"


def test_no_modem_is_a_skip_with_the_reason() -> None:
    with pytest.raises(RadioAbsent, match="no ModemManager") as info:
        reads(NoRadio("no ModemManager on the D-Bus system bus")).run(WWAN0)
    assert info.value.skip


def test_a_fixed_link_is_skipped_without_reading() -> None:
    radio = Radio(RadioConfig())

    def never(_interface: str | None) -> Reading | NoRadio:
        raise AssertionError("read on a fixed link")

    radio.read = never
    with pytest.raises(RadioAbsent, match="not a mobile link"):
        radio.run(Link("eth0", "fixed"))


def test_what_a_broken_or_hostile_firmware_says_is_bounded() -> None:
    got = mapping.read(
        state(
            modem=modem(
                Model="EC25\x00\x1b[31m" + "x" * 500, Revision="\n\t", SignalQuality=(900, True)
            ),
            modem3gpp={
                "RegistrationState": 1,
                "OperatorCode": "4520x",
                "OperatorName": "V" * 200,
            },
            sim={"OperatorIdentifier": " 45204\n", "OperatorName": "Viettel\x07"},
            signal={"Lte": {"rsrp": "-95", "rsrq": True, "snr": math.inf}},
            cells=[
                {"cell-type": 5, "serving": True, "ci": "1A2B3C4D5E6F", "tac": "-1", "earfcn": -5}
            ],
        )
    )
    snap = got.snapshot
    assert snap.operator_code is None  # not 5-6 digits
    assert (snap.sim_operator_code, snap.sim_operator_name) == ("45204", "Viettel")
    assert snap.operator_name == "V" * 64
    assert (snap.rsrp_dbm, snap.rsrq_db, snap.snr_db) == (None, None, None)
    assert (snap.cell_id, snap.tac, snap.arfcn) == (None, None, None)
    assert snap.signal_quality_pct is None
    assert got.identity.model is not None
    assert got.identity.model.isprintable()
    assert len(got.identity.model) == 64
    assert got.identity.firmware is None
    # What is left passes the wire's own checks: the result is never lost for it.
    assert wire.decode(wire.encode(snap), wire.RadioSnapshot) == snap
