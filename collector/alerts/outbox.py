"""A durable outbox of notifications and the thread that delivers them, with retries.

Ingestion only inserts a row (one fsynced SQLite commit) and goes on; :class:`Delivery`, a
thread per channel, sends each of its rows through the channel's :class:`Sender`, deletes it once
sent, and on failure tries again with back-off (up to ``notify.retry_max_s`` apart) until
``notify.give_up_after_s``, then logs it as given up. A dead or hanging receiver therefore
delays only its own notifications, never a result, and a restart resumes the queue.
File: ``<state_dir>/outbox.sqlite``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from probefleet.collector import _sqlite

log = logging.getLogger(__name__)

FILENAME: Final = "outbox.sqlite"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    doc TEXT NOT NULL,
    created_s REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_s REAL NOT NULL,
    last_error TEXT
);
"""


class DeliveryError(Exception):
    """A notification could not be delivered now (retried)."""


class Sender(Protocol):
    def send(self, doc: dict[str, Any]) -> None:
        """Deliver one notification document or raise DeliveryError."""


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    channel: str
    doc: dict[str, Any]
    created_s: float
    attempts: int


class Outbox:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME
        self._conn = _sqlite.connect(self.path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def put(self, channel: str, doc: dict[str, Any]) -> None:
        now = time.time()
        with self._lock:
            self._conn.execute(
                "INSERT INTO outbox (channel, doc, created_s, next_s) VALUES (?, ?, ?, ?)",
                (channel, json.dumps(doc, ensure_ascii=False), now, now),
            )

    def due(self, channel: str, now_s: float, limit: int = 50) -> list[Pending]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, channel, doc, created_s, attempts FROM outbox"
                " WHERE channel = ? AND next_s <= ? ORDER BY id LIMIT ?",
                (channel, now_s, limit),
            ).fetchall()
        return [Pending(i, c, json.loads(d), cr, a) for i, c, d, cr, a in rows]

    def done(self, pending: Pending) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM outbox WHERE id = ?", (pending.id,))

    def retry(self, pending: Pending, error: str, next_s: float) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_s = ?, last_error = ?"
                " WHERE id = ?",
                (next_s, error[:500], pending.id),
            )

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


class Delivery(threading.Thread):
    """Sends one channel's rows, oldest first. One thread per channel: a hanging receiver
    holds back only its own channel."""

    def __init__(
        self,
        outbox: Outbox,
        channel: str,
        sender: Sender,
        *,
        retry_max_s: float,
        give_up_after_s: float,
        stopping: threading.Event,
        poll_s: float = 0.2,
    ) -> None:
        super().__init__(name=f"alert-delivery-{channel}", daemon=True)
        self.outbox = outbox
        self.channel = channel
        self.sender = sender
        self.retry_max_s = retry_max_s
        self.give_up_after_s = give_up_after_s
        self.stopping = stopping
        self.poll_s = poll_s
        self.wake = threading.Event()
        self.delivered = 0
        self.failures = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                sent_any = self._once()
            except Exception:
                log.exception("alert delivery failed; trying again")
                sent_any = False
            if not sent_any:
                self.wake.wait(self.poll_s)
                self.wake.clear()

    def _once(self) -> bool:
        now = time.time()
        batch = self.outbox.due(self.channel, now)
        for pending in batch:
            if self.stopping.is_set():
                break
            try:
                self.sender.send(pending.doc)
            except Exception as exc:  # any failure of a receiver is retried, never fatal
                self.failures += 1
                if time.time() - pending.created_s > self.give_up_after_s:
                    log.error("gave up delivering %s by %s after %d attempts: %s",
                              pending.doc.get("key"), pending.channel, pending.attempts + 1,
                              exc)  # fmt: skip
                    self.outbox.done(pending)
                    continue
                delay = min(self.retry_max_s, 1.0 * 2 ** min(pending.attempts, 20))
                log.warning("alert via %s failed (%s); retrying in %.0f s", pending.channel,
                            exc, delay)  # fmt: skip
                self.outbox.retry(pending, str(exc), time.time() + delay)
                continue
            self.outbox.done(pending)
            self.delivered += 1
            log.info("alert delivered via %s: %s", pending.channel, pending.doc.get("text"))
        return bool(batch)
