"""A python-dbusmock template of ModemManager: the manager, its modems and their SIMs, with
the real daemon's interface, property and method names and D-Bus types (ModemManager's
introspection/org.freedesktop.ModemManager1*.xml, 1.22).

Run by the Debian interpreter (python3-dbusmock, python3-dbus), not the venv::

    DBUS_SESSION_BUS_ADDRESS=... /usr/bin/python3 -m dbusmock --session -t mm_template.py

Tests drive it through the mock interface of the manager object (tests/harness/modemmanager.py
wraps these): ``AddModem(spec_json) -> path``, ``UpdateModem(spec_json)``,
``RemoveModem(index)`` (unplugged). A spec is JSON: ``{"index": 0, "modem": {...},
"modem3gpp": {...}, "signal": {...} | null (no Signal interface), "sim": {...} | null,
"location": {...}, "cells": [...] | null (GetCellInfo unsupported)}``; property values are
JSON and take their D-Bus type from the tables below.
"""

from __future__ import annotations

import json
from typing import Any

import dbus
import dbusmock
from dbusmock import MOCK_IFACE

BUS_NAME = "org.freedesktop.ModemManager1"
MAIN_OBJ = "/org/freedesktop/ModemManager1"
IS_OBJECT_MANAGER = True
SYSTEM_BUS = False  # our private bus is a "session" bus of its own

MODEM = "org.freedesktop.ModemManager1.Modem"
MODEM_3GPP = "org.freedesktop.ModemManager1.Modem.Modem3gpp"
SIGNAL = "org.freedesktop.ModemManager1.Modem.Signal"
LOCATION = "org.freedesktop.ModemManager1.Modem.Location"
SIM = "org.freedesktop.ModemManager1.Sim"
UNSUPPORTED = "org.freedesktop.ModemManager1.Error.Core.Unsupported"

# property -> D-Bus signature, and its value on a freshly plugged modem.
TYPES: dict[str, dict[str, tuple[str, Any]]] = {
    MODEM: {
        "Sim": ("o", "/"),
        "SimSlots": ("ao", []),
        "PrimarySimSlot": ("u", 0),
        "Bearers": ("ao", []),
        "SupportedCapabilities": ("au", [4 | 8]),  # GSM_UMTS | LTE
        "CurrentCapabilities": ("u", 4 | 8),
        "MaxBearers": ("u", 1),
        "MaxActiveBearers": ("u", 1),
        "MaxActiveMultiplexedBearers": ("u", 0),
        "Manufacturer": ("s", ""),
        "Model": ("s", ""),
        "Revision": ("s", ""),
        "CarrierConfiguration": ("s", ""),
        "CarrierConfigurationRevision": ("s", ""),
        "HardwareRevision": ("s", ""),
        "DeviceIdentifier": ("s", ""),
        "Device": ("s", ""),
        "Physdev": ("s", ""),
        "Drivers": ("as", []),
        "Plugin": ("s", ""),
        "PrimaryPort": ("s", ""),
        "Ports": ("a(su)", []),
        "EquipmentIdentifier": ("s", ""),
        "UnlockRequired": ("u", 1),  # MM_MODEM_LOCK_NONE
        "UnlockRetries": ("a{uu}", {}),
        "State": ("i", 8),  # REGISTERED
        "StateFailedReason": ("u", 0),
        "AccessTechnologies": ("u", 0),
        "SignalQuality": ("(ub)", [0, False]),
        "OwnNumbers": ("as", []),
        "PowerState": ("u", 3),  # ON
        "SupportedModes": ("a(uu)", []),
        "CurrentModes": ("(uu)", [0, 0]),
        "SupportedBands": ("au", []),
        "CurrentBands": ("au", []),
        "SupportedIpFamilies": ("u", 7),
    },
    MODEM_3GPP: {
        "Imei": ("s", ""),
        "RegistrationState": ("u", 4),  # UNKNOWN
        "OperatorCode": ("s", ""),
        "OperatorName": ("s", ""),
        "EnabledFacilityLocks": ("u", 0),
        "SubscriptionState": ("u", 0),
        "EpsUeModeOperation": ("u", 0),
        "Pco": ("a(ubay)", []),
        "InitialEpsBearer": ("o", "/"),
        "InitialEpsBearerSettings": ("a{sv}", {}),
        "PacketServiceState": ("u", 0),
        "Nr5gRegistrationSettings": ("a{sv}", {}),
    },
    SIGNAL: {
        "Rate": ("u", 0),
        "RssiThreshold": ("u", 0),
        "ErrorRateThreshold": ("b", False),
        "Cdma": ("a{sv}", {}),
        "Evdo": ("a{sv}", {}),
        "Gsm": ("a{sv}", {}),
        "Umts": ("a{sv}", {}),
        "Lte": ("a{sv}", {}),
        "Nr5g": ("a{sv}", {}),
    },
    LOCATION: {
        "Capabilities": ("u", 1 | 2 | 4),  # 3GPP_LAC_CI | GPS_RAW | GPS_NMEA
        "SupportedAssistanceData": ("u", 0),
        "Enabled": ("u", 1),
        "SignalsLocation": ("b", False),
        "Location": ("a{uv}", {}),
        "SuplServer": ("s", ""),
        "AssistanceDataServers": ("as", []),
        "GpsRefreshRate": ("u", 30),
    },
    SIM: {
        "Active": ("b", True),
        "SimIdentifier": ("s", ""),
        "Imsi": ("s", ""),
        "Eid": ("s", ""),
        "OperatorIdentifier": ("s", ""),
        "OperatorName": ("s", ""),
        "EmergencyNumbers": ("as", []),
        "PreferredNetworks": ("a(su)", []),
        "Gid1": ("ay", []),
        "Gid2": ("ay", []),
        "SimType": ("u", 1),
        "EsimStatus": ("u", 0),
        "Removability": ("u", 1),
    },
}
# Keys of GetCellInfo's dictionaries (MMCellInfo*) and of Signal's (MMSignal: all "d").
CELL_TYPES: dict[str, str] = {
    "cell-type": "u",
    "serving": "b",
    "operator-id": "s",
    "lac": "s",
    "tac": "s",
    "ci": "s",
    "physical-ci": "s",
    "base-station-id": "s",
    "arfcn": "u",
    "uarfcn": "u",
    "earfcn": "u",
    "nrarfcn": "u",
    "psc": "u",
    "rx-level": "u",
    "timing-advance": "u",
    "bandwidth": "u",
    "serving-cell-type": "u",
    "rsrp": "d",
    "rsrq": "d",
    "sinr": "d",
    "rscp": "d",
    "ecio": "d",
    "path-loss": "i",
}
METHODS: dict[str, list[tuple[str, str, str, str]]] = {
    MODEM: [
        ("Enable", "b", "", ""),
        ("ListBearers", "", "ao", "ret = dbus.Array([], signature='o')"),
        ("CreateBearer", "a{sv}", "o", "ret = dbus.ObjectPath('/')"),
        ("DeleteBearer", "o", "", ""),
        ("Reset", "", "", ""),
        ("FactoryReset", "s", "", ""),
        ("SetPowerState", "u", "", ""),
        ("SetCurrentCapabilities", "u", "", ""),
        ("SetCurrentModes", "(uu)", "", ""),
        ("SetCurrentBands", "au", "", ""),
        ("SetPrimarySimSlot", "u", "", ""),
        ("Command", "su", "s", "ret = ''"),
    ],
    MODEM_3GPP: [
        ("Register", "s", "", ""),
        ("Scan", "", "aa{sv}", "ret = dbus.Array([], signature='a{sv}')"),
        ("SetEpsUeModeOperation", "u", "", ""),
        ("SetInitialEpsBearerSettings", "a{sv}", "", ""),
        ("DisableFacilityLock", "(us)", "", ""),
        ("SetPacketServiceState", "u", "", ""),
        ("SetNr5gRegistrationSettings", "a{sv}", "", ""),
    ],
    SIGNAL: [
        ("SetupThresholds", "a{sv}", "", ""),
    ],
    LOCATION: [
        ("Setup", "ub", "", ""),
        ("SetSuplServer", "s", "", ""),
        ("InjectAssistanceData", "ay", "", ""),
        ("SetGpsRefreshRate", "u", "", ""),
    ],
    SIM: [
        ("SendPin", "s", "", ""),
        ("SendPuk", "ss", "", ""),
        ("EnablePin", "sb", "", ""),
        ("ChangePin", "ss", "", ""),
        ("SetPreferredNetworks", "a(su)", "", ""),
    ],
}


def typed(signature: str, value: Any) -> Any:
    """A JSON value as the D-Bus type ``signature`` (the subset ModemManager uses)."""
    simple = {
        "s": dbus.String,
        "o": dbus.ObjectPath,
        "u": dbus.UInt32,
        "i": dbus.Int32,
        "b": dbus.Boolean,
        "d": dbus.Double,
        "y": dbus.Byte,
    }
    if signature in simple:
        return simple[signature](value)
    if signature.startswith("(") and signature.endswith(")"):
        inner = _split(signature[1:-1])
        return dbus.Struct(
            [typed(s, v) for s, v in zip(inner, value, strict=True)], signature=signature[1:-1]
        )
    if signature == "a{sv}":  # Signal's figures: doubles; anything else: strings
        return dbus.Dictionary(
            {k: dbus.Double(v) if isinstance(v, float) else v for k, v in value.items()},
            signature="sv",
        )
    if signature == "a{uv}":  # Location: source -> value (3GPP LAC/CI is a string)
        return dbus.Dictionary(
            {dbus.UInt32(int(k)): dbus.String(v, variant_level=1) for k, v in value.items()},
            signature="uv",
        )
    if signature == "a{uu}":
        return dbus.Dictionary(
            {dbus.UInt32(int(k)): dbus.UInt32(v) for k, v in value.items()}, signature="uu"
        )
    if signature.startswith("a"):
        return dbus.Array([typed(signature[1:], v) for v in value], signature=signature[1:])
    raise ValueError(f"no conversion for {signature!r}")


def _split(signature: str) -> list[str]:
    """The complete types of a struct's signature ("ubay" -> ["u", "b", "ay"])."""
    out, i = [], 0
    while i < len(signature):
        j = i
        while signature[j] == "a":
            j += 1
        if signature[j] in "({":
            depth, k = 0, j
            while True:
                depth += signature[k] in "({"
                depth -= signature[k] in ")}"
                k += 1
                if depth == 0:
                    break
            j = k - 1
        out.append(signature[i : j + 1])
        i = j + 1
    return out


def cell(props: dict[str, Any]) -> Any:
    return dbus.Dictionary(
        {k: typed(CELL_TYPES[k], v) for k, v in props.items()}, signature="sv", variant_level=0
    )


def _props(interface: str, given: dict[str, Any]) -> dict[str, Any]:
    table = TYPES[interface]
    unknown = set(given) - set(table)
    if unknown:
        raise dbus.exceptions.DBusException(f"{interface} has no {sorted(unknown)}")
    return {name: typed(sig, given.get(name, default)) for name, (sig, default) in table.items()}


def _modem_path(index: int) -> str:
    return f"{MAIN_OBJ}/Modem/{index}"


def _sim_path(index: int) -> str:
    return f"{MAIN_OBJ}/SIM/{index}"


def load(mock: Any, _parameters: dict[str, Any]) -> None:
    mock.AddMethods(
        BUS_NAME,
        [
            ("ScanDevices", "", "", ""),
            ("SetLogging", "s", "", ""),
            ("ReportKernelEvent", "a{sv}", "", ""),
            ("InhibitDevice", "sb", "", ""),
        ],
    )
    mock.AddProperties(BUS_NAME, dbus.Dictionary({"Version": "1.22.0"}, signature="sv"))
    mock.AddMethod(MOCK_IFACE, "AddModem", "s", "o", add_modem)
    mock.AddMethod(MOCK_IFACE, "UpdateModem", "s", "", update_modem)
    mock.AddMethod(MOCK_IFACE, "RemoveModem", "u", "", remove_modem)


def add_modem(self: Any, spec_json: str) -> str:
    spec = json.loads(spec_json)
    index = int(spec.get("index", 0))
    path, sim_path = _modem_path(index), _sim_path(index)
    modem = dict(spec.get("modem") or {})
    if spec.get("sim") is not None:
        modem.setdefault("Sim", sim_path)
        self.AddObject(sim_path, SIM, _props(SIM, spec["sim"]), METHODS[SIM])
    self.AddObject(path, MODEM, _props(MODEM, modem), METHODS[MODEM])
    obj = dbusmock.get_object(path)
    obj.AddMethod(MODEM, "GetCellInfo", "", "aa{sv}", get_cell_info)
    obj.mm_cells = spec.get("cells")
    obj.AddProperties(MODEM_3GPP, _props(MODEM_3GPP, spec.get("modem3gpp") or {}))
    obj.AddMethods(MODEM_3GPP, METHODS[MODEM_3GPP])
    if spec.get("signal") is not None:
        obj.AddProperties(SIGNAL, _props(SIGNAL, spec["signal"]))
        obj.AddMethods(SIGNAL, METHODS[SIGNAL])
        obj.AddMethod(SIGNAL, "Setup", "u", "", signal_setup)
    if spec.get("location") is not None:
        obj.AddProperties(LOCATION, _props(LOCATION, spec["location"]))
        obj.AddMethods(LOCATION, METHODS[LOCATION])
        obj.AddMethod(LOCATION, "GetLocation", "", "a{uv}", get_location)
    self.object_manager_emit_added(path)
    return path


def update_modem(self: Any, spec_json: str) -> None:
    """Change what a modem says (a new cell, a fall back to 3G): only the given properties."""
    spec = json.loads(spec_json)
    obj = dbusmock.get_object(_modem_path(int(spec.get("index", 0))))
    for key, interface in (
        ("modem", MODEM),
        ("modem3gpp", MODEM_3GPP),
        ("signal", SIGNAL),
        ("location", LOCATION),
    ):
        _set(obj, interface, spec.get(key) or {})
    if "cells" in spec:
        obj.mm_cells = spec["cells"]
    if spec.get("sim"):
        _set(dbusmock.get_object(_sim_path(int(spec.get("index", 0)))), SIM, spec["sim"])


def _set(obj: Any, interface: str, given: dict[str, Any]) -> None:
    # Set() per property (PropertiesChanged for each): dbusmock's UpdateProperties cannot
    # wrap a struct such as SignalQuality's (ub) in a variant.
    table = TYPES[interface]
    for name, value in given.items():
        obj.Set(interface, name, typed(table[name][0], value))


def remove_modem(self: Any, index: int) -> None:
    """The modem is unplugged: its objects go, InterfacesRemoved is emitted."""
    path = _modem_path(int(index))
    self.object_manager_emit_removed(path)
    self.RemoveObject(path)
    if _sim_path(int(index)) in dbusmock.mockobject.objects:
        self.RemoveObject(_sim_path(int(index)))


def get_cell_info(self: Any) -> Any:
    cells = getattr(self, "mm_cells", None)
    if cells is None:  # a modem (or plugin) without cell info, as ModemManager says it
        raise dbus.exceptions.DBusException("Cannot get cell info", name=UNSUPPORTED)
    return dbus.Array([cell(c) for c in cells], signature="a{sv}")


def signal_setup(self: Any, rate: int) -> None:
    self.Set(SIGNAL, "Rate", dbus.UInt32(rate))


def get_location(self: Any) -> Any:
    return self.Get(LOCATION, "Location")
