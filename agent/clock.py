"""What the probe knows about its clock: synchronised or not, since when, and the boot.

A Pi has no battery clock: it boots in the past and jumps when NTP answers. The kernel
knows whether its clock is disciplined (adjtimex reports TIME_ERROR while it is not), so we
ask it rather than trusting any one NTP daemon's files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path

from probefleet.core import wire

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
SANE_AFTER = wire.SANE_AFTER
_TIME_ERROR = 5  # adjtimex(2): "clock not synchronized"


class _Timex(ctypes.Structure):
    # Only `modes` matters (0 = read only); the rest of struct timex is padding for us.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 204)]


def kernel_says_synced() -> bool | None:
    """True/False from adjtimex(2); None where the call is unavailable."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        state = libc.adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != _TIME_ERROR)


def boot_id() -> str:
    """The kernel's id of this boot (a fresh UUID at every boot)."""
    return BOOT_ID_PATH.read_text(encoding="ascii").strip()


class ClockWatch:
    """Remembers when the clock was last seen synchronised, on the monotonic clock.

    :meth:`reading` is what a result carries: its ``measured_at`` and its clock state taken
    together, at one moment (a measurement straddling an NTP step must not pair a time from
    before the step with a state from after it). The seams (``wall``, ``mono``, ``boottime``,
    ``synced``) are for tests; by default the system's clocks and adjtimex(2)."""

    def __init__(
        self,
        *,
        wall: Callable[[], dt.datetime] | None = None,
        mono: Callable[[], float] = time.monotonic,
        boottime: Callable[[], float] | None = None,
        synced: Callable[[], bool | None] | None = None,
    ) -> None:
        self._last_synced_mono: float | None = None
        self._wall = wall
        self._mono = mono
        self._boottime = boottime
        self._synced = synced
        self._lock = threading.Lock()

    def reading(self) -> tuple[dt.datetime, wire.Clock]:
        """(now in UTC, the clock's state now): one reading, for one result."""
        with self._lock:  # threads measure at once; _last_synced_mono is shared
            # Kernel state first (a syscall), then the three clocks back to back.
            kernel = (self._synced or kernel_says_synced)() is True
            now = (self._wall or wire.utc_now)()
            uptime = (self._boottime or _boottime)()
            now_mono = self._mono()
            synced = kernel and now >= SANE_AFTER
            if synced:
                self._last_synced_mono = now_mono
            since = None if self._last_synced_mono is None else now_mono - self._last_synced_mono
            return now, wire.Clock(synced=synced, uptime_s=uptime, since_sync_s=since)

    def state(self) -> wire.Clock:
        return self.reading()[1]


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)
