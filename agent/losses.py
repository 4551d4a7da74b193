"""Results the probe lost, counted by reason for life, in a file a full disk can still take.

Two reasons are counted here; the spool counts its own (``spool_budget``: the oldest forced
out by ``[spool] max_mb``) in its meta table, in the transaction that drops them::

    disk_full     the disk refused results (full, failing) and the memory hold overflowed
                  ([spool] memory_max_mb), or the agent stopped or died while holding them
    unspoolable   a result that can never be spooled: larger than the whole spool budget,
                  or one the wire contract refuses

A counter of what a full disk cost cannot wait for the disk to have room. So ``losses.dat``
is created (512 bytes, really written) while there is room, and then rewritten *in place*:
overwriting blocks a file already owns takes no free block (ext4, tmpfs, vfat; not a
copy-on-write filesystem such as btrfs). It holds two 256-byte slots, each with a
generation number and a CRC, written alternately and fsynced: a power cut tears at most the
slot being written, and the other one still holds the state before it.

The book also records how many results are held in memory right now: after kill -9 or a
power cut those are gone without a word, and the next start counts them (``disk_full``).
When even the in-place write fails (no file yet, a copy-on-write filesystem), the figures
stay in memory, ``unsaved``, and every :meth:`LossBook.flush` (each daemon tick) tries
again::

    book = LossBook(state_dir)
    book.lost("disk_full")     # counted and written through at once
    book.held(12)              # results waiting in memory now
    book.counts()              # {"disk_full": 1, "unspoolable": 0}
    read(state_dir)            # what the file says, for a reader that must not change it
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Final, Literal

from probefleet.agent import _durable
from probefleet.agent.errors import StateError

log = logging.getLogger(__name__)

LOSSES_FILE: Final = "losses.dat"
Reason = Literal["disk_full", "unspoolable"]
REASONS: Final[tuple[Reason, ...]] = ("disk_full", "unspoolable")
_SLOT: Final = 256
_LOG_EVERY_S: Final = 60.0


def _encode(body: dict[str, int]) -> bytes:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    slot = json.dumps({**body, "crc": zlib.crc32(text.encode())}, separators=(",", ":"))
    data = slot.encode("ascii")
    if len(data) >= _SLOT:  # 4 counters of 20 digits fit in 256 bytes many times over
        raise ValueError(f"loss book slot too large: {len(data)} bytes")
    return data.ljust(_SLOT - 1) + b"\n"


def _decode(raw: bytes) -> dict[str, int] | None:
    """A slot's figures, or None when it is empty, torn or not ours."""
    try:
        doc: Any = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    crc = doc.pop("crc", None)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    if crc != zlib.crc32(text.encode()):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in doc.values()):
        return None
    return dict(doc)


def read(state_dir: Path | str) -> dict[str, int]:
    """What the book in ``state_dir`` says now (``gen``, ``held`` and a count per reason),
    touching nothing; FileNotFoundError, OSError, or ValueError when no slot is whole."""
    path = Path(state_dir) / LOSSES_FILE
    raw = path.read_bytes()
    slots = [_decode(raw[i : i + _SLOT]) for i in range(0, min(len(raw), 2 * _SLOT), _SLOT)]
    good = [s for s in slots if s is not None and "gen" in s]
    if not good:
        raise ValueError(f"{path} is unreadable")
    latest = max(good, key=lambda s: s["gen"])
    return {"held": 0, **dict.fromkeys(REASONS, 0), **latest}


class LossBook:
    """Thread-safe: the runner's threads count, the daemon's loop flushes."""

    def __init__(self, state_dir: Path | str) -> None:
        self.path = Path(state_dir) / LOSSES_FILE
        self._lock = threading.Lock()
        self._gen = 0
        self._counts: dict[str, int] = dict.fromkeys(REASONS, 0)
        self._held = 0
        self.unsaved = False
        self.error: str | None = None
        self._logged_at = -1e9
        with self._lock:
            self._load()
            if self._held:
                log.error(
                    "%d result(s) held in memory while the disk was full were lost when the "
                    "agent last stopped (killed, crashed or power cut): counted as disk_full",
                    self._held,
                )
                self._counts["disk_full"] += self._held
                self._held = 0
                self._save()
            elif not self.path.exists():
                self._save()  # while there is room: later writes go in place

    def counts(self) -> dict[str, int]:
        """Results lost, by reason, ever (written or not yet: see ``unsaved``)."""
        with self._lock:
            return dict(self._counts)

    def lost(self, reason: Reason, n: int = 1, *, held: int | None = None) -> None:
        """Count ``n`` results lost for ``reason`` (and, in the same write, how many are
        held in memory now: a crash between two writes must not count them twice)."""
        with self._lock:
            self._counts[reason] += n
            if held is not None:
                self._held = held
            self._save()

    def held(self, n: int) -> None:
        """``n`` results wait in memory now (counted as lost if the agent dies with them)."""
        with self._lock:
            if n != self._held:
                self._held = n
                self._save()

    def flush(self) -> bool:
        """Write what could not be written before; True when the file is up to date."""
        with self._lock:
            return self._save() if self.unsaved else True

    # --- the file --------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            latest = read(self.path.parent)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.error("%s (%s): lost results counted from zero", self.path, exc)
            return
        self._gen = latest["gen"]
        self._held = latest.get("held", 0)
        for reason in REASONS:
            self._counts[reason] = latest.get(reason, 0)

    def _save(self) -> bool:
        gen = self._gen + 1
        data = _encode({"gen": gen, "held": self._held, **self._counts})
        try:
            if self.path.exists():
                fd = os.open(self.path, os.O_WRONLY)
                try:
                    # The slot not holding the latest state: a torn write spares that one.
                    os.pwrite(fd, data, (gen % 2) * _SLOT)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            else:
                blank = b" " * (_SLOT - 1) + b"\n"
                slots = (blank, data) if gen % 2 else (data, blank)
                _durable.write_atomic(self.path, b"".join(slots))
        except (OSError, StateError) as exc:
            self.error = f"cannot write {self.path}: {exc}"
            if not self.unsaved or time.monotonic() - self._logged_at >= _LOG_EVERY_S:
                self._logged_at = time.monotonic()
                log.error("%s; the lost-results counters wait in memory", self.error)
            self.unsaved = True
            return False
        self._gen = gen
        if self.unsaved:
            log.info("lost-results counters written again to %s", self.path)
        self.unsaved = False
        self.error = None
        return True
