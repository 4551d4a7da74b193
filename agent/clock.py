"""What the probe knows about its clock: synchronised or not, since when, and the boot.

A Pi has no battery clock: it boots in the past and jumps when NTP answers. The kernel
knows whether its clock is disciplined (adjtimex reports TIME_ERROR while it is not), so we
ask it rather than trusting any one NTP daemon's files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
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
    """Remembers when the clock was last seen synchronised, on the monotonic clock."""

    def __init__(self) -> None:
        self._last_synced_mono: float | None = None

    def state(self) -> wire.Clock:
        now_mono = time.monotonic()
        synced = kernel_says_synced() is True and wire.utc_now() >= SANE_AFTER
        if synced:
            self._last_synced_mono = now_mono
        since = None if self._last_synced_mono is None else now_mono - self._last_synced_mono
        return wire.Clock(
            synced=synced, uptime_s=time.clock_gettime(time.CLOCK_BOOTTIME), since_sync_s=since
        )
