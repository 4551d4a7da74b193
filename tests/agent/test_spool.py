"""The spool on its own: seqs, the disk budget's drop policy, confirmations, kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from probefleet.agent.errors import StateError
from probefleet.agent.spool import Spool

ROOT = Path(__file__).resolve().parents[2]


def add(spool: Spool, kind: str, size: int = 100) -> int:
    return spool.append(kind, lambda seq: (f"t/{kind}", f"{seq:>{size}}".encode()))


def test_seqs_grow_and_survive_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    assert [add(spool, "latency") for _ in range(3)] == [1, 2, 3]
    spool.confirm(3)
    spool.close()
    # Empty spool after a restart: the counter is in the same database, never reused.
    again = Spool(tmp_path, max_bytes=10_000)
    assert add(again, "dns") == 4
    assert again.figures().next_seq == 5


def test_rows_come_back_oldest_first_in_windows(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100_000)
    for i in range(10):
        add(spool, "latency" if i % 2 else "dns")
    assert [r.seq for r in spool.after(0, limit=4)] == [1, 2, 3, 4]
    assert [r.seq for r in spool.after(4, limit=100)] == [5, 6, 7, 8, 9, 10]
    row = spool.after(2, limit=1)[0]
    assert (row.kind, row.topic, row.payload.strip()) == ("dns", "t/dns", b"3")


def test_confirm_deletes_the_watermark_and_the_ranges(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100_000)
    for _ in range(10):
        add(spool, "latency")
    assert spool.confirm(3, [(5, 6), (9, 20)]) == 7
    assert [r.seq for r in spool.after(0, limit=100)] == [4, 7, 8]
    figures = spool.figures()
    assert (figures.depth, figures.bytes, figures.oldest_seq) == (3, 300, 4)
    assert spool.confirm(3) == 0  # a repeated StoredAck changes nothing


def test_full_spool_drops_oldest_health_first_then_oldest_of_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)  # ten results of 100 bytes
    kinds = ["latency", "health", "dns", "health", "throughput"] * 2
    for kind in kinds:
        add(spool, kind)
    add(spool, "latency")  # 11: drops health seq 2
    add(spool, "latency")  # 12: drops health seq 4
    assert [r.seq for r in spool.after(0, limit=100)] == [1, 3, 5, 6, 7, 8, 9, 10, 11, 12]
    for _ in range(3):  # 13..15: health 7, 9, then the oldest of all: latency 1
        add(spool, "dns")
    kept = spool.after(0, limit=100)
    assert [r.seq for r in kept] == [3, 5, 6, 8, 10, 11, 12, 13, 14, 15]
    assert spool.figures().dropped == 5
    spool.close()
    assert Spool(tmp_path, max_bytes=1000).figures().dropped == 5  # counted for good


def test_a_result_larger_than_the_budget_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=500)
    add(spool, "health")
    with pytest.raises(StateError, match="exceeds the whole spool budget"):
        add(spool, "latency", size=600)
    assert spool.figures().depth == 1
    assert add(spool, "latency") == 2  # the refused one did not take a seq


WRITER = """
import sys
from probefleet.agent.spool import Spool
spool = Spool(sys.argv[1], max_bytes=10**9)
print("ready", flush=True)
while True:
    seq = spool.append("latency", lambda s: ("t", b"%d" % s))
    print(seq, flush=True)
"""


def test_kill_minus_9_while_appending_keeps_every_reported_seq(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with proc.stdout:
        reported = [int(line) for line in proc.stdout.read().split() if line.isdigit()]
    assert len(reported) > 5
    spool = Spool(tmp_path, max_bytes=10**9)
    stored = [r.seq for r in spool.after(0, limit=10**6)]
    # Every append that returned is on disk, no seq twice, none skipped; the next is new.
    assert stored[: len(reported)] == reported
    assert stored == list(range(1, len(stored) + 1))
    assert add(spool, "dns") == len(stored) + 1


# --- a new life under an old name: renumbering above the previous life's watermark ----------


def bump(payload: bytes, seq: int) -> bytes | None:
    """A stand-in for the wire re-encoding: the payload is the seq, right-aligned."""
    return f"{seq:>{len(payload)}}".encode()


def test_a_late_ack_of_this_life_renumbers_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100_000)
    for _ in range(5):
        add(spool, "latency")
    spool.confirm(5)  # empty now: the depth is 0, but seqs 1..5 were issued
    add(spool, "latency")
    for late in (0, 3, 5, 6):  # never above the highest seq issued (6)
        assert spool.renumber(late, bump) is None
    assert [r.seq for r in spool.after(0, limit=10)] == [6]
    assert spool.figures().next_seq == 7
    # One beyond: a previous life's watermark.
    moved = spool.renumber(7, bump)
    assert moved is not None
    assert (moved.new_first, moved.new_last, moved.next_seq) == (8, 8, 9)


def test_renumber_moves_every_result_above_the_watermark_durably(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100_000)
    kinds = ["latency", "health", "dns", "latency", "throughput"]
    for kind in kinds:
        add(spool, kind)
    spool.confirm(0, [(2, 2)])  # a hole: 1, 3, 4, 5 stay
    moved = spool.renumber(40_000, bump)
    assert moved is not None
    assert (moved.old_first, moved.old_last, moved.moved, moved.lost) == (1, 5, 4, 0)
    assert (moved.new_first, moved.new_last) == (40_001, 40_004)
    assert (moved.old_next_seq, moved.next_seq) == (6, 40_005)
    rows = spool.after(0, limit=100)
    # Oldest first, in the same order, each payload re-encoded with its new seq.
    assert [(r.seq, r.kind, r.topic) for r in rows] == [
        (40_001, "latency", "t/latency"),
        (40_002, "dns", "t/dns"),
        (40_003, "latency", "t/latency"),
        (40_004, "throughput", "t/throughput"),
    ]
    assert [int(r.payload) for r in rows] == [40_001, 40_002, 40_003, 40_004]
    # The old seqs are gone: a late ack of the old numbering deletes nothing.
    assert spool.confirm(5) == 0
    spool.close()
    again = Spool(tmp_path, max_bytes=100_000)
    figures = again.figures()
    assert (figures.depth, figures.oldest_seq, figures.next_seq) == (4, 40_001, 40_005)
    assert figures.renumbered == 4  # counted for good
    assert add(again, "dns") == 40_005
    assert again.renumber(40_004, bump) is None  # the watermark is now ours


def test_renumber_with_nothing_spooled_still_moves_the_counter(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100_000)
    moved = spool.renumber(900, bump)
    assert moved is not None
    assert (moved.moved, moved.next_seq, moved.new_first) == (0, 901, None)
    assert add(spool, "latency") == 901


def test_a_result_that_cannot_be_reencoded_is_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100_000)
    for _ in range(3):
        add(spool, "latency")
    moved = spool.renumber(10, lambda p, s: None if int(p) == 2 else bump(p, s))
    assert moved is not None
    assert (moved.moved, moved.lost) == (2, 1)
    assert [r.seq for r in spool.after(0, limit=10)] == [11, 12]
    figures = spool.figures()
    assert (figures.depth, figures.dropped, figures.bytes) == (2, 1, 200)


RENUMBERER = """
import sys, time
from probefleet.agent.spool import Spool
spool = Spool(sys.argv[1], max_bytes=10**9)

def slow(payload, seq):
    if seq == 2005:
        print("halfway", flush=True)
        time.sleep(60)  # killed here, mid-transaction
    return b"%d" % seq

spool.renumber(2000, slow)
"""


def test_kill_minus_9_mid_renumbering_leaves_the_old_numbering_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10**9)
    for _ in range(10):
        add(spool, "latency", size=10)
    spool.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", RENUMBERER, str(tmp_path)], stdout=subprocess.PIPE, cwd=ROOT,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    with proc.stdout:
        assert proc.stdout.readline().strip() == "halfway"  # four rows already updated
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    spool = Spool(tmp_path, max_bytes=10**9)
    rows = spool.after(0, limit=100)
    assert [r.seq for r in rows] == list(range(1, 11))
    assert [int(r.payload) for r in rows] == list(range(1, 11))
    assert (spool.figures().next_seq, spool.figures().renumbered) == (11, 0)
    moved = spool.renumber(2000, bump)  # done again, whole, at the next StoredAck
    assert moved is not None
    assert (moved.new_first, moved.new_last) == (2001, 2010)
