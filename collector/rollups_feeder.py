"""The live feeder: a pipeline observer that folds every stored result into hourly buckets
and writes them as rollup points through the pipeline's own durable path.

Wiring (collector/service.py)::

    self.rollups = Rollups(state_dir, emit=self.pipeline.add_lines, targets=...)
    self.pipeline.observers.append(self.rollups.on_batch)
    ...  # in the main loop, once a second: self.rollups.tick()
    ...  # on stop, after the pipeline's last flush: self.rollups.hold(); .close()

Each flush writes every bucket touched since the last one as a *part*: the bucket's point
at its own nanosecond of the hour (``hour + part·1000 + collector's offset``), never
overwriting an earlier part. Every rollup figure is a count, sum, min or max, so queries
sum the parts (``sum("download_mbps_n")``…): a late result simply lands in a later part of
its hour. A result counts once: its (probe, seq) is remembered (``rollups_seqs``), in memory at
once and in ``rollups.sqlite`` when the part holding it is stored (the pipeline hands the
part's own item back to :meth:`on_batch`). What a crash loses is what was not yet stored —
the feeder says which hours to rebuild at its next start.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from probefleet.collector import _sqlite
from probefleet.collector import rollups_held as held
from probefleet.collector._batch import Item
from probefleet.collector.inventory import TargetsFile
from probefleet.collector.rollups_bucket import Buckets
from probefleet.collector.rollups_compact import Compactor
from probefleet.collector.rollups_seqs import SeqRanges

log = logging.getLogger(__name__)

TOPIC: Final = "$collector/rollups/"
FILE: Final = "rollups.sqlite"
_SCHEMA: Final = (
    """
CREATE TABLE IF NOT EXISTS seqs (probe TEXT PRIMARY KEY, ranges TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
    + held.SCHEMA
)
_PARTS_PER_HOUR: Final = 3_600_000_000  # parts are 1 µs apart; the collector's offset in ns


class Rollups:
    """Folds stored results into buckets; :meth:`tick` writes them every ``flush_s``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        emit: Callable[[str, list[str]], None],
        targets: TargetsFile | None = None,
        flush_s: float = 600.0,
        collector_id: str = "",
        clock: Callable[[], float] = time.time,
        compactor: Compactor | None = None,
    ) -> None:
        self.emit = emit
        self.compactor = compactor
        self.targets = targets
        self.flush_s = flush_s
        self.clock = clock
        self.offset_ns = zlib.crc32(collector_id.encode()) % 1000
        self.db = _sqlite.connect(Path(state_dir) / FILE, _SCHEMA)
        self.counted: dict[str, SeqRanges] = {
            probe: SeqRanges(json.loads(text))
            for probe, text in self.db.execute("SELECT probe, ranges FROM seqs")
        }
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        self.part = int(meta.get("part", "0"))
        # What the last stop held on disk (rollups_held) is open again: it goes out with
        # the next part, and its rows are cleared once that part is stored.
        self.open, self.open_seqs = held.load(self.db, targets)
        self.held_part: int | None = 0 if self.open or self.open_seqs else None
        if self.held_part is not None:
            log.info("rollups: %d buckets held at the last stop are open again", len(self.open))
        self.inflight: dict[int, dict[str, SeqRanges]] = {}
        self.duplicates = 0
        self.results = 0
        self.points = 0
        # What the last stop held goes out at the first tick, not flush_s later.
        self.next_flush = clock() + (0.0 if self.held_part is not None else flush_s)
        # Still "running" from last time: results stored after its last stored part were
        # acknowledged but never counted here.
        if meta.get("running") == "1":
            since = float(meta.get("stored_at", "0"))
            self.unclean_since: float | None = since
            log.warning(
                "rollups: the collector stopped without closing them; results stored since "
                "%s are missing from them: rebuild those hours (probe-collector rollup "
                "rebuild --from <that hour> --to <now>)",
                time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(since)),
            )
        else:
            self.unclean_since = None
        self._set({"running": "1"})

    def _set(self, values: dict[str, str]) -> None:
        self.db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    def _seen(self, probe: str, seq: int) -> bool:
        for ranges in (
            self.counted.get(probe),
            self.open_seqs.get(probe),
            *(part.get(probe) for part in self.inflight.values()),
        ):
            if ranges is not None and seq in ranges:
                return True
        return False

    def on_batch(self, items: Sequence[Item]) -> None:
        """Pipeline observer: fold the batch's new results in; confirm stored parts."""
        for item in items:
            points = item.points
            if points is None or item.probe is None or item.seq is None:
                if item.inbound is None and item.topic.startswith(TOPIC):
                    self._stored(int(item.topic[len(TOPIC) :]))
                elif item.inbound is None and self.compactor is not None:
                    self.compactor.stored(item.topic)  # a day's points: its month may sum
                continue
            if self._seen(item.probe, item.seq):
                self.duplicates += 1
                continue
            ranges = self.open_seqs.get(item.probe)
            if ranges is None:
                ranges = self.open_seqs[item.probe] = SeqRanges()
            ranges.add(item.seq)
            self.results += 1
            for point in points:
                self.points += self.open.add(point)

    def tick(self, now: float | None = None) -> None:
        """Call often (once a second): flushes every ``flush_s``."""
        if (self.clock() if now is None else now) >= self.next_flush:
            self.flush()
        if self.compactor is not None:
            self.compactor.tick()

    def flush(self) -> int:
        """Write every open bucket as a new part; returns the points handed over."""
        self.next_flush = self.clock() + self.flush_s
        if not self.open and not self.open_seqs:
            return 0
        self.part += 1
        part = self.part
        self._set({"part": str(part)})  # never reused, whatever happens next
        if self.held_part == 0:
            self.held_part = part  # this part carries what the last stop held
        step = (part % _PARTS_PER_HOUR) * 1000 + self.offset_ns
        lines = [bucket.line(bucket.hour_ns + step) for bucket in self.open.values()]
        if self.compactor is not None:
            for hour in {bucket.hour_ns for bucket in self.open.values()}:
                self.compactor.late(hour)
        self.inflight[part] = self.open_seqs
        self.open, self.open_seqs = Buckets(self.targets), {}
        # Even an empty part (results of kinds not rolled up) comes back to confirm its seqs.
        self.emit(f"{TOPIC}{part}", lines or [])
        if not lines:
            self._stored(part)
        log.info("rollups: part %d, %d bucket points", part, len(lines))
        return len(lines)

    def _stored(self, part: int) -> None:
        seqs = self.inflight.pop(part, None)
        if seqs is None:
            return
        if part == self.held_part:
            held.clear(self.db)  # what the last stop held is in InfluxDB now
            self.held_part = None
        rows = []
        for probe, ranges in seqs.items():
            mine = self.counted.get(probe)
            if mine is None:
                mine = self.counted[probe] = SeqRanges()
            mine.update(ranges)
            rows.append((probe, json.dumps(mine.ranges())))
        self.db.execute("BEGIN")
        try:
            self.db.executemany(
                "INSERT INTO seqs (probe, ranges) VALUES (?, ?) "
                "ON CONFLICT (probe) DO UPDATE SET ranges = excluded.ranges",
                rows,
            )
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('stored_at', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(self.clock()),),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def hold(self) -> int:
        """At a stop, after the pipeline's last batch: the open buckets (that batch's results
        too) go to local disk for the next start instead of into InfluxDB, where at 10,000
        probes they cost the stop 10 s. Returns the buckets held."""
        buckets, seqs = self.open, self.open_seqs
        if self.held_part not in (None, 0) and self.held_part in self.inflight:
            # The part carrying the last stop's buckets was never stored: keep them too.
            buckets, seqs = held.load(self.db, self.targets)
            held.merge(buckets, self.open)
            for probe, ranges in self.open_seqs.items():
                mine = seqs.get(probe)
                if mine is None:
                    seqs[probe] = ranges
                else:
                    mine.update(ranges)
            self.inflight.pop(self.held_part)
        n = held.save(self.db, buckets, seqs)
        self.open, self.open_seqs = Buckets(self.targets), {}
        if n:
            log.info("rollups: %d open buckets held on disk for the next start", n)
        return n

    def close(self) -> None:
        """After the pipeline's last batch and :meth:`hold`: a clean stop if every part was
        stored, else the next start names the hours to rebuild."""
        if self.open or self.open_seqs:
            log.warning("rollups: closed with results not yet flushed")
        elif not self.inflight:
            self._set({"running": "0"})
        self.db.close()
        if self.compactor is not None:
            self.compactor.close()
