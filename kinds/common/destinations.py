"""Where the centre may point a measurement: config markers, the address policy, the guard.

A kind marks each config field that names a destination (``Annotated[str, marker("url")]``)
so that the agent finds them without knowing the kind (agent.limits). The probe's own file
is trusted; a destination only the centre's remote config names must pass the file's
``[remote]`` policy: its host listed in ``allow_destinations`` (a name, ``*.suffix``, an
address or a network), and no private, loopback, link-local, CGNAT, multicast, reserved or
unspecified address unless ``allow_private`` is true or a listed network of such addresses
holds it (listing ``0.0.0.0/0`` never opens the office LAN).

At run time a **guard** (installed around a run by agent.runner, for the kinds whose
remote config named new destinations) checks every address a name resolves to, after the
lookup and before any connect: :func:`probefleet.kinds.common.net.resolve` calls it, so a
name that resolves to the office router is refused like the router's address would be.
Threads that a measurement starts carry the guard (:func:`carried`); threads started by
third-party code during a heavy run (speedtest-cli's) see it through a process-wide
fallback, since heavy runs never overlap.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from probefleet.kinds.common.names import is_host_name
from probefleet.kinds.errors import MeasurementError

Format = Literal["url", "url_or_path", "service", "host", "resolver"]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
KEY = "destination"  # msgspec.Meta(extra=...) key the agent looks for
T = TypeVar("T")


def marker(fmt: Format) -> dict[str, Any]:
    """``msgspec.Meta(extra=marker("url"))``: this field names a destination, written as
    ``url`` (http(s)://host...), ``url_or_path`` (a URL or a file on the probe), ``service``
    (a URL or host:port), ``host`` (a name or an address) or ``resolver`` ("system", IP,
    IP:port, [IPv6]:port)."""
    return {KEY: fmt}


class Refused(MeasurementError):
    """A destination the probe's ``[remote]`` policy refuses: nothing was sent to it."""


# --- reading hosts out of config values ----------------------------------------------------


def host_of(fmt: Format, value: str) -> str | None:
    """The host ``value`` names (no brackets, lower case), or None when it names none
    ("system", a file path) or cannot be read (the kind's own checks say why)."""
    text = value.strip()
    host: str | None
    if fmt == "host":
        host = text.strip("[]")
    elif fmt == "resolver":
        host = None if text == "system" else _split_host_port(text, port_optional=True)
    elif fmt == "service" and "://" not in text:
        host = _split_host_port(text, port_optional=False)
    else:  # url, url_or_path, service URL
        if text.startswith("//"):
            text = "http:" + text
        if "://" not in text:
            return None  # a file path (url_or_path)
        try:
            host = urlsplit(text).hostname
        except ValueError:
            return None
    return normal(host) if host else None


def is_path(fmt: Format, value: str) -> bool:
    """A ``url_or_path`` value that names a file on the probe rather than a URL."""
    return fmt == "url_or_path" and "://" not in value and not value.startswith("//")


def _split_host_port(text: str, *, port_optional: bool) -> str | None:
    if text.startswith("["):
        host, _, _rest = text[1:].partition("]")
        return host or None
    if text.count(":") > 1:  # a bare IPv6 address
        return text if port_optional else None
    host, sep, _port = text.rpartition(":")
    if not sep:
        return text if port_optional else None
    return host or None


def normal(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def address_of(host: str) -> Address | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 on the wire
    return address


# --- the address policy --------------------------------------------------------------------

_SPECIAL: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "documentation"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "private (NAT64)"),
        ("100::/64", "discard"),
        ("2001:db8::/32", "documentation"),
        ("fc00::/7", "private (ULA)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)


def special(address: Address) -> str | None:
    """What kind of non-public address this is ("private", "loopback", ...), or None."""
    for network, label in _SPECIAL:
        if address.version == network.version and address in network:
            return label
    return None


def _special_only(network: Network) -> bool:
    return any(
        network.version == block.version and network.subnet_of(block)  # type: ignore[arg-type]
        for block, _ in _SPECIAL
    )


class Policy:
    """``[remote] allow_destinations`` and ``allow_private``, parsed. ValueError names an
    entry that is neither a host name, ``*.suffix``, an address nor a network."""

    def __init__(self, allow: Sequence[str] = (), *, allow_private: bool = False) -> None:
        self.allow_private = allow_private
        self.names: set[str] = set()
        self.suffixes: list[str] = []  # ".example.org" for "*.example.org"
        self.networks: list[Network] = []
        for entry in allow:
            self._add(entry)

    def _add(self, entry: str) -> None:
        text = entry.strip()
        try:
            self.networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            return
        except ValueError:
            pass
        if text.startswith("*.") and is_host_name(text[2:]):
            self.suffixes.append(normal(text[1:]))
        elif is_host_name(text) and not text.replace(".", "").isdigit():
            self.names.add(normal(text))
        else:
            raise ValueError("expected a host name, *.domain, an address or a network")

    def refusal(self, host: str) -> str | None:
        """Why the centre may not name ``host`` (a name or an address), or None. A name's
        addresses are checked when it is resolved (:meth:`address_refusal`)."""
        address = address_of(host)
        if address is not None:
            return self.address_refusal(address, by_name=False)
        name = normal(host)
        if name in self.names or any(name.endswith(s) for s in self.suffixes):
            return None
        return f"{name} is not in [remote] allow_destinations"

    def address_refusal(self, address: Address, *, by_name: bool) -> str | None:
        """Why ``address`` may not be reached: not listed (an address the centre wrote
        itself; ``by_name``: a listed name resolved to it), or not public."""
        holding = [n for n in self.networks if n.version == address.version and address in n]
        label = special(address)
        if label and not self.allow_private and not any(_special_only(n) for n in holding):
            return f"{address} is {label} ([remote] allow_private = false)"
        if not by_name and not holding:
            return f"{address} is not in [remote] allow_destinations"
        return None


# --- the run-time guard --------------------------------------------------------------------


class Guard:
    """One run's check of every address it connects to. ``trusted``: hosts the probe's own
    file names (never checked); their addresses, and every address admitted once, pass
    again (a prober connecting to the address its lookup gave)."""

    def __init__(self, policy: Policy, trusted: Iterable[str] = ()) -> None:
        self.policy = policy
        self._trusted = {normal(h) for h in trusted}
        self._admitted: set[str] = set()
        self._lock = threading.Lock()

    def trusts(self, host: str) -> bool:
        with self._lock:
            return normal(host) in self._trusted

    def trust(self, hosts: Iterable[str]) -> None:
        """Trust these too for the rest of the run (servers of a list the file names)."""
        with self._lock:
            self._trusted.update(normal(h) for h in hosts)

    def _passes(self, host: str) -> bool:
        key = normal(host)
        with self._lock:
            return key in self._trusted or key in self._admitted

    def check_name(self, host: str) -> None:
        """Before the lookup: a name the policy does not list is not even looked up."""
        if self._passes(host):
            return
        if address_of(host) is None and (why := self.policy.refusal(host)):
            raise Refused(f"{normal(host)}: refused, {why}")

    def admit(self, host: str, found: list[T]) -> list[T]:
        """After the lookup: the (family, sockaddr) entries that may be connected to;
        Refused when none may."""
        if self._passes(host):
            self._remember(found)
            return found
        by_name = address_of(host) is None
        if by_name and (why := self.policy.refusal(host)):
            raise Refused(f"{normal(host)}: refused, {why}")
        kept: list[T] = []
        first_refusal = ""
        for entry in found:
            address = address_of(str(entry[1][0]).split("%", 1)[0])  # type: ignore[index]
            why = (
                "not an IP address"
                if address is None
                else self.policy.address_refusal(address, by_name=by_name)
            )
            if why is None:
                kept.append(entry)
            elif not first_refusal:
                first_refusal = why
        if not kept:
            what = f"{normal(host)} resolves to {first_refusal}" if by_name else first_refusal
            raise Refused(f"refused: {what}; nothing was sent")
        self._remember(kept)
        return kept

    def _remember(self, found: Sequence[Any]) -> None:
        with self._lock:
            self._admitted.update(str(entry[1][0]).split("%", 1)[0].lower() for entry in found)


_current: contextvars.ContextVar[Guard | None] = contextvars.ContextVar("probefleet_guard")
_fallback: list[Guard | None] = [None]  # a heavy run's guard, for threads others start


def current() -> Guard | None:
    """The guard of the run this thread works for (None: nothing to check)."""
    try:
        return _current.get()
    except LookupError:
        return _fallback[0]


@contextlib.contextmanager
def guarded(guard: Guard | None, *, process_wide: bool = False) -> Iterator[None]:
    """Run the block under ``guard`` (None: unguarded, also for threads it starts).
    ``process_wide``: threads started by code that does not carry context see it too (only
    for heavy runs, which never overlap)."""
    token = _current.set(guard)
    previous = _fallback[0]
    if process_wide:
        _fallback[0] = guard
    try:
        yield
    finally:
        if process_wide:
            _fallback[0] = previous
        _current.reset(token)


def carried(target: Callable[..., Any]) -> Callable[..., Any]:
    """``target`` to run in a new thread with this thread's guard (and other context)."""
    context = contextvars.copy_context()

    def run(*args: Any) -> Any:
        return context.run(target, *args)

    return run
