"""When to compact: each local day once it is over (plus a grace for late parts), and again
any day a late result reached after it was compacted; each local month once its days are
compacted *and stored* (the month is summed from the stored daily points), and again after
one of its days was. The InfluxQL runs in a thread of its own; the points go out through
``emit`` from :meth:`Compactor.tick` (the main loop's thread).

Wiring: ``Compactor(client, state_dir, emit=pipeline.add_lines, tz=…)``, handed to
:class:`~collector.rollups_feeder.Rollups` (``compactor=``), whose ``tick`` drives it and
whose ``on_batch`` tells it (:meth:`Compactor.stored`) when a day's points are stored.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from probefleet.collector import _sqlite
from probefleet.collector.rollups_daily import InfluxQL, compact_day
from probefleet.collector.rollups_monthly import local_month, month_lines

log = logging.getLogger(__name__)
TOPIC: Final = "$collector/rollups-daily"
MONTH_TOPIC: Final = "$collector/rollups-monthly"
_SCHEMA: Final = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"


def local_day(when_s: float, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the local day holding ``when_s``, as aware datetimes."""
    day = dt.datetime.fromtimestamp(when_s, zone).date()
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end


def peak_hours_utc(start: dt.datetime, start_hour: int, end_hour: int) -> frozenset[int]:
    """The UTC hours of the day starting at ``start`` (local midnight) in [start_hour,
    end_hour) local time."""
    return frozenset(
        (start + dt.timedelta(hours=h)).astimezone(dt.UTC).hour for h in range(start_hour, end_hour)
    )


class Compactor:
    def __init__(
        self,
        client: InfluxQL,
        state_dir: Path,
        *,
        emit: Callable[[str, list[str]], None],
        tz: str,
        peak_start_hour: int = 19,
        peak_end_hour: int = 23,
        grace_s: float = 7200.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.emit = emit
        self.zone = ZoneInfo(tz)
        self.peak = (peak_start_hour, peak_end_hour)
        self.grace_s = grace_s
        self.clock = clock
        self.db = _sqlite.connect(Path(state_dir) / "rollups.sqlite", _SCHEMA)
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        # First start: history is compacted by `rollup rebuild`, not here.
        today = local_day(clock(), self.zone)[0].timestamp()
        self.next_day = float(meta.get("compact_next", today))
        self.dirty: set[float] = set(json.loads(meta.get("compact_dirty", "[]")))
        # Months to sum (their start), once none of their days waits to be stored.
        self.months: set[float] = set(json.loads(meta.get("compact_months", "[]")))
        self.unstored: set[float] = set()  # days emitted, not yet stored (not kept: a
        # restart treats them as stored, the worst case a month summed before its last day)
        self._done: queue.SimpleQueue[tuple[str, float, list[str] | None]] = queue.SimpleQueue()
        self._busy = False
        self.month_chunk = 5000  # a month of 10,000 probes is ~150,000 lines: sent in parts
        self._save()

    def _save(self) -> None:
        rows = [
            ("compact_next", repr(self.next_day)),
            ("compact_dirty", json.dumps(sorted(self.dirty))),
            ("compact_months", json.dumps(sorted(self.months))),
        ]
        self.db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            rows,
        )

    def late(self, hour_ns: int) -> None:
        """A part was written for ``hour_ns``: compact that day again if it is done."""
        day = local_day(hour_ns / 1e9, self.zone)[0].timestamp()
        if day < self.next_day and day not in self.dirty:
            self.dirty.add(day)
            self._save()

    def _month_of(self, day: float) -> tuple[float, float]:
        start, end = local_month(dt.datetime.fromtimestamp(day, self.zone), self.zone)
        return start.timestamp(), end.timestamp()

    def stored(self, topic: str) -> None:
        """The pipeline stored the points emitted under ``topic`` (Rollups.on_batch)."""
        if topic.startswith(f"{TOPIC}/"):
            self.unstored.discard(float(topic[len(TOPIC) + 1 :]))

    def tick(self) -> None:
        while True:
            try:
                kind, when, lines = self._done.get_nowait()
            except queue.Empty:
                break
            if kind == "month-part":  # the job goes on
                self.emit(f"{MONTH_TOPIC}/{int(when)}", lines or [])
                continue
            self._busy = False
            if lines is None:
                continue  # failed: logged, tried again at the next tick
            if kind == "month":
                self.emit(f"{MONTH_TOPIC}/{int(when)}", lines)
                self.months.discard(when)
                self._save()
                continue
            if lines:
                self.unstored.add(when)
            self.emit(f"{TOPIC}/{int(when)}", lines)
            self.dirty.discard(when)
            self.next_day = max(self.next_day, local_day(when, self.zone)[1].timestamp())
            month_start, month_end = self._month_of(when)
            if month_end <= self.next_day:  # every day of the month compacted
                self.months.add(month_start)
            self._save()
        if self._busy:
            return
        now = self.clock()
        job: tuple[str, float]
        if self.dirty:
            job = ("day", min(self.dirty))
        elif local_day(self.next_day, self.zone)[1].timestamp() + self.grace_s <= now:
            job = ("day", self.next_day)
        else:
            ready = [m for m in self.months if not any(self._month_of(d)[0] == m
                                                       for d in self.unstored)]  # fmt: skip
            if not ready:
                return
            job = ("month", min(ready))
        self._busy = True
        threading.Thread(target=self._run, args=job, name="rollup-compact", daemon=True).start()

    def _run(self, kind: str, when: float) -> None:
        if kind == "month":
            start, end = (dt.datetime.fromtimestamp(t, self.zone) for t in self._month_of(when))
        else:
            start, end = local_day(when, self.zone)
        started = time.monotonic()
        try:
            if kind == "month":
                lines, sent = [], 0
                for line in month_lines(self.client, start, end):
                    lines.append(line)
                    if len(lines) >= self.month_chunk:
                        self._done.put(("month-part", when, lines))
                        sent, lines = sent + len(lines), []
                lines_n = sent + len(lines)
            else:
                lines = compact_day(
                    self.client, start, end, peak_hours_utc=peak_hours_utc(start, *self.peak)
                )
                lines_n = len(lines)
        except Exception:
            log.exception("rollups: compacting %s %s failed", kind, start.date())
            self._done.put((kind, when, None))
            return
        log.info("rollups: %s %s compacted, %d points in %.1f s", kind, start.date(), lines_n,
                 time.monotonic() - started)  # fmt: skip
        self._done.put((kind, when, lines))

    def close(self) -> None:
        self.db.close()
