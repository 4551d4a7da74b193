"""The outbox: every result on disk (SQLite) before it is published, until the centre stores it.

One file, ``spool.db`` in the state dir, in WAL mode with ``synchronous=FULL``: a result whose
:meth:`Spool.append` returned survives kill -9 and a power cut. The same transaction takes
the next sequence number, so a seq is never given twice (not within a boot, not ever: the
collector numbers a probe's results for life)::

    spool = Spool(state_dir, max_bytes=100_000_000)
    seq = spool.append("latency", lambda seq: (topic, encode(build(seq=seq))))
    for row in spool.after(0, limit=20): publish(row.topic, row.payload)
    spool.confirm(stored_through=41, also=[(45, 50)])     # a StoredAck: delete those

Disk budget and drop policy: the payloads may take at most ``max_bytes``. Appending past it
drops the oldest *health* results first (the probe's own vital signs: the next one says as
much), then the oldest of any other kind. Each drop is counted in the same transaction
(``dropped`` survives restarts; the reason ``spool_budget`` in health and status, beside
agent.losses' own reasons) and logged: never silent. A result larger than the
whole budget is refused with :class:`~probefleet.agent.errors.ResultTooLarge` (a StateError
that retrying cannot cure); a full disk or a failing card raise StateError itself.

A new life under an old name: seqs are per probe *for life*, and the collector keeps a
watermark per probe. A reflashed SD card or a wiped state dir starts a fresh spool at seq 1
while the collector's watermark is, say, 40 000. A StoredAck naming a seq at or beyond our
``next_seq`` (above anything this spool ever issued) can only come from that previous life:
:meth:`Spool.renumber` then gives every spooled result a fresh seq above it, durably, in one
transaction, and moves ``next_seq`` past it (``renumbered`` counts the results, for life)::

    moved = spool.renumber(40_000, reencode)   # None if 40 000 < next_seq: nothing to do
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from probefleet.agent.errors import ResultTooLarge, StateError

log = logging.getLogger(__name__)

SPOOL_FILE = "spool.db"
# Health is dropped first: it is replaced every minute, and its loss says little.
DROP_FIRST_KIND = "health"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    spooled_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    kind: str
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SpoolFigures:
    depth: int  # results held
    bytes: int  # their payload bytes
    dropped: int  # results the disk budget forced out, ever
    oldest_seq: int | None
    next_seq: int
    renumbered: int = 0  # results given new seqs above a previous life's watermark, ever


@dataclass(frozen=True, slots=True)
class Renumbered:
    """What :meth:`Spool.renumber` did: spooled seqs ``old_first..old_last`` (``moved`` of
    them, ``lost`` dropped as not re-encodable) became ``new_first..new_last``; the counter
    went from ``old_next_seq`` to ``next_seq``."""

    watermark: int
    old_next_seq: int
    next_seq: int
    moved: int
    lost: int
    old_first: int | None
    old_last: int | None
    new_first: int | None
    new_last: int | None


# The payload re-encoded with a new seq, or None when it cannot be (it is then dropped).
Reencode = Callable[[bytes, int], bytes | None]

_FULL_WORDS = ("full", "no space left", "quota")  # SQLITE_FULL, ENOSPC, EDQUOT


def is_disk_full(exc: BaseException) -> bool:
    """Whether a StateError says the disk is full (SQLite's "database or disk is full",
    ENOSPC, a quota), rather than failing (I/O error, read-only, corrupt)."""
    text = str(exc).lower()
    return any(word in text for word in _FULL_WORDS)


class Spool:
    """Thread-safe (one connection, one lock): the scheduler appends, the publisher reads."""

    def __init__(self, state_dir: Path | str, *, max_bytes: int) -> None:
        self.path = Path(state_dir) / SPOOL_FILE
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            depth, used = self._db.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"spool {self.path}: {exc}") from None
        self._depth = int(depth)
        self._bytes = int(used)
        self._next_seq = max(self._meta("next_seq", 1), self._max_seq() + 1)
        self._dropped = self._meta("dropped", 0)
        self._renumbered = self._meta("renumbered", 0)
        self._oldest: int | None = None

    # --- writing ---------------------------------------------------------------------------

    def append(self, kind: str, make: Callable[[int], tuple[str, bytes]]) -> int:
        """Take the next seq, call ``make(seq)`` -> (topic, payload), store it durably and
        return the seq. Drops old results first when the disk budget requires it."""
        with self._lock:
            seq = self._next_seq
            topic, payload = make(seq)
            size = len(payload)
            if size > self.max_bytes:
                raise ResultTooLarge(
                    f"a {kind} result of {size} bytes exceeds the whole spool budget "
                    f"({self.max_bytes} bytes, [spool] max_mb)"
                )
            try:
                self._db.execute("BEGIN IMMEDIATE")
                dropped = self._make_room(size)
                self._db.execute(
                    "INSERT INTO outbox (seq, kind, topic, payload, spooled_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (seq, kind, topic, payload, time.time()),
                )
                self._set_meta("next_seq", seq + 1)
                if dropped:
                    self._set_meta("dropped", self._dropped + len(dropped))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                # Full disk, failing SD card: the caller logs it; nothing already spooled
                # is touched.
                raise StateError(
                    f"spool {self.path}: cannot store {kind} seq {seq}: {exc}"
                ) from None
            self._next_seq = seq + 1
            self._depth += 1 - len(dropped)
            self._bytes += size - sum(b for _, _, b in dropped)
            if dropped:
                self._dropped += len(dropped)
                kinds = sorted({k for _, k, _ in dropped})
                log.warning(
                    "spool full (%d bytes budget): dropped %d oldest result(s) of %s, seqs %s; "
                    "%d dropped in all",
                    self.max_bytes,
                    len(dropped),
                    ", ".join(kinds),
                    ",".join(str(s) for s, _, _ in dropped[:10]),
                    self._dropped,
                )
            return seq

    def _make_room(self, size: int) -> list[tuple[int, str, int]]:
        """Inside a transaction: delete what the drop policy says until ``size`` fits."""
        dropped: list[tuple[int, str, int]] = []
        free = self.max_bytes - self._bytes
        for query, args in (
            (
                "SELECT seq, kind, length(payload) FROM outbox WHERE kind = ? ORDER BY seq",
                (DROP_FIRST_KIND,),
            ),
            ("SELECT seq, kind, length(payload) FROM outbox ORDER BY seq", ()),
        ):
            if free >= size:
                break
            cursor = self._db.execute(query, args)
            while free < size:
                found = cursor.fetchmany(64)
                if not found:
                    break
                for seq, kind, length in found:
                    if free >= size:
                        break
                    dropped.append((int(seq), str(kind), int(length)))
                    free += int(length)
            cursor.close()
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s, _, _ in dropped])
        return dropped

    def confirm(self, stored_through: int, also: Iterable[tuple[int, int]] = ()) -> int:
        """The collector stored these: delete them; return how many rows went."""
        ranges = [(0, stored_through), *also]
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                gone = 0
                freed = 0
                for first, last in ranges:
                    n, b = self._db.execute(
                        "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox "
                        "WHERE seq BETWEEN ? AND ?",
                        (first, last),
                    ).fetchone()
                    if n:
                        self._db.execute(
                            "DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (first, last)
                        )
                        gone += int(n)
                        freed += int(b)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StateError(
                    f"spool {self.path}: cannot delete confirmed results: {exc}"
                ) from None
            self._depth -= gone
            self._bytes -= freed
            return gone

    def renumber(self, watermark: int, reencode: Reencode) -> Renumbered | None:
        """If ``watermark`` (the highest seq a StoredAck names) is at or beyond ``next_seq``
        -- above every seq this spool ever issued, so it is a previous life's -- give every
        spooled result, oldest first, the seqs ``watermark + 1 ...`` (payload re-encoded by
        ``reencode(payload, new_seq)``), and set ``next_seq`` past them: all in one
        transaction (kill -9 leaves the old numbering or the new, never a mix). Else None:
        a StoredAck of this life, however late, never exceeds ``next_seq - 1``."""
        with self._lock:
            old_next = self._next_seq
            if watermark < old_next:
                return None
            moved = lost = freed = 0
            old_first = old_last = None
            new_seq = watermark
            try:
                self._db.execute("BEGIN IMMEDIATE")
                last_old = 0
                while True:
                    # Chunks, so a 100 MB spool is not read into memory at once. The new
                    # seqs are all above the old ones (watermark >= next_seq): no collisions.
                    rows = self._db.execute(
                        "SELECT seq, payload FROM outbox WHERE seq > ? AND seq < ? "
                        "ORDER BY seq LIMIT 256",
                        (last_old, old_next),
                    ).fetchall()
                    if not rows:
                        break
                    for seq, payload in rows:
                        last_old = int(seq)
                        old_first = last_old if old_first is None else old_first
                        old_last = last_old
                        fresh = reencode(bytes(payload), new_seq + 1)
                        if fresh is None:
                            self._db.execute("DELETE FROM outbox WHERE seq = ?", (last_old,))
                            lost += 1
                            freed += len(payload)
                            continue
                        new_seq += 1
                        self._db.execute(
                            "UPDATE outbox SET seq = ?, payload = ? WHERE seq = ?",
                            (new_seq, fresh, last_old),
                        )
                        moved += 1
                        freed += len(payload) - len(fresh)
                self._set_meta("next_seq", new_seq + 1)
                self._set_meta("renumbered", self._renumbered + moved)
                if lost:
                    self._set_meta("dropped", self._dropped + lost)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StateError(
                    f"spool {self.path}: cannot renumber above seq {watermark}: {exc}"
                ) from None
            self._next_seq = new_seq + 1
            self._renumbered += moved
            self._dropped += lost
            self._depth -= lost
            self._bytes -= freed
            return Renumbered(
                watermark=watermark,
                old_next_seq=old_next,
                next_seq=self._next_seq,
                moved=moved,
                lost=lost,
                old_first=old_first,
                old_last=old_last,
                new_first=watermark + 1 if moved else None,
                new_last=new_seq if moved else None,
            )

    # --- reading ---------------------------------------------------------------------------

    def after(self, seq: int, *, limit: int) -> list[Row]:
        """Up to ``limit`` results with a seq above ``seq``, oldest first."""
        return self._rows(
            "SELECT seq, kind, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )

    def get(self, seqs: Iterable[int]) -> list[Row]:
        """The spooled results among ``seqs`` (others were confirmed or dropped), by seq."""
        wanted = sorted(set(seqs))
        out: list[Row] = []
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.extend(
                self._rows(
                    f"SELECT seq, kind, topic, payload FROM outbox WHERE seq IN ({marks}) "  # noqa: S608 - only '?' marks
                    "ORDER BY seq",
                    tuple(chunk),
                )
            )
        return out

    def seqs_between(self, first: int, last: int, *, limit: int) -> list[int]:
        with self._lock:
            try:
                found = self._db.execute(
                    "SELECT seq FROM outbox WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT ?",
                    (first, last, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"spool {self.path}: {exc}") from None
        return [int(s) for (s,) in found]

    def oldest_seq(self) -> int | None:
        """The lowest seq spooled (None: empty); StateError if the spool cannot say."""
        with self._lock:
            try:
                found = self._db.execute("SELECT min(seq) FROM outbox").fetchone()[0]
            except sqlite3.Error as exc:
                raise StateError(f"spool {self.path}: {exc}") from None
        return None if found is None else int(found)

    def figures(self) -> SpoolFigures:
        """The counts (kept in memory) and the oldest seq; never raises: a disk that cannot
        be read now leaves ``oldest_seq`` at its last known value."""
        with self._lock:
            try:
                oldest = self._db.execute("SELECT min(seq) FROM outbox").fetchone()[0]
                self._oldest = None if oldest is None else int(oldest)
            except sqlite3.Error as exc:
                log.debug("spool %s: oldest seq unknown now: %s", self.path, exc)
            return SpoolFigures(
                depth=self._depth,
                bytes=self._bytes,
                dropped=self._dropped,
                oldest_seq=self._oldest,
                next_seq=self._next_seq,
                renumbered=self._renumbered,
            )

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as exc:  # a failing disk: what is committed stays committed
                log.warning("spool %s: close: %s", self.path, exc)

    # --- internals -------------------------------------------------------------------------

    def _rows(self, query: str, args: tuple[int, ...]) -> list[Row]:
        with self._lock:
            try:
                found = self._db.execute(query, args).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"spool {self.path}: {exc}") from None
        return [Row(int(s), str(k), str(t), bytes(p)) for s, k, t, p in found]

    def _meta(self, key: str, default: int) -> int:
        found = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if found is None else int(found[0])

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _max_seq(self) -> int:
        found = self._db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        return 0 if found is None else int(found)

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # no transaction may be open
            self._db.execute("ROLLBACK")
