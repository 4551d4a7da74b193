"""The dead-letter store: every rejected message or point, kept with its reason, queryable.

``<state_dir>/deadletters.sqlite``, table ``deadletters``: ``received_at`` (UTC seconds),
``topic``, ``probe`` (from the topic, when it parsed), ``stage`` ("parse": the message broke
the contract; "influxdb": InfluxDB refused one of its points), ``field``, ``reason``,
``payload`` (the first ``payload_max_bytes``), ``payload_bytes`` (the full size). Rows are
committed (fsynced) before the message is acknowledged; past ``max_rows`` rows or
``max_bytes`` of kept payloads and reasons the oldest go, and the file gives the space back
(incremental vacuum), so a flood of junk cannot fill the disk.

Read it with ``probe-collector deadletters`` (:func:`list_deadletters`, :func:`format_rows`)
or any SQLite client: ``sqlite3 deadletters.sqlite "SELECT reason, count(*) FROM deadletters
GROUP BY 1"``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from probefleet.collector import _sqlite

FILENAME: Final = "deadletters.sqlite"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS deadletters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    topic TEXT NOT NULL,
    probe TEXT,
    stage TEXT NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL,
    payload_bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deadletters_probe ON deadletters (probe, received_at);
CREATE INDEX IF NOT EXISTS deadletters_time ON deadletters (received_at);
"""
_PRUNE_EVERY: Final = 1000
# Pruning for bytes goes down to this share of the limit, so that a flood does not prune
# (and vacuum) at every message once the store is full.
_PRUNE_TO: Final = 0.9


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: float
    topic: str
    probe: str | None
    stage: str
    field: str
    reason: str
    payload: bytes
    payload_bytes: int = -1  # -1: len(payload)
    id: int = 0

    @property
    def received(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.received_at, dt.UTC)


class DeadLetterStore:
    """Append-only, thread-safe (the service and the spool replayer both write)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        payload_max_bytes: int,
        max_rows: int,
        max_bytes: int = 512_000_000,
    ) -> None:
        self.path = state_dir / FILENAME
        self.payload_max_bytes = payload_max_bytes
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._conn = _sqlite.connect(self.path, _SCHEMA)
        if self._conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            # Once per file (older ones were made without it): deleted rows' pages are then
            # handed back to the filesystem, not kept for ever (a pruned 2 GB file stayed 2 GB).
            self._conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self._conn.execute("VACUUM")
        self._bytes = self._stored_bytes()
        self._lock = threading.Lock()
        self._since_prune = _PRUNE_EVERY  # prune once at start

    def _stored_bytes(self) -> int:
        row = self._conn.execute(
            # Bytes, as add() counts them: length() of TEXT counts characters.
            "SELECT coalesce(sum(length(payload) + length(CAST(reason AS BLOB))"
            " + length(CAST(topic AS BLOB))), 0) FROM deadletters"
        ).fetchone()
        return int(row[0])

    @property
    def stored_bytes(self) -> int:
        """Payload, reason and topic bytes kept now."""
        with self._lock:
            return self._bytes

    def add(self, letters: Iterable[DeadLetter]) -> int:
        """Store and fsync; returns how many."""
        rows = [
            (
                d.received_at,
                d.topic,
                d.probe,
                d.stage,
                d.field,
                d.reason[:2000],
                bytes(d.payload[: self.payload_max_bytes]),
                d.payload_bytes if d.payload_bytes >= 0 else len(d.payload),
            )
            for d in letters
        ]
        if not rows:
            return 0
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT INTO deadletters (received_at, topic, probe, stage, field, reason,"
                " payload, payload_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._bytes += sum(len(r[1].encode()) + len(r[5].encode()) + len(r[6]) for r in rows)
            self._since_prune += len(rows)
            pruned = False
            if self._since_prune >= _PRUNE_EVERY:
                self._since_prune = 0
                self._conn.execute(
                    "DELETE FROM deadletters WHERE id <= (SELECT max(id) FROM deadletters) - ?",
                    (self.max_rows,),
                )
                pruned = True
            if self._bytes > self.max_bytes:
                # The newest rows that fit in the budget stay; every older one goes.
                self._conn.execute(
                    "DELETE FROM deadletters WHERE id <= (SELECT coalesce(max(id), 0) FROM"
                    " (SELECT id, sum(length(payload) + length(CAST(reason AS BLOB))"
                    " + length(CAST(topic AS BLOB)))"
                    " OVER (ORDER BY id DESC) AS kept"
                    " FROM deadletters) WHERE kept > ?)",
                    (round(self.max_bytes * _PRUNE_TO),),
                )
                pruned = True
            if pruned:
                self._bytes = self._stored_bytes()
            self._conn.execute("COMMIT")
            if pruned:
                # executescript: the pragma frees one page per step, and only sqlite3_exec
                # steps it to the end (execute() stops after the first page).
                self._conn.executescript("PRAGMA incremental_vacuum;")
        return len(rows)

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM deadletters").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def list_deadletters(
    state_dir: Path,
    *,
    limit: int = 50,
    probe: str | None = None,
    since: dt.datetime | None = None,
) -> list[DeadLetter]:
    """The newest dead letters first, optionally of one probe / since a time (read-only)."""
    conn = _sqlite.connect_readonly(state_dir / FILENAME)
    try:
        where: list[str] = []
        args: list[object] = []
        if probe is not None:
            where.append("probe = ?")
            args.append(probe)
        if since is not None:
            where.append("received_at >= ?")
            args.append(since.timestamp())
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = conn.execute(
            # The clause is built above from fixed text only; values are bound parameters.
            "SELECT id, received_at, topic, probe, stage, field, reason, payload, payload_bytes"  # noqa: S608
            f" FROM deadletters {clause} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
    finally:
        conn.close()
    return [
        DeadLetter(
            id=r[0],
            received_at=r[1],
            topic=r[2],
            probe=r[3],
            stage=r[4],
            field=r[5],
            reason=r[6],
            payload=bytes(r[7]),
            payload_bytes=r[8],
        )
        for r in rows
    ]


def format_rows(letters: list[DeadLetter], *, payload_chars: int = 200) -> str:
    """One block per dead letter, for people: when, where, why, and the start of the payload."""
    out = []
    for d in letters:
        when = d.received.isoformat(timespec="seconds").replace("+00:00", "Z")
        text = d.payload[:payload_chars].decode("utf-8", errors="replace")
        more = "" if d.payload_bytes <= payload_chars else f" ... ({d.payload_bytes} bytes)"
        out.append(f"#{d.id} {when} {d.stage} {d.topic}")
        out.append(f"  {d.field}: {d.reason}\n  payload: {text!r}{more}")
    return "\n".join(out)
