"""What the collector's state directory says about the period: dead letters, quarantine.

Read-only (``collector._sqlite.connect_readonly``): a report never changes the collector's
files. A missing or unreadable directory is said in the report, not fatal."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Final

from probefleet.collector import _sqlite, deadletter
from probefleet.collector.errors import StateError
from probefleet.collector.report.model import DeadLetterCount, Exclusions

_REASON_CHARS: Final = 120
_TOP_REASONS: Final = 12


def read_into(
    exclusions: Exclusions, state_dir: str | None, start: dt.datetime, end: dt.datetime
) -> None:
    if not state_dir:
        exclusions.state_note = "no state directory given"
        return
    base = Path(state_dir)
    try:
        conn = _sqlite.connect_readonly(base / deadletter.FILENAME)
    except StateError as exc:
        exclusions.state_note = str(exc)
    else:
        try:
            rows = conn.execute(
                "SELECT stage, substr(reason, 1, ?), count(*) FROM deadletters "
                "WHERE received_at >= ? AND received_at < ? GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
                (_REASON_CHARS, start.timestamp(), end.timestamp()),
            ).fetchall()
        except sqlite3.Error as exc:
            exclusions.state_note = f"{base / deadletter.FILENAME}: {exc}"
        else:
            exclusions.deadletters = sum(int(r[2]) for r in rows)
            top = [DeadLetterCount(str(s), str(r), int(n)) for s, r, n in rows[:_TOP_REASONS]]
            rest = sum(int(r[2]) for r in rows[_TOP_REASONS:])
            if rest:
                top.append(DeadLetterCount("", "…", rest))
            exclusions.deadletter_reasons = top
        finally:
            conn.close()
    try:
        conn = _sqlite.connect_readonly(base / "state.sqlite")
    except StateError:
        return
    try:
        exclusions.quarantined_now = int(
            conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        )
    except sqlite3.Error:
        pass
    finally:
        conn.close()
