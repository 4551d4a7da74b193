"""The one module that imports the D-Bus library (jeepney): a blocking ModemManager client.

Every call has a timeout; every failure (no bus, no ModemManager, a D-Bus error, a modem
that went away, a timeout) is a :class:`DbusError` with a one-line reason, never anything
else. Properties come back as plain Python (variants unwrapped: ``("u", 5)`` -> ``5``).

Usage::

    with ModemManagerBus("system", timeout_s=2.0) as bus:
        for path, interfaces in bus.modems().items(): ...
        props = bus.get_all(path, MODEM)
        cells = bus.call(path, MODEM, "GetCellInfo")

jeepney (pure Python, 3 MiB of RSS) rather than dbus-fast (15 MiB with the asyncio it
needs): see kinds/radio/README.md, *Footprint*.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Final, Self

from jeepney import DBusAddress, MessageType, Properties, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

SERVICE: Final = "org.freedesktop.ModemManager1"
ROOT: Final = "/org/freedesktop/ModemManager1"
MODEM: Final = "org.freedesktop.ModemManager1.Modem"
MODEM_3GPP: Final = "org.freedesktop.ModemManager1.Modem.Modem3gpp"
SIGNAL: Final = "org.freedesktop.ModemManager1.Modem.Signal"
LOCATION: Final = "org.freedesktop.ModemManager1.Modem.Location"
SIM: Final = "org.freedesktop.ModemManager1.Sim"
_OBJECT_MANAGER: Final = "org.freedesktop.DBus.ObjectManager"
UNSUPPORTED: Final = "org.freedesktop.ModemManager1.Error.Core.Unsupported"


class DbusError(Exception):
    """A D-Bus call that gave no answer we can use; ``name`` is the D-Bus error's name, if
    the peer sent one (e.g. :data:`UNSUPPORTED`)."""

    def __init__(self, reason: str, name: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name


def unvariant(variant: tuple[str, Any]) -> Any:
    """A variant's value (jeepney gives ``(signature, value)``) as plain Python; variants
    inside it (``a{sv}``, ``aa{sv}``, ``a{uv}``: ModemManager's dictionaries) likewise."""
    signature, value = variant
    if signature in ("a{sv}", "a{uv}"):
        return values(value)
    if signature == "aa{sv}":
        return [values(item) for item in value]
    return value


def values(props: dict[Any, tuple[str, Any]]) -> dict[Any, Any]:
    """A dictionary of variants (``a{sv}``, ``a{uv}``) with its values unwrapped."""
    return {key: unvariant(variant) for key, variant in props.items()}


def bus_address(bus: str) -> str:
    """Our config's name for a bus ("system", "session" or an address) as jeepney's."""
    return {"system": "SYSTEM", "session": "SESSION"}.get(bus, bus)


class ModemManagerBus:
    """A connection to the bus ModemManager is on; close it (or use ``with``)."""

    def __init__(self, bus: str = "system", *, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        try:
            self._conn: DBusConnection = open_dbus_connection(
                bus=bus_address(bus), auth_timeout=timeout_s
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            # KeyError: "session" without DBUS_SESSION_BUS_ADDRESS; OSError: no socket.
            raise DbusError(f"cannot connect to the D-Bus {bus} bus: {exc!r}") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _send(self, message: Any) -> tuple[Any, ...]:
        try:
            reply = self._conn.send_and_get_reply(message, timeout=self.timeout_s)
        except TimeoutError:
            raise DbusError(f"no answer within {self.timeout_s} s") from None
        except (OSError, ConnectionError, ValueError) as exc:
            raise DbusError(f"D-Bus connection failed: {exc!r}") from None
        if reply.header.message_type == MessageType.error:
            name = reply.header.fields.get(4)  # HeaderFields.error_name
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise DbusError(f"{name}: {text}"[:300], name=name)
        body: tuple[Any, ...] = reply.body
        return body

    def service_running(self) -> bool:
        """Whether ModemManager owns its name on this bus."""
        (has,) = self._send(message_bus.NameHasOwner(SERVICE))
        return bool(has)

    def modems(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every modem object: path -> interface -> properties (ObjectManager)."""
        root = DBusAddress(ROOT, bus_name=SERVICE, interface=_OBJECT_MANAGER)
        (objects,) = self._send(new_method_call(root, "GetManagedObjects"))
        return {
            path: {name: values(props) for name, props in interfaces.items()}
            for path, interfaces in objects.items()
            if MODEM in interfaces
        }

    def get_all(self, path: str, interface: str) -> dict[str, Any]:
        """All properties of ``interface`` on ``path``."""
        address = DBusAddress(path, bus_name=SERVICE, interface=interface)
        (props,) = self._send(Properties(address).get_all())
        return values(props)

    def call(
        self, path: str, interface: str, method: str, signature: str | None = None,
        body: tuple[Any, ...] = (),
    ) -> tuple[Any, ...]:  # fmt: skip
        """Call ``method``; its out-arguments as jeepney gives them (see :func:`values`)."""
        address = DBusAddress(path, bus_name=SERVICE, interface=interface)
        return self._send(new_method_call(address, method, signature, body))


__all__ = [
    "LOCATION",
    "MODEM",
    "MODEM_3GPP",
    "SIGNAL",
    "SIM",
    "UNSUPPORTED",
    "DbusError",
    "ModemManagerBus",
    "unvariant",
    "values",
]
