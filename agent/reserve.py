"""``reserve.bin``: room kept in the state dir for the agent's last writes on a full disk.

A file of ``[spool] reserve_mb``, really allocated (``posix_fallocate``: not a sparse file
that would take no block). It is made at start, and again once the disk has room, but only
when that leaves at least four times its size free: the reserve never takes the last room
from results. When the agent stops while the disk refuses results, the daemon deletes it
(:meth:`Reserve.release`) so that the results still held in memory can be spooled before
the process, and its memory, goes::

    reserve = Reserve(state_dir, 4_000_000)
    reserve.ensure()       # at start and every few seconds; cheap when it exists
    reserve.release()      # stopping with the disk full: its room goes to the spool
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Final

from probefleet.agent import _durable
from probefleet.agent.errors import StateError

log = logging.getLogger(__name__)

RESERVE_FILE: Final = "reserve.bin"
_ROOM_FACTOR: Final = 4  # made only when this many times its size is free


class Reserve:
    def __init__(self, state_dir: Path | str, size_bytes: int) -> None:
        self.path = Path(state_dir) / RESERVE_FILE
        self.size_bytes = size_bytes

    @property
    def present(self) -> bool:
        try:
            return self.size_bytes > 0 and self.path.stat().st_size >= self.size_bytes
        except OSError:
            return False

    def ensure(self) -> bool:
        """Make the reserve if it is missing and the disk has room for it; True if present."""
        if self.size_bytes <= 0 or self.present:
            return self.size_bytes > 0
        try:
            stat = os.statvfs(self.path.parent)
        except OSError:
            return False
        if stat.f_bavail * stat.f_frsize < _ROOM_FACTOR * self.size_bytes:
            return False
        temp: str | None = None
        try:
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".reserve.", suffix=".tmp")
            try:
                os.posix_fallocate(fd, 0, self.size_bytes)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
            temp = None
            _durable.fsync_dir(self.path.parent)
        except (OSError, StateError) as exc:
            log.warning("cannot make the disk reserve %s: %s", self.path, exc)
            return False
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        log.info("disk reserve %s: %d bytes kept free for a stop on a full disk", self.path,
                 self.size_bytes)  # fmt: skip
        return True

    def release(self) -> bool:
        """Delete the reserve (its room goes to whoever writes next); True if it was there."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.error("cannot delete the disk reserve %s: %s", self.path, exc)
            return False
        with contextlib.suppress(StateError):
            _durable.fsync_dir(self.path.parent)
        log.warning("disk reserve %s deleted: its room goes to the results held in memory",
                    self.path)  # fmt: skip
        return True
