"""Reading the modem behind an interface from ModemManager: a Reading, or NoRadio and why.

Never raises: no D-Bus, no ModemManager, no modem for the interface, a modem unplugged
half-way, a D-Bus error or a timeout all give :class:`NoRadio` with a one-line reason, so a
measurement runs exactly as it would without a modem. Every call has a timeout
(``timeout_s``); a read makes at most seven calls on one connection, opened and closed per
read (ModemManager restarts, modems come and go: nothing to keep stale).

Usage::

    reader = RadioReader(bus="system", signal_rate_s=10, timeout_s=2.0)
    got = reader.read("wwan0")          # Reading(identity, snapshot) or NoRadio(reason)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Final

from probefleet.kinds.radio import dbus
from probefleet.kinds.radio.mapping import ModemState, NoRadio, Reading, read, serves

log = logging.getLogger(__name__)

_LOCATION_3GPP: Final = 1  # MMModemLocationSource 3GPP_LAC_CI


class RadioReader:
    """Reads ModemManager on ``bus`` ("system", "session" or a D-Bus address)."""

    def __init__(self, bus: str = "system", *, signal_rate_s: int = 10, timeout_s: float = 2.0):
        self.bus = bus
        self.signal_rate_s = signal_rate_s
        self.timeout_s = timeout_s
        self._lock = threading.Lock()  # the runner reads from several measurement threads
        self._refused: set[str] = set()  # modems that refused Signal.Setup: not asked again
        self._no_cells: set[str] = set()  # modems that said GetCellInfo is unsupported

    def read(self, interface: str | None) -> Reading | NoRadio:
        """The modem serving ``interface`` now; NoRadio with the reason when there is none."""
        try:
            with dbus.ModemManagerBus(self.bus, timeout_s=self.timeout_s) as bus:
                return self._read(bus, interface)
        except dbus.DbusError as exc:
            return NoRadio(f"ModemManager could not be read: {exc.reason}")
        except Exception as exc:  # a bug here must never cost the measurement
            log.exception("reading ModemManager failed")
            return NoRadio(f"reading ModemManager failed: {exc!r}"[:300])

    def _read(self, bus: dbus.ModemManagerBus, interface: str | None) -> Reading | NoRadio:
        if not bus.service_running():
            return NoRadio(f"no ModemManager on the D-Bus {self.bus} bus")
        modems = bus.modems()
        if not modems:
            return NoRadio("ModemManager sees no modem")
        path = _pick(modems, interface)
        if isinstance(path, NoRadio):
            return path
        interfaces = modems[path]
        signal = interfaces.get(dbus.SIGNAL)
        # Setup(rate) when the modem's rate is not ours: once per modem, and again only
        # after ModemManager restarted (its rates start at 0 again).
        if (
            signal is not None
            and self.signal_rate_s
            and signal.get("Rate") != self.signal_rate_s
            and path not in self._refused
        ):
            signal = self._setup_signal(bus, path, signal)
        state = ModemState(
            path=path,
            modem=interfaces[dbus.MODEM],
            modem3gpp=interfaces.get(dbus.MODEM_3GPP),
            signal=signal,
            sim=self._sim(bus, interfaces[dbus.MODEM].get("Sim")),
            cells=self._cells(bus, path),
            location=None,
        )
        if not state.cells and dbus.LOCATION in interfaces:
            state = _with_location(state, self._location(bus, path, interfaces[dbus.LOCATION]))
        reading = read(state)
        if reading.dropped:
            log.warning("modem %s: figures out of range, left out: %s", path, reading.dropped)
        return reading

    def _setup_signal(
        self, bus: dbus.ModemManagerBus, path: str, signal: dict[str, Any]
    ) -> dict[str, Any]:
        """Signal.Setup(rate): the modem refreshes its figures from then on. The first read
        after it may still be empty; the next one has them."""
        try:
            bus.call(path, dbus.SIGNAL, "Setup", "u", (self.signal_rate_s,))
            return bus.get_all(path, dbus.SIGNAL)
        except dbus.DbusError as exc:
            with self._lock:
                self._refused.add(path)
            log.info("modem %s: Signal.Setup(%d) refused: %s", path, self.signal_rate_s, exc)
            return signal

    def _sim(self, bus: dbus.ModemManagerBus, sim_path: Any) -> dict[str, Any] | None:
        if not isinstance(sim_path, str) or sim_path in ("", "/"):
            return None
        try:
            return bus.get_all(sim_path, dbus.SIM)
        except dbus.DbusError:
            return None  # no SIM object (removed): the SIM's operator is absent

    def _cells(self, bus: dbus.ModemManagerBus, path: str) -> list[dict[str, Any]] | None:
        if path in self._no_cells:
            return None
        try:
            (cells,) = bus.call(path, dbus.MODEM, "GetCellInfo")
        except dbus.DbusError as exc:
            if exc.name in (dbus.UNSUPPORTED, "org.freedesktop.DBus.Error.UnknownMethod"):
                with self._lock:
                    self._no_cells.add(path)  # an older ModemManager or a modem without it
            return None
        return [dbus.values(cell) for cell in cells]

    def _location(
        self, bus: dbus.ModemManagerBus, path: str, location: dict[str, Any]
    ) -> dict[int, Any] | None:
        if not int(location.get("Enabled") or 0) & _LOCATION_3GPP:
            return None
        try:
            (got,) = bus.call(path, dbus.LOCATION, "GetLocation")
        except dbus.DbusError:
            return None
        return dbus.values(got)


def _pick(modems: dict[str, dict[str, dict[str, Any]]], interface: str | None) -> str | NoRadio:
    """The modem serving ``interface``; the only one when its ports do not say (a modem in
    USB-Ethernet mode names no net port), never a guess among several."""
    matching = [
        p for p, i in sorted(modems.items()) if interface and serves(i[dbus.MODEM], interface)
    ]
    if matching:
        return matching[0]
    if len(modems) == 1:
        return next(iter(modems))
    ports = sorted(str(i[dbus.MODEM].get("PrimaryPort")) for i in modems.values())
    return NoRadio(
        f"no modem for {interface or 'the default route'} (modems at {', '.join(ports)})"
    )


def _with_location(state: ModemState, location: dict[int, Any] | None) -> ModemState:
    return dataclasses.replace(state, location=location)
