"""A ModemManager on a private D-Bus: dbus-daemon + python-dbusmock with our template.

The bus is a ``dbus-daemon`` of its own (its config and socket in a temp folder, nothing to
do with the machine's system or session bus); ModemManager is python-dbusmock (the Debian
package, run by /usr/bin/python3 as its own process) loading tests/harness/mm_template.py,
which has the real daemon's interfaces, names and types. Tests talk to it over the bus.

Usage::

    with ModemManagerMock() as mm:                 # or the `modemmanager` fixture below
        mm.add_modem(scene="lte", interface="wwan0")
        reader = RadioReader(mm.address)           # [radio] bus = mm.address
        mm.scene("nr5g_nsa"); mm.scene("umts"); mm.scene("unregistered")
        mm.unplug()                                # the modem is gone
        mm.stop_service()                          # ModemManager is gone (the bus stays)

Scenes (:data:`SCENES`) are what a Quectel-like modem on Viettel says in each state.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
from jeepney import DBusAddress, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

from .wait import ServiceProcess, eventually, find_binary

TEMPLATE = Path(__file__).resolve().parent / "mm_template.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-dbusmock and python3-dbus are Debian's
SERVICE = "org.freedesktop.ModemManager1"
MANAGER = "/org/freedesktop/ModemManager1"
MOCK = "org.freedesktop.DBus.Mock"

LTE, NR = 1 << 14, 1 << 15
UMTS_HSPA_PLUS = (1 << 5) | (1 << 9)

_EMPTY_SIGNAL: dict[str, Any] = {"Lte": {}, "Nr5g": {}, "Umts": {}, "Gsm": {}}
# scene -> what changes in the modem (update_modem spec without "index").
SCENES: dict[str, dict[str, Any]] = {
    "lte": {
        "modem": {"AccessTechnologies": LTE, "SignalQuality": [72, True], "State": 11},
        "modem3gpp": {"RegistrationState": 1, "OperatorCode": "45204", "OperatorName": "Viettel"},
        "signal": {
            **_EMPTY_SIGNAL,
            "Lte": {"rssi": -65.0, "rsrp": -95.0, "rsrq": -11.0, "snr": 12.5},
        },
        "cells": [
            {"cell-type": 5, "serving": True, "operator-id": "45204", "tac": "2F1A",
             "ci": "1A2B3C4", "physical-ci": "1B3", "earfcn": 1650, "rsrp": -95.0,
             "rsrq": -11.0},
        ],
        "location": {"Location": {"1": "452,04,0,1A2B3C4,2F1A"}},
    },
    "nr5g_nsa": {
        "modem": {"AccessTechnologies": LTE | NR, "SignalQuality": [80, True]},
        "modem3gpp": {"RegistrationState": 1, "OperatorCode": "45204", "OperatorName": "Viettel"},
        "signal": {
            **_EMPTY_SIGNAL,
            "Lte": {"rssi": -60.0, "rsrp": -90.0, "rsrq": -10.0, "snr": 15.0},
            "Nr5g": {"rsrp": -88.0, "rsrq": -10.5, "snr": 18.0},
        },
        "cells": [
            {"cell-type": 5, "serving": True, "operator-id": "45204", "tac": "2F1A",
             "ci": "1A2B3C5", "earfcn": 1650},
            {"cell-type": 6, "serving": True, "operator-id": "45204", "nrarfcn": 632628,
             "physical-ci": "2A"},
        ],
    },
    "umts": {
        "modem": {"AccessTechnologies": UMTS_HSPA_PLUS, "SignalQuality": [45, True]},
        "modem3gpp": {"RegistrationState": 1, "OperatorCode": "45204", "OperatorName": "Viettel"},
        "signal": {**_EMPTY_SIGNAL, "Umts": {"rssi": -75.0, "rscp": -89.0, "ecio": -7.5}},
        "cells": [
            {"cell-type": 3, "serving": True, "operator-id": "45204", "lac": "05A1",
             "ci": "0F2A3B1", "uarfcn": 10700},
        ],
    },
    "unregistered": {
        "modem": {"AccessTechnologies": 0, "SignalQuality": [0, False], "State": 7},
        "modem3gpp": {"RegistrationState": 2, "OperatorCode": "", "OperatorName": ""},
        "signal": dict(_EMPTY_SIGNAL),
        "cells": [],
    },
}  # fmt: skip


def modem_spec(
    index: int = 0,
    *,
    interface: str = "wwan0",
    scene: str = "lte",
    signal: bool = True,
    cells: bool = True,
    sim: bool = True,
    model: str = "EC25",
    revision: str = "EC25EFAR06A06M4G",
    imei: str = "867962041294151",
) -> dict[str, Any]:
    """A whole modem for AddModem: identity, ports, a Viettel SIM, and ``scene``'s state."""
    state = copy.deepcopy(SCENES[scene])
    modem = {
        "Manufacturer": "Quectel",
        "Model": model,
        "Revision": revision,
        "EquipmentIdentifier": imei,
        "Plugin": "quectel",
        "Drivers": ["option", "qmi_wwan"],
        "PrimaryPort": f"cdc-wdm{index}",
        "Ports": [[f"cdc-wdm{index}", 6], [f"ttyUSB{2 + 4 * index}", 3], [interface, 2]],
        **state["modem"],
    }
    spec: dict[str, Any] = {
        "index": index,
        "modem": modem,
        "modem3gpp": {"Imei": imei, **state["modem3gpp"]},
        "signal": state["signal"] if signal else None,
        "cells": state["cells"] if cells else None,
        "location": {"Enabled": 1, **state.get("location", {})},
        "sim": (
            {"OperatorIdentifier": "45204", "OperatorName": "Viettel", "Imsi": "452040000000001"}
            if sim
            else None
        ),
    }
    return spec


_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class ModemManagerMock:
    """A private bus with a mock ModemManager on it; ``address`` is the bus's address."""

    def __init__(self, workdir: Path | None = None) -> None:
        # The socket path must stay short (108 bytes): its own folder under /tmp.
        self._tmp = Path(tempfile.mkdtemp(prefix="pf-mm-", dir="/tmp"))
        self.workdir = workdir or self._tmp
        socket = self._tmp / "bus"
        self.address = f"unix:path={socket}"
        config = self._tmp / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=socket))
        self.bus = ServiceProcess(
            "dbus-daemon",
            [find_binary("dbus-daemon", "dbus"), f"--config-file={config}", "--nofork"],
            self.workdir,
        )
        self.service = ServiceProcess(
            "modemmanager-mock",
            ["/usr/bin/env", f"DBUS_SESSION_BUS_ADDRESS={self.address}", SYSTEM_PYTHON,
             "-m", "dbusmock", "--session", "-t", str(TEMPLATE)],
            self.workdir,
        )  # fmt: skip
        self._conn: DBusConnection | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if (
            not Path(SYSTEM_PYTHON).exists()
            or subprocess.run(
                [SYSTEM_PYTHON, "-c", "import dbusmock"], capture_output=True, check=False
            ).returncode
        ):
            raise RuntimeError(
                "python3-dbusmock is missing: apt-get install -y python3-dbusmock python3-dbus"
            )
        try:
            self.bus.start()
            # dbus-daemon makes the socket file at bind() and accepts only after listen(): a
            # connect in between is refused (seen on a loaded CI machine), so ready means a
            # connection that authenticated, not a file that exists.
            self._conn = self.bus.wait_ready(
                lambda: open_dbus_connection(bus=self.address, auth_timeout=2.0),
                10.0,
                "bus accepting connections",
            )
            self.start_service()
        except BaseException:
            self.stop()  # no dbus-daemon, mock or log file left behind for later tests
            raise

    def start_service(self) -> None:
        """(Re)start ModemManager, with no modem."""
        self.service.start()
        self.service.wait_ready(self.running, 15.0, "ModemManager's name on the bus")

    def stop_service(self) -> None:
        """ModemManager stops (crashed, not installed): its name leaves the bus."""
        self.service.stop()
        eventually(lambda: not self.running(), 5.0, message="ModemManager still on the bus")

    def running(self) -> bool:
        (has,) = (
            self._connection()
            .send_and_get_reply(message_bus.NameHasOwner(SERVICE), timeout=2.0)
            .body
        )
        return bool(has)

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.service.stop()
        self.bus.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _connection(self) -> DBusConnection:
        if self._conn is None:
            raise RuntimeError("the mock ModemManager is not started")
        return self._conn

    def _mock(self, method: str, signature: str, *args: Any, path: str = MANAGER) -> Any:
        address = DBusAddress(path, bus_name=SERVICE, interface=MOCK)
        reply = self._connection().send_and_get_reply(
            new_method_call(address, method, signature, args), timeout=5.0
        )
        if reply.header.message_type.name == "error":
            raise RuntimeError(f"mock ModemManager: {method}: {reply.body}")
        return reply.body

    # --- driving it ------------------------------------------------------------------------

    def add_modem(self, index: int = 0, **kwargs: Any) -> str:
        """Plug in a modem (see :func:`modem_spec` for the options); its object path."""
        (path,) = self._mock("AddModem", "s", json.dumps(modem_spec(index, **kwargs)))
        return str(path)

    def scene(self, name: str, index: int = 0) -> None:
        """Put modem ``index`` into scene ``name`` (:data:`SCENES`)."""
        self.update(index, **copy.deepcopy(SCENES[name]))

    def update(self, index: int = 0, **spec: Any) -> None:
        """Change properties of modem ``index`` (modem=, modem3gpp=, signal=, cells= ...)."""
        self._mock("UpdateModem", "s", json.dumps({"index": index, **spec}))

    def unplug(self, index: int = 0) -> None:
        self._mock("RemoveModem", "u", index)

    def calls(self, path: str) -> list[str]:
        """The names of the methods called on the object at ``path``, in order."""
        (calls,) = self._mock("GetCalls", "", path=path)
        return [str(name) for _when, name, _args in calls]


@pytest.fixture
def modemmanager() -> Iterator[ModemManagerMock]:
    """A mock ModemManager with no modem, on a private bus (re-export it in a test module:
    ``from tests.harness.modemmanager import modemmanager``)."""
    with ModemManagerMock() as mm:
        yield mm
