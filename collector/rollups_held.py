"""Open rollup buckets kept on local disk across a stop, instead of written at the stop.

At 10,000 probes a stop finds ~54,000 open buckets; written to InfluxDB as the last part they
took 10.7 s of a 10 s shutdown on 2 cores (the batch phase of the stop's log line), and the
results of the stop's own last batch were never rolled up at all. Saved here in one SQLite
transaction they take about a second, and the next start folds them back into its open
buckets (every figure is a count, sum, min or max: merging is exact). Usage::

    held.save(db, buckets, seqs)            # at the stop, after the pipeline's last batch
    buckets, seqs = held.load(db, targets)  # at the start; held.clear(db) once stored

The rows stay until the part that carries them is stored (the feeder clears them then), so
a crash between the start and that part loses nothing either.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Final

from probefleet.collector.inventory import TargetsFile
from probefleet.collector.rollups_bucket import Bucket, Buckets
from probefleet.collector.rollups_seqs import SeqRanges

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS held_buckets (
    measurement TEXT NOT NULL, tags TEXT NOT NULL, hour_ns INTEGER NOT NULL, fields TEXT NOT NULL,
    PRIMARY KEY (measurement, tags, hour_ns));
CREATE TABLE IF NOT EXISTS held_seqs (probe TEXT PRIMARY KEY, ranges TEXT NOT NULL);
"""


def save(db: sqlite3.Connection, buckets: Buckets, seqs: dict[str, SeqRanges]) -> int:
    """Replace what is held by ``buckets`` and ``seqs`` (one fsynced transaction); returns
    the buckets saved."""
    bucket_rows = [
        (b.measurement, json.dumps(b.tags), b.hour_ns, json.dumps(b.fields()))
        for b in buckets.values()
    ]
    seq_rows = [(probe, json.dumps(ranges.ranges())) for probe, ranges in seqs.items()]
    db.execute("BEGIN")
    try:
        db.execute("DELETE FROM held_buckets")
        db.execute("DELETE FROM held_seqs")
        db.executemany("INSERT INTO held_buckets VALUES (?, ?, ?, ?)", bucket_rows)
        db.executemany("INSERT INTO held_seqs VALUES (?, ?)", seq_rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return len(bucket_rows)


def load(
    db: sqlite3.Connection, targets: TargetsFile | None
) -> tuple[Buckets, dict[str, SeqRanges]]:
    """What the last stop held: its buckets and the seqs counted into them."""
    buckets = Buckets(targets)
    for measurement, tags_text, hour_ns, fields_text in db.execute(
        "SELECT measurement, tags, hour_ns, fields FROM held_buckets"
    ):
        tags = tuple((str(k), str(v)) for k, v in json.loads(tags_text))
        bucket = Bucket.from_fields(measurement, tags, int(hour_ns), json.loads(fields_text))
        buckets[(measurement, tags, int(hour_ns))] = bucket
    seqs = {
        probe: SeqRanges(json.loads(text))
        for probe, text in db.execute("SELECT probe, ranges FROM held_seqs")
    }
    return buckets, seqs


def clear(db: sqlite3.Connection) -> None:
    db.execute("BEGIN")
    db.execute("DELETE FROM held_buckets")
    db.execute("DELETE FROM held_seqs")
    db.execute("COMMIT")


def merge(into: Buckets, other: Buckets) -> None:
    """Fold ``other``'s buckets into ``into`` (same key: merged exactly)."""
    for key, bucket in other.items():
        mine = into.get(key)
        if mine is None:
            into[key] = bucket
        else:
            mine.merge(bucket)
