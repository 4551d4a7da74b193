"""A real spool for delivery tests: real results in it, StoredAcks for it, a disk that fails."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator

from probefleet.agent import results
from probefleet.agent.spool import Spool
from probefleet.core import wire
from probefleet.kinds.base import DEFAULT_LINK

from tests.agent.standins import FastLatency

TOPICS = wire.Topics()
PROBE = "probe-a"
BOOT = "5967a284-5a74-4aee-a62b-9cb68f34bf08"
T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def spool_results(spool: Spool, n: int) -> list[int]:
    """``n`` latency results, as the agent writes them; their seqs."""
    data = FastLatency(None).run(DEFAULT_LINK)  # type: ignore[arg-type]

    def make(seq: int) -> tuple[str, bytes]:
        result = results.build(
            kind="latency", outcome=data, probe_id=PROBE, boot_id=BOOT, seq=seq,
            measured_at=T0 + dt.timedelta(minutes=seq),
            clock=wire.Clock(synced=True, uptime_s=float(seq), since_sync_s=1.0),
            link=DEFAULT_LINK,
        )  # fmt: skip
        return TOPICS.result(PROBE, "latency"), wire.encode(result)

    return [spool.append("latency", make) for _ in range(n)]


def stored_ack(through: int, also: list[tuple[int, int]] | None = None) -> bytes:
    ack = wire.StoredAck(schema=1, probe_id=PROBE, stored_through_seq=through,
                         also_stored=also or [], at=wire.utc_now())  # fmt: skip
    return wire.encode(ack)


def resend_request(*ranges: tuple[int, int]) -> bytes:
    return wire.encode(
        wire.ResendRequest(schema=1, probe_id=PROBE, ranges=list(ranges), at=wire.utc_now())
    )


def seqs(spool: Spool) -> list[int]:
    return [r.seq for r in spool.after(0, limit=100_000)]


@contextlib.contextmanager
def disk_fails(spool: Spool, on: str = "DELETE", from_seq: int = 0) -> Iterator[None]:
    """While inside: SQLite fails to ``on`` (DELETE, UPDATE) any result from ``from_seq`` up,
    mid-transaction -- a full disk, a failing card -- through a trigger that a second
    connection adds to the spool's own file (the spool under test is the real one)."""
    with contextlib.closing(sqlite3.connect(spool.path)) as db, db:
        db.execute(
            f"CREATE TRIGGER disk_fails BEFORE {on} ON outbox WHEN old.seq >= {int(from_seq)} "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END"
        )
    try:
        yield
    finally:
        with contextlib.closing(sqlite3.connect(spool.path)) as db, db:
            db.execute("DROP TRIGGER disk_fails")
