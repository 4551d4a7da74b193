"""Sequence bookkeeping: watermark, stored ranges, gaps, resends, settling, merging, persistence."""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

from probefleet.collector.sequences import (
    MAX_ACKS,
    MAX_GAPS,
    MAX_RANGES,
    Gap,
    ProbeSeqs,
    SequenceBook,
    Settled,
)

AT = dt.datetime(2025, 11, 3, tzinfo=dt.UTC)


class ResendPolicy(TypedDict):
    """ProbeSeqs.due's keyword arguments."""

    grace_s: float
    interval_s: float
    max_attempts: int


def marked(*seqs: int, now: float = 0.0) -> ProbeSeqs:
    state = ProbeSeqs()
    for seq in seqs:
        state.mark(seq, now)
    return state


def test_contiguous_seqs_move_the_watermark() -> None:
    state = marked(1, 2, 3)
    assert (state.stored_through, state.stored_ranges(), state.gaps) == (3, [], [])


def test_a_gap_holds_the_watermark_and_later_runs_are_also_stored() -> None:
    state = marked(1, 2, 3, 4, 6, 7, 8, 9, 10)
    assert state.stored_through == 4
    assert state.stored_ranges() == [(6, 10)]
    assert [(g.first, g.last) for g in state.gaps] == [(5, 5)]
    state.mark(5, 1.0)
    assert (state.stored_through, state.stored_ranges()) == (10, [])


def test_out_of_order_arrivals_split_gaps() -> None:
    state = marked(10)  # first seen at 10: 1..9 are missing, not assumed stored
    assert state.stored_through == 0
    assert state.stored_ranges() == [(10, 10)]
    state.mark(5, 1.0)
    assert [(g.first, g.last) for g in state.gaps] == [(1, 4), (6, 9)]
    assert state.stored_ranges() == [(5, 5), (10, 10)]
    state.mark(5, 2.0)  # a duplicate changes nothing
    assert state.stored_ranges() == [(5, 5), (10, 10)]


def test_also_stored_is_bounded_and_keeps_recent_runs() -> None:
    state = marked(*range(2, 2 * (MAX_RANGES + 10), 2))  # every even seq: many runs
    [ranges] = state.also_stored(recent={4})
    assert len(ranges) == MAX_RANGES
    assert (4, 4) in ranges  # the run just stored is acknowledged
    assert ranges == sorted(ranges)
    assert ranges[-1] == (state.max_seq, state.max_seq)  # then the highest


def test_a_batch_with_more_runs_than_one_ack_holds_gets_several_acks() -> None:
    """A share group's collector handles every other seq of a backlog: 300 runs in one
    batch, all of which the probe waits for."""
    seqs = range(2, 601, 2)
    state = marked(*seqs)
    acks = state.also_stored(recent=set(seqs))
    assert [len(a) for a in acks] == [64, 64, 64, 64, 44]
    assert sorted(r for a in acks for r in a) == [(s, s) for s in seqs]
    many = marked(*range(2, 2 * (MAX_ACKS * MAX_RANGES + 100), 2))
    capped = many.also_stored(recent=set(range(2, 2 * (MAX_ACKS * MAX_RANGES + 100), 2)))
    assert len(capped) == MAX_ACKS


def test_resend_after_grace_then_interval_then_wait_never_give_up() -> None:
    state = marked(1, 2, 3, 4, 6, now=100.0)
    kwargs: ResendPolicy = {"grace_s": 60.0, "interval_s": 30.0, "max_attempts": 2}
    assert state.due(150.0, **kwargs) == []  # within the grace time
    assert state.due(160.0, **kwargs) == [(5, 5)]
    assert state.due(180.0, **kwargs) == []  # asked 20 s ago
    assert state.due(190.0, **kwargs) == [(5, 5)]
    assert state.due(220.0, **kwargs) == []  # asked twice: it waits
    # Never given up: the watermark does not pass a seq this collector did not handle.
    assert (state.stored_through, [(g.first, g.last) for g in state.gaps]) == (4, [(5, 5)])
    assert state.stored_ranges() == [(6, 6)]


def test_held_from_settles_gaps_and_pins_the_watermark_below_them() -> None:
    """Another collector stored 3 and 5 (or the probe dropped them): once the probe holds
    nothing below 7 they leave the book, and no ack of this collector ever names them."""
    state = marked(1, 2, 4, 6)
    settled = state.mark(7, 1.0, held_from=7)
    assert (settled.seqs, settled.never_here) == (2, 2)
    assert state.gaps == []
    assert state.stored_through == 2  # not 7: 3 was never handled here
    assert state.stored_ranges() == [(7, 7)]  # below the floor nothing is named
    state.mark(9, 2.0, held_from=8)
    assert [(g.first, g.last) for g in state.gaps] == [(8, 8)]
    assert state.stored_ranges() == [(9, 9)]  # 7 neither: the probe no longer holds it
    assert state.mark(8, 3.0, held_from=8) == Settled()
    assert (state.stored_through, state.stored_ranges()) == (2, [(8, 9)])


def test_a_probe_first_seen_is_not_asked_for_what_it_no_longer_holds() -> None:
    state = ProbeSeqs()
    state.mark(1043, 0.0, held_from=1000)
    assert [(g.first, g.last) for g in state.gaps] == [(1000, 1042)]
    assert (state.stored_through, state.stored_ranges()) == (0, [(1043, 1043)])
    assert state.mark(1044, 0.0, held_from=1000) == Settled()


def test_too_many_gaps_merge_the_closest_never_give_up() -> None:
    state = ProbeSeqs()
    for seq in range(2, 2 * (MAX_GAPS + 5) + 1, 2):
        state.mark(seq, 0.0)
    state.mark(5000, 0.0)  # one wide run of handled seqs, then a long gap
    assert len(state.gaps) == MAX_GAPS
    # Every seq not handled is still in a gap (so never acknowledged) ...
    in_gaps = {s for g in state.gaps for s in range(g.first, g.last + 1)}
    assert set(range(1, 2 * (MAX_GAPS + 5), 2)) <= in_gaps
    assert state.stored_through == 0
    acked = {s for a, b in state.stored_ranges() for s in range(a, b + 1)}
    assert not acked & in_gaps
    # ... and a merged gap, settled, is not counted as never handled here.
    settled = state.settle(5000)
    assert settled.seqs == len(in_gaps)
    assert settled.never_here < settled.seqs


def test_state_round_trips_through_json() -> None:
    state = marked(1, 3, 7, now=5.5)
    state.due(100.0, 0.0, 0.0, 10)
    state.mark(9, 6.0, held_from=3)
    again = ProbeSeqs.from_json(state.to_json())
    assert again == state
    old = '{"max_seq": 3, "gaps": [[2, 2, 1.0, 0, 0.0]]}'  # written before held_from_seq
    assert ProbeSeqs.from_json(old) == ProbeSeqs(3, [Gap(2, 2, 1.0)])


def test_book_builds_acks_and_rate_limited_resends() -> None:
    book = SequenceBook()
    for probe in ("a", "b", "c"):
        for seq in (1, 2, 4):
            book.mark(probe, seq, now=0.0)
    assert book.take_dirty().keys() == {"a", "b", "c"}
    [ack] = book.stored_acks("a", {4}, AT)
    assert (ack.probe_id, ack.stored_through_seq, ack.also_stored) == ("a", 2, [(4, 4)])
    requests = book.due_resends(
        100.0, grace_s=1.0, interval_s=10.0, max_attempts=3, budget=2, at=AT
    )
    assert len(requests) == 2
    assert all(r.ranges == [(3, 3)] for r in requests)
    # The probe that was not asked for comes first next time.
    asked = {r.probe_id for r in requests}
    requests = book.due_resends(
        101.0, grace_s=1.0, interval_s=10.0, max_attempts=3, budget=1, at=AT
    )
    assert [r.probe_id for r in requests] == sorted({"a", "b", "c"} - asked)
    assert book.handled("a", 2)
    assert not book.handled("a", 3)
    assert not book.handled("z", 1)
    assert book.gaps_open() == 3
    # A probe cannot say it holds nothing below a seq above the result itself.
    book.mark("a", 5, now=1.0, held_from=99)
    assert book.get("a").floor == 5
