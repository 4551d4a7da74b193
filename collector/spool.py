"""The local spool: batches InfluxDB could not take, fsynced, replayed oldest first.

``<state_dir>/spool.sqlite``, table ``spool``: one row per batch — its line-protocol lines
and, line by line, the MQTT topic each came from (for dead-lettering a line InfluxDB later
refuses). A row is deleted only after InfluxDB took every line of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from probefleet.collector import _sqlite

FILENAME: Final = "spool.sqlite"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spooled_at REAL NOT NULL,
    points INTEGER NOT NULL,
    lines TEXT NOT NULL,
    topics TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SpoolRow:
    id: int
    spooled_at: float
    lines: list[str]
    topics: list[str]


class Spool:
    """Thread-safe: the service appends, the replayer reads and deletes."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME
        self._conn = _sqlite.connect(self.path, _SCHEMA)
        self._lock = threading.Lock()
        row = self._conn.execute("SELECT count(*), coalesce(sum(points), 0) FROM spool").fetchone()
        self._rows, self._points = int(row[0]), int(row[1])

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def points(self) -> int:
        return self._points

    def append(self, lines: Sequence[str], topics: Sequence[str]) -> None:
        """Store one batch durably (fsynced when this returns)."""
        if len(lines) != len(topics):
            raise ValueError("one topic per line")
        with self._lock:
            self._conn.execute(
                "INSERT INTO spool (spooled_at, points, lines, topics) VALUES (?, ?, ?, ?)",
                (time.time(), len(lines), "\n".join(lines), "\n".join(topics)),
            )
            self._rows += 1
            self._points += len(lines)

    def oldest(self, max_points: int) -> list[SpoolRow]:
        """The oldest rows, as many as fit in ``max_points`` (at least one)."""
        out: list[SpoolRow] = []
        total = 0
        with self._lock:
            cursor = self._conn.execute(
                "SELECT id, spooled_at, points, lines, topics FROM spool ORDER BY id LIMIT 1000"
            )
            for row_id, spooled_at, points, lines, topics in cursor:
                if out and total + points > max_points:
                    break
                out.append(SpoolRow(row_id, spooled_at, lines.split("\n"), topics.split("\n")))
                total += points
        return out

    def delete(self, rows: Sequence[SpoolRow]) -> None:
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN")
            for row in rows:
                cursor = self._conn.execute("DELETE FROM spool WHERE id = ?", (row.id,))
                if cursor.rowcount:
                    self._rows -= 1
                    self._points -= len(row.lines)
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
