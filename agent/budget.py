"""The monthly data budget of metered (mobile) links: a durable ledger per interface and month.

Usage is what the carrier bills: every byte the link's kernel counters show, received plus
sent — heavy tests, MQTT, DNS and anything else on the SIM — booked by :meth:`Budget.sync`
(called by :meth:`allows`, :meth:`usage` and around heavy tests). Months are calendar months
in UTC (``YYYY-MM``); a new month starts at zero. A heavy test is refused when its estimate
would take the month past the limit minus ``reserve_mb``, which is kept for results and
health. The estimate is the largest of that link's last three tests of that kind, or
``first_estimate_mb`` before the first one::

    budget = Budget(cfg.probe.state_dir, limits_from(cfg.interfaces), config=cfg.budget)
    ok, why = budget.allows("wwan0", kind="throughput")
    if not ok:
        raise MeasurementError(why, budget.detail("wwan0"))        # -> a "skipped" result
    with budget.metered("wwan0", kind="throughput"):   # books the link, remembers the size
        data = measurement.run(link)
    RuntimeFigures(budgets=tuple(budget.usage()))        # for health

The ledger is one small JSON file, ``budget.json`` in the state dir, replaced atomically
(:mod:`agent._durable`): it is a few hundred bytes written a few times an hour by one
process, so SQLite would add nothing but an opaque file; a technician can read this one.
A disk that refuses the write (full, failing) costs no test and no health report: the
booking holds in memory, logged, and the next :meth:`sync` writes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Protocol

import msgspec
from probefleet.agent import _durable
from probefleet.agent.clock import SANE_AFTER, boot_id
from probefleet.agent.errors import StateError
from probefleet.core import wire
from probefleet.core.configkit import Section
from probefleet.kinds.health.payload import BudgetUsage

log = logging.getLogger(__name__)

MB = 1_000_000  # config figures are SI megabytes: below a carrier's MiB, so on the safe side
LEDGER_FILE = "budget.json"
_KEEP_MONTHS = 13  # a year of history in the file, for a technician
_KEEP_TESTS = 3


class BudgetConfig(Section, frozen=True, kw_only=True):
    """[budget]: applies to [[interfaces]] with monthly_budget_mb > 0."""

    # Heavy tests stop this far below the limit: the rest is for results, health and MQTT.
    reserve_mb: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 500
    # Assumed size of a link's first heavy test; afterwards the largest of its last three.
    first_estimate_mb: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 150


class NicCounters(Protocol):
    """psutil's ``snetio`` (net_io_counters(pernic=True) values), the fields used here."""

    @property
    def bytes_recv(self) -> int: ...
    @property
    def bytes_sent(self) -> int: ...


class MeteredLink(Protocol):
    """What :func:`limits_from` reads of a ``[[interfaces]]`` entry."""

    @property
    def name(self) -> str: ...
    @property
    def monthly_budget_mb(self) -> int: ...


def limits_from(interfaces: Iterable[MeteredLink]) -> dict[str, int]:
    """interface -> monthly limit in bytes, for the metered ones."""
    return {i.name: i.monthly_budget_mb * MB for i in interfaces if i.monthly_budget_mb > 0}


class _Reading(msgspec.Struct, forbid_unknown_fields=True):
    """The link's counters when last booked. A new boot or a new ifindex (modem re-plugged)
    means they restarted from zero."""

    boot_id: str
    ifindex: int
    total_bytes: Annotated[int, msgspec.Meta(ge=0)]


class _Ledger(msgspec.Struct, forbid_unknown_fields=True):
    version: int = 1
    used: dict[str, dict[str, Annotated[int, msgspec.Meta(ge=0)]]] = {}  # month -> if -> B
    tests: dict[str, dict[str, list[int]]] = {}  # interface -> kind -> last sizes, newest last
    counters: dict[str, _Reading] = {}  # interface -> last reading booked


def _psutil_counters() -> Mapping[str, NicCounters]:
    import psutil

    return psutil.net_io_counters(pernic=True)


def _ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


def _mb(n: int) -> str:
    return f"{n / MB:,.0f} MB"


class Budget:
    """The ledger; thread-safe. ``limits``: interface -> bytes per month (absent or 0:
    unmetered). Seams for tests: ``clock`` (aware UTC now), ``counters``, ``boot`` (boot id),
    ``ifindex``."""

    def __init__(
        self,
        state_dir: str | Path,
        limits: Mapping[str, int],
        *,
        config: BudgetConfig | None = None,
        clock: Callable[[], dt.datetime] = wire.utc_now,
        counters: Callable[[], Mapping[str, NicCounters]] = _psutil_counters,
        boot: Callable[[], str] = boot_id,
        ifindex: Callable[[str], int] = _ifindex,
    ) -> None:
        self.path = Path(state_dir) / LEDGER_FILE
        self.limits = {name: int(b) for name, b in limits.items() if b > 0}
        self.config = config or BudgetConfig()
        self._clock = clock
        self._counters = counters
        self._boot = boot
        self._ifindex = ifindex
        self._lock = threading.RLock()
        self._unsaved = False
        self._save_logged_at = -1e9
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create {self.path.parent}: {exc.strerror}") from None
        self._ledger = self._load()

    # --- reading ---------------------------------------------------------------------------

    def month(self) -> str:
        """The month being booked. Before the clock is sane (a Pi boots in the past) the
        latest month in the ledger: usage must never fall back into an old month."""
        now = self._clock()
        current = now.astimezone(dt.UTC).strftime("%Y-%m")
        if now < SANE_AFTER and self._ledger.used:
            return max(self._ledger.used)
        return current

    def limit(self, interface: str | None) -> int:
        return self.limits.get(interface or "", 0)

    def used(self, interface: str) -> int:
        with self._lock:
            return self._ledger.used.get(self.month(), {}).get(interface, 0)

    def estimate(self, interface: str, kind: str = "throughput") -> int:
        """Bytes the next ``kind`` test on ``interface`` will likely move."""
        with self._lock:
            sizes = self._ledger.tests.get(interface, {}).get(kind, [])
        return max(sizes) if sizes else self.config.first_estimate_mb * MB

    def near_limit(self, interface: str, fraction: float = 0.9) -> bool:
        limit = self.limit(interface)
        return limit > 0 and self.used(interface) >= fraction * limit

    def allows(
        self, interface: str | None, estimated_bytes: int | None = None, *, kind: str = "throughput"
    ) -> tuple[bool, str]:
        """May a heavy test of about ``estimated_bytes`` (default: :meth:`estimate`) run on
        ``interface`` now? With the reason, for the log or a skipped result."""
        limit = self.limit(interface)
        if not interface or not limit:
            return True, f"{interface or 'the default route'} is unmetered"
        self.sync()
        with self._lock:
            month, used = self.month(), self.used(interface)
            need = self.estimate(interface, kind) if estimated_bytes is None else estimated_bytes
        reserve = self.config.reserve_mb * MB
        state = f"data budget of {interface} for {month}: {_mb(used)} of {_mb(limit)} used"
        if used + need + reserve <= limit:
            return True, f"{state}; this test needs ~{_mb(need)}"
        return (
            False,
            f"{state}; this test needs ~{_mb(need)} and {_mb(reserve)} is kept for results",
        )

    def detail(self, interface: str, kind: str = "throughput") -> dict[str, float]:
        """Numbers for a skipped result's ``detail``."""
        return {
            "budget_used_bytes": float(self.used(interface)),
            "budget_limit_bytes": float(self.limit(interface)),
            "budget_estimate_bytes": float(self.estimate(interface, kind)),
            "budget_reserve_bytes": float(self.config.reserve_mb * MB),
        }

    def usage(self) -> list[BudgetUsage]:
        """This month's figures of every metered link, for health (books the counters first)."""
        self.sync()
        with self._lock:
            month = self.month()
            return [
                BudgetUsage(
                    interface=name, month=month, used_bytes=self.used(name), limit_bytes=limit
                )
                for name, limit in sorted(self.limits.items())
            ][:32]

    # --- booking ---------------------------------------------------------------------------

    def charge(self, interface: str, used_bytes: int) -> None:
        """Add ``used_bytes`` to this month. :meth:`sync` calls it with the counters' growth;
        call it yourself only for traffic the link's counters do not show."""
        if used_bytes < 0:
            raise ValueError(f"used_bytes = {used_bytes}: cannot be negative")
        if used_bytes == 0 or not self.limit(interface):
            return
        with self._lock:
            self._add(interface, used_bytes)
            self._save()

    def note_test(self, interface: str, used_bytes: int, *, kind: str = "throughput") -> None:
        """Remember a heavy test's size for the next estimate (books nothing)."""
        if used_bytes <= 0 or not self.limit(interface):
            return
        with self._lock:
            sizes = self._ledger.tests.setdefault(interface, {}).setdefault(kind, [])
            sizes.append(int(used_bytes))
            del sizes[:-_KEEP_TESTS]
            self._save()

    def sync(self) -> dict[str, int]:
        """Book every metered link's counter growth since the last booking; return what was
        booked per link (links seen for the first time only get a starting point)."""
        if not self.limits:
            return {}
        readings = self._counters()
        boot = self._boot()
        booked: dict[str, int] = {}
        with self._lock:
            changed = False
            for name in self.limits:
                nic = readings.get(name)
                if nic is None:
                    continue  # link down or modem unplugged: nothing moved
                now = _Reading(boot, self._ifindex(name), nic.bytes_recv + nic.bytes_sent)
                last = self._ledger.counters.get(name)
                self._ledger.counters[name] = now
                changed = changed or now != last
                if last is None:
                    # First sight of this link: what the counters hold happened at some
                    # unknown time, maybe last month. Book from here on.
                    continue
                same = last.boot_id == now.boot_id and last.ifindex == now.ifindex
                # Counters restart at zero on a reboot or when the modem's interface is
                # re-created: then everything they show is new traffic.
                grown = now.total_bytes - last.total_bytes
                delta = grown if same and grown >= 0 else now.total_bytes
                booked[name] = delta
                if delta:
                    self._add(name, delta)
            if changed or self._unsaved:
                self._save()
        return booked

    @contextlib.contextmanager
    def metered(self, interface: str | None, *, kind: str = "throughput") -> Iterator[None]:
        """Around a heavy test: book the link before and after; when the block ends without
        an exception, remember what it moved as the next estimate."""
        if not interface or not self.limit(interface):
            yield
            return
        self.sync()
        try:
            yield
        except BaseException:
            self.sync()  # a failed test still used data; its size is no estimate
            raise
        moved = self.sync().get(interface)
        if moved:
            self.note_test(interface, moved, kind=kind)

    # --- persistence -------------------------------------------------------------------------

    def _add(self, interface: str, used_bytes: int) -> None:
        month = self._ledger.used.setdefault(self.month(), {})
        month[interface] = month.get(interface, 0) + int(used_bytes)

    def _save(self) -> None:
        for old in sorted(self._ledger.used)[:-_KEEP_MONTHS]:
            del self._ledger.used[old]
        try:
            _durable.write_atomic(self.path, msgspec.json.format(msgspec.json.encode(self._ledger)))
        except StateError as exc:
            # Booked in memory all the same; the next sync writes it (a full disk must not
            # turn a finished test into a crash, nor cost health its figures).
            now = time.monotonic()
            if not self._unsaved or now - self._save_logged_at >= 60:
                log.error("budget: %s; the booking waits in memory", exc)
                self._save_logged_at = now
            self._unsaved = True
            return
        if self._unsaved:
            log.info("budget: %s written again", self.path)
        self._unsaved = False

    def _load(self) -> _Ledger:
        for temp in _durable.clean_temps(self.path):
            log.warning("budget: removed %s, left by an interrupted write", temp)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return _Ledger()
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            return msgspec.json.decode(raw, type=_Ledger)
        except msgspec.DecodeError as exc:
            return self._recover(exc)

    def _recover(self, exc: Exception) -> _Ledger:
        """An unreadable ledger (a failing SD card; atomic writes never leave half a file):
        keep it aside and count this month as spent on every metered link. Wrong on the
        bill's safe side; the next month starts afresh."""
        aside = self.path.with_name(LEDGER_FILE + ".corrupt")
        with contextlib.suppress(OSError):
            self.path.replace(aside)
        ledger = _Ledger()
        self._ledger = ledger
        ledger.used[self.month()] = dict(self.limits)
        log.error(
            "budget: %s is unreadable (%s); moved to %s. This month counts as spent on %s "
            "until it ends (delete the ledger to start from zero instead)",
            self.path,
            exc,
            aside,
            ", ".join(sorted(self.limits)) or "no metered link",
        )
        self._save()
        return ledger
