"""Opening the collector's SQLite files: WAL, fsync on every commit, errors as StateError."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from probefleet.collector.errors import StateError


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating) ``path`` with ``schema`` applied; every commit is fsynced.

    WAL lets the CLI read dead letters while the daemon writes; synchronous=FULL makes a
    commit durable before we acknowledge anything to the broker or a probe."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we say BEGIN/COMMIT ourselves, nothing is implicit.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(schema)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"{path}: cannot open the state database: {exc}") from exc
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """For one-shot tools: never creates the file."""
    if not path.exists():
        raise StateError(f"{path}: no such file (has the collector run with this state_dir?)")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise StateError(f"{path}: cannot open: {exc}") from exc
