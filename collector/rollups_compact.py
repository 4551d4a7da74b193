"""When to compact: each local day once it is over (plus a grace for late parts), and again
any day a late result reached after it was compacted. The InfluxQL runs in a thread of its
own; the points go out through ``emit`` from :meth:`Compactor.tick` (the main loop's thread).

Wiring: ``Compactor(client, state_dir, emit=pipeline.add_lines, tz=…)``, handed to
:class:`~collector.rollups_feeder.Rollups` (``compactor=``), whose ``tick`` drives it.
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

log = logging.getLogger(__name__)
TOPIC: Final = "$collector/rollups-daily"
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
        self._done: queue.SimpleQueue[tuple[float, list[str] | None]] = queue.SimpleQueue()
        self._busy = False
        self._save()

    def _save(self) -> None:
        rows = [
            ("compact_next", repr(self.next_day)),
            ("compact_dirty", json.dumps(sorted(self.dirty))),
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

    def tick(self) -> None:
        while True:
            try:
                day, lines = self._done.get_nowait()
            except queue.Empty:
                break
            self._busy = False
            if lines is None:
                continue  # failed: logged, tried again at the next tick
            self.emit(f"{TOPIC}/{int(day)}", lines)
            self.dirty.discard(day)
            self.next_day = max(self.next_day, local_day(day, self.zone)[1].timestamp())
            self._save()
        if self._busy:
            return
        now = self.clock()
        if self.dirty:
            day = min(self.dirty)
        elif local_day(self.next_day, self.zone)[1].timestamp() + self.grace_s <= now:
            day = self.next_day
        else:
            return
        self._busy = True
        threading.Thread(target=self._run, args=(day,), name="rollup-compact", daemon=True).start()

    def _run(self, day: float) -> None:
        start, end = local_day(day, self.zone)
        started = time.monotonic()
        try:
            lines = compact_day(
                self.client, start, end, peak_hours_utc=peak_hours_utc(start, *self.peak)
            )
        except Exception:
            log.exception("rollups: compacting %s failed", start.date())
            self._done.put((day, None))
            return
        log.info("rollups: %s compacted, %d daily points in %.1f s", start.date(), len(lines),
                 time.monotonic() - started)  # fmt: skip
        self._done.put((day, lines))

    def close(self) -> None:
        self.db.close()
