"""Pure: what ModemManager says of one modem (its D-Bus properties) -> our RadioSnapshot.

Names, types and units follow ModemManager's introspection XML
(``org.freedesktop.ModemManager1.Modem*.xml``) and its enums (``ModemManager-enums.h``).
ModemManager says "unknown" with NaN, 0 or "": those become absent fields, never a figure. A
value outside the wire's physical ranges (a broken firmware) is dropped, not sent, so one
odd figure never costs the result. No D-Bus here: tests feed it dictionaries (the goldens of
real modems, tests/golden/radio/) and kinds/radio/reader.py feeds it what it read.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from probefleet.core import wire

# MMModemAccessTechnology bits.
_GSM: Final = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4)  # GSM, GSM_COMPACT, GPRS, EDGE
_UMTS: Final = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9)  # UMTS, HSDPA/UPA, HSPA(+)
_LTE: Final = (1 << 14) | (1 << 16) | (1 << 17)  # LTE, LTE_CAT_M, LTE_NB_IOT
_NR: Final = 1 << 15  # 5GNR

# MMModem3gppRegistrationState -> ours (SMS-only and CSFB variants are still registered).
_REGISTRATION: Final[dict[int, wire.Registration]] = {
    0: "idle",
    1: "home",
    2: "searching",
    3: "denied",
    4: "unknown",
    5: "roaming",
    6: "home",  # HOME_SMS_ONLY
    7: "roaming",  # ROAMING_SMS_ONLY
    8: "emergency_only",
    9: "home",  # HOME_CSFB_NOT_PREFERRED
    10: "roaming",  # ROAMING_CSFB_NOT_PREFERRED
    11: "emergency_only",  # ATTACHED_RLOS: restricted local operator services
}
REGISTERED: Final = frozenset({"home", "roaming"})

# MMCellType -> the technology of a cell and the key of its channel number.
_CELL_GSM, _CELL_UMTS, _CELL_LTE, _CELL_NR = 2, 3, 5, 6
_ARFCN_KEY: Final = {
    _CELL_GSM: "arfcn",
    _CELL_UMTS: "uarfcn",
    _CELL_LTE: "earfcn",
    _CELL_NR: "nrarfcn",
}
_CELLS_FOR: Final[dict[str | None, tuple[int, ...]]] = {
    "gsm": (_CELL_GSM,),
    "umts": (_CELL_UMTS,),
    "lte": (_CELL_LTE,),
    "nr5g_nsa": (_CELL_LTE, _CELL_NR),  # the LTE anchor carries the cell identity
    "nr5g_sa": (_CELL_NR,),
}
# MMModemLocationSource 3GPP_LAC_CI: "MCC,MNC,LAC,CI,TAC", the last three in hex.
_LOCATION_3GPP: Final = 1
_HEX: Final = re.compile(r"^[0-9A-Fa-f]{1,9}\Z")
_OPERATOR_CODE: Final = re.compile(r"^[0-9]{5,6}\Z")

# Downlink channel numbers -> band (3GPP TS 36.101 table 5.7.3-1, 38.104 table 5.4.2.3-1,
# 25.101 table 5.2). Bands used in Vietnam and its neighbours first: the first match wins
# where NR bands overlap (n78 inside n77).
_EUTRAN: Final = (
    (1, 0, 599), (2, 600, 1199), (3, 1200, 1949), (4, 1950, 2399), (5, 2400, 2649),
    (7, 2750, 3449), (8, 3450, 3799), (20, 6150, 6449), (28, 9210, 9659),
    (38, 37750, 38249), (40, 38650, 39649), (41, 39650, 41589),
)  # fmt: skip
_NGRAN: Final = (
    (78, 620000, 653333), (41, 499200, 537999), (1, 422000, 434000), (3, 361000, 376000),
    (28, 151600, 160600), (8, 185000, 192000), (77, 620000, 680000), (40, 460000, 480000),
)  # fmt: skip
_UTRAN: Final = ((1, 10562, 10838), (8, 2937, 3088), (5, 4357, 4458))


@dataclass(frozen=True)
class ModemState:
    """What was read of one modem, as plain Python (variants unwrapped). An interface the
    modem does not have (no Signal, no SIM) or a call it does not support is None."""

    path: str
    modem: Mapping[str, Any]
    modem3gpp: Mapping[str, Any] | None = None
    signal: Mapping[str, Any] | None = None
    sim: Mapping[str, Any] | None = None
    cells: Sequence[Mapping[str, Any]] | None = None  # Modem.GetCellInfo
    location: Mapping[int, Any] | None = None  # Modem.Location.GetLocation


@dataclass(frozen=True)
class Identity:
    """The modem, for the radio kind: model, firmware, and the IMEI hashed (never itself)."""

    model: str | None = None
    firmware: str | None = None
    imei_sha256: str | None = None


@dataclass(frozen=True)
class NoRadio:
    """Why there is no radio context: no ModemManager, no modem for this interface ..."""

    reason: str


@dataclass(frozen=True)
class Reading:
    """One read of a modem: who it is and what it said."""

    identity: Identity
    snapshot: wire.RadioSnapshot
    dropped: tuple[str, ...] = field(default=())  # figures out of range (logged, not sent)


def serves(modem: Mapping[str, Any], interface: str) -> bool:
    """Whether ``interface`` (e.g. "wwan0") is one of this modem's ports."""
    if modem.get("PrimaryPort") == interface:
        return True
    return any(port and port[0] == interface for port in modem.get("Ports") or ())


def technology(bits: int | None) -> wire.Technology | None:
    """AccessTechnologies -> the generation in use: 5GNR with LTE is NSA, 5GNR alone SA."""
    if not bits:
        return None
    if bits & _NR:
        return "nr5g_nsa" if bits & _LTE else "nr5g_sa"
    if bits & _LTE:
        return "lte"
    if bits & _UMTS:
        return "umts"
    if bits & _GSM:
        return "gsm"
    return None  # POTS, CDMA/EVDO: not a technology of ours


def registration(state: int | None) -> wire.Registration | None:
    return None if state is None else _REGISTRATION.get(int(state), "unknown")


def band(cell_type: int, arfcn: int) -> str | None:
    """The band of a downlink channel number; None when our table does not know it."""
    table, prefix = {
        _CELL_LTE: (_EUTRAN, "eutran"),
        _CELL_NR: (_NGRAN, "ngran"),
        _CELL_UMTS: (_UTRAN, "utran"),
    }.get(cell_type, ((), ""))
    for number, low, high in table:
        if low <= arfcn <= high:
            return f"{prefix}-{number}"
    return None


def read(state: ModemState) -> Reading:
    """The snapshot and identity of one modem."""
    figures: dict[str, Any] = {}
    m3 = state.modem3gpp or {}
    reg = registration(m3.get("RegistrationState")) if state.modem3gpp is not None else None
    tech = technology(state.modem.get("AccessTechnologies"))
    if reg is not None and reg not in REGISTERED:
        tech = None  # not registered: whatever the bits say, there is no service
    figures.update(
        technology=tech,
        registration=reg,
        operator_code=_code(m3.get("OperatorCode")),
        operator_name=_name(m3.get("OperatorName")),
    )
    if state.sim is not None:
        figures["sim_operator_code"] = _code(state.sim.get("OperatorIdentifier"))
        figures["sim_operator_name"] = _name(state.sim.get("OperatorName"))
    quality = state.modem.get("SignalQuality")
    if isinstance(quality, (tuple, list)) and quality and tech is not None:
        figures["signal_quality_pct"] = int(quality[0])  # 0 when unknown: kept only in service
    figures.update(_signal(state.signal, tech))
    if reg is None or reg in REGISTERED:  # searching, denied ...: no serving cell to speak of
        figures.update(_cell(state.cells, state.location, tech))
    return _checked(figures, _identity(state.modem))


def _identity(modem: Mapping[str, Any]) -> Identity:
    imei = _text(modem.get("EquipmentIdentifier"), 64)
    return Identity(
        model=_text(modem.get("Model"), 64),
        firmware=_text(modem.get("Revision"), 64),
        imei_sha256=hashlib.sha256(imei.encode()).hexdigest() if imei else None,
    )


def _signal(signal: Mapping[str, Any] | None, tech: wire.Technology | None) -> dict[str, Any]:
    """Modem.Signal's per-technology dictionaries; a modem without Signal gives nothing."""
    if signal is None:
        return {}
    lte, nr = signal.get("Lte") or {}, signal.get("Nr5g") or {}
    umts, gsm = signal.get("Umts") or {}, signal.get("Gsm") or {}
    rssi_from = {"umts": (umts, lte, gsm), "gsm": (gsm, umts, lte)}.get(
        tech or "", (lte, umts, gsm)
    )
    return {
        "rssi_dbm": next((v for d in rssi_from if (v := _number(d.get("rssi"))) is not None), None),
        "rsrp_dbm": _number(lte.get("rsrp")),
        "rsrq_db": _number(lte.get("rsrq")),
        "snr_db": _number(lte.get("snr")),
        "nr_rsrp_dbm": _number(nr.get("rsrp")),
        "nr_rsrq_db": _number(nr.get("rsrq")),
        "nr_snr_db": _number(nr.get("snr")),
        "rscp_dbm": _number(umts.get("rscp")),
        "ecio_db": _number(umts.get("ecio")),
    }


def _cell(
    cells: Sequence[Mapping[str, Any]] | None,
    location: Mapping[int, Any] | None,
    tech: wire.Technology | None,
) -> dict[str, Any]:
    """The serving cell: from GetCellInfo, else from the 3GPP location (LAC/CI/TAC only)."""
    serving = [c for c in cells or () if c.get("serving")]
    wanted = _CELLS_FOR.get(tech, ())
    serving.sort(
        key=lambda c: wanted.index(c.get("cell-type")) if c.get("cell-type") in wanted else 99
    )
    if serving:
        cell = serving[0]
        kind = int(cell.get("cell-type") or 0)
        arfcn = _count(cell.get(_ARFCN_KEY.get(kind, "")))
        return {
            "cell_id": _hex(cell.get("ci")),
            "tac": _hex(cell.get("tac")),
            "lac": _hex(cell.get("lac")),
            "arfcn": arfcn,
            "band": band(kind, arfcn) if arfcn is not None else None,
        }
    text = (location or {}).get(_LOCATION_3GPP)
    if isinstance(text, str) and text.count(",") == 4:
        _mcc, _mnc, lac, ci, tac = text.split(",")
        return {"lac": _hex(lac), "cell_id": _hex(ci), "tac": _hex(tac)}
    return {}


def _checked(figures: dict[str, Any], identity: Identity) -> Reading:
    """The snapshot, with every figure the wire would refuse left out (and named)."""
    present = {k: v for k, v in figures.items() if v is not None}
    dropped = []
    for name in list(present):
        try:
            msgspec.convert({name: present[name]}, wire.RadioSnapshot)
        except msgspec.ValidationError:
            dropped.append(name)
            del present[name]
    return Reading(identity, wire.RadioSnapshot(**present), tuple(dropped))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _count(value: Any) -> int | None:
    """A channel number. ModemManager leaves an unknown one out of the cell's dictionary,
    and 0 is a real channel (EARFCN 0: band 1's lowest), so 0 stays."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _hex(value: Any) -> int | None:
    """ModemManager gives LAC, TAC and cell ids as hex strings; "" or "FFFF.." is unknown."""
    if not isinstance(value, str) or not _HEX.match(value):
        return None
    number = int(value, 16)
    return None if number == 0 or set(value.upper()) == {"F"} else number


def _code(value: Any) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    return text if _OPERATOR_CODE.match(text) else None


def _name(value: Any) -> str | None:
    return _text(value, 64)


def _text(value: Any, limit: int) -> str | None:
    """Printable text, whitespace runs as one space, at most ``limit`` characters."""
    text = " ".join(value.split()) if isinstance(value, str) else ""
    return "".join(c for c in text if c.isprintable())[:limit] or None


def registered(snapshot: wire.RadioSnapshot) -> bool:
    return snapshot.registration in REGISTERED
