"""Run-time ceilings on what the centre drives: the destination guard of each run, commanded
bandwidth tests spaced out, and the bandwidth-test bytes of a month.

**Centre-driven** heavy runs are those a command asked for and those of a kind whose table
the remote config in force changed (the Overlay agent.limits made). agent.runner asks
:meth:`Allowance.allows` once it holds the heavy lock, before the data budget: a commanded
one is skipped when the last commanded heavy run began less than ``[remote]
min_interval_s`` ago; any centre-driven one when this month's centre-driven bytes plus its
estimate (the largest of that kind's last three) would pass ``max_monthly_mb``. Its bytes
(download + upload of its result; a failed run counts as its estimate) are booked in
``remote-usage.json`` in the state dir, so a restart does not start the month afresh::

    ok, why, detail = allowance.allows("throughput", on_demand=True)   # -> a skipped result
    with allowance.metered("throughput", on_demand=True) as book:
        data = book(measurement.run(link))

:meth:`guard` is the check of every address a run connects to (kinds.common.destinations),
for the kinds whose remote config named destinations the file does not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from probefleet.agent import _durable
from probefleet.agent.clock import SANE_AFTER
from probefleet.agent.config import NO_OVERLAY, Overlay, RemoteSection
from probefleet.agent.errors import StateError
from probefleet.core import wire
from probefleet.kinds.common import destinations

log = logging.getLogger(__name__)

USAGE_FILE = "remote-usage.json"
MB = 1_000_000
_KEEP_SIZES = 3
T = TypeVar("T")


class _Usage(msgspec.Struct, forbid_unknown_fields=True):
    version: int = 1
    month: str = ""
    used_bytes: int = 0
    sizes: dict[str, list[int]] = {}  # kind -> bytes of its last centre-driven runs


def moved_bytes(outcome: Any) -> int | None:
    """Download + upload bytes a bandwidth result reports (None: it reports none)."""
    counts = [getattr(outcome, f"{d}_bytes", None) for d in ("download", "upload")]
    known = [c for c in counts if isinstance(c, int) and c >= 0]
    return sum(known) if known else None


class Allowance:
    """Thread-safe. Seams for tests: ``clock`` (aware UTC now), ``mono`` (monotonic)."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        clock: Callable[[], dt.datetime] = wire.utc_now,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(state_dir) / USAGE_FILE
        self._clock = clock
        self._mono = mono
        self._lock = threading.Lock()
        self.limits = RemoteSection()
        self.overlay: Overlay = NO_OVERLAY
        self.policy = destinations.Policy()
        self._last_commanded: float | None = None
        self._unsaved = False
        self._usage = self._load()

    def configure(self, remote: RemoteSection) -> None:
        """The [remote] limits and overlay of the config now in force."""
        policy = destinations.Policy(remote.allow_destinations, allow_private=remote.allow_private)
        with self._lock:
            self.limits, self.overlay, self.policy = remote, remote.overlay(), policy

    def guard(self, kind: str) -> destinations.Guard | None:
        """A fresh guard for one run of ``kind``; None when the file names all it reaches."""
        trusted = self.overlay.guarded.get(kind)
        return None if trusted is None else destinations.Guard(self.policy, trusted)

    def centre_driven(self, kind: str, *, on_demand: bool) -> bool:
        return on_demand or kind in self.overlay.kinds

    # --- before and after a heavy run ----------------------------------------------------------

    def allows(self, kind: str, *, on_demand: bool) -> tuple[bool, str, dict[str, float]]:
        """May this heavy run start now? (ok, why not, the figures for a skipped result)."""
        if not self.centre_driven(kind, on_demand=on_demand):
            return True, "", {}
        with self._lock:
            limits = self.limits
            now = self._mono()
            if on_demand and self._last_commanded is not None:
                ago = now - self._last_commanded
                if ago < limits.min_interval_s:
                    return (
                        False,
                        f"commanded bandwidth tests: at most one per [remote] min_interval_s = "
                        f"{limits.min_interval_s} s; the last one began {ago:.0f} s ago",
                        {
                            "since_last_s": round(ago, 3),
                            "min_interval_s": float(limits.min_interval_s),
                        },
                    )
            month, used = self._month(), self._usage.used_bytes
            estimate = max(self._usage.sizes.get(kind, []), default=0)
        cap = limits.max_monthly_mb * MB
        if cap == 0 or used + estimate > cap:
            return (
                False,
                f"[remote] max_monthly_mb: bandwidth tests the centre drove moved "
                f"{used / MB:,.0f} of {limits.max_monthly_mb:,} MB in {month}; this one needs "
                f"~{estimate / MB:,.0f} MB",
                {
                    "remote_used_bytes": float(used),
                    "remote_limit_bytes": float(cap),
                    "remote_estimate_bytes": float(estimate),
                },
            )
        return True, "", {}

    @contextlib.contextmanager
    def metered(self, kind: str, *, on_demand: bool) -> Iterator[Callable[[T], T]]:
        """Around a heavy run that :meth:`allows`: ``book(outcome)`` inside records what it
        moved; a run that raises counts as its estimate."""
        if not self.centre_driven(kind, on_demand=on_demand):
            yield lambda outcome: outcome
            return
        if on_demand:
            with self._lock:
                self._last_commanded = self._mono()
        booked = False

        def book(outcome: T) -> T:
            nonlocal booked
            booked = True
            self._book(kind, moved_bytes(outcome), measured=True)
            return outcome

        try:
            yield book
        finally:
            if not booked:
                self._book(kind, None, measured=False)

    def used(self) -> tuple[str, int]:
        """(month, centre-driven bandwidth-test bytes booked in it)."""
        with self._lock:
            return self._month(), self._usage.used_bytes

    # --- the ledger --------------------------------------------------------------------------

    def _month(self) -> str:
        now = self._clock()
        if now < SANE_AFTER and self._usage.month:
            return self._usage.month  # a Pi boots in 1970: never fall back into an old month
        month = now.astimezone(dt.UTC).strftime("%Y-%m")
        if month != self._usage.month:
            self._usage.month, self._usage.used_bytes = month, 0
        return month

    def _book(self, kind: str, moved: int | None, *, measured: bool) -> None:
        with self._lock:
            self._month()
            sizes = self._usage.sizes.setdefault(kind, [])
            if moved is None:
                moved = max(sizes, default=0)  # failed, or a result without byte counts
            elif measured:
                sizes.append(moved)
                del sizes[:-_KEEP_SIZES]
            self._usage.used_bytes += moved
            self._save()

    def _save(self) -> None:
        try:
            _durable.write_atomic(self.path, msgspec.json.encode(self._usage))
        except StateError as exc:
            if not self._unsaved:  # once: a full disk lasts
                log.error("remote usage: %s; the booking waits in memory", exc)
            self._unsaved = True
            return
        self._unsaved = False

    def _load(self) -> _Usage:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=_Usage)
        except FileNotFoundError:
            return _Usage()
        except (OSError, msgspec.DecodeError) as exc:
            # Unreadable: the month counts as spent (the safe side); the next one is fresh.
            log.error(
                "remote usage: %s is unreadable (%s): this month counts as spent", self.path, exc
            )
            month = self._clock().astimezone(dt.UTC).strftime("%Y-%m")
            return _Usage(month=month, used_bytes=2**62)
