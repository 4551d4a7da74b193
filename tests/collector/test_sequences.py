"""Sequence bookkeeping: watermark, stored ranges, gaps, resends, giving up, persistence."""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

from probefleet.collector.sequences import MAX_GAPS, MAX_RANGES, ProbeSeqs, SequenceBook

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
    ranges = state.also_stored(recent={4})
    assert len(ranges) == MAX_RANGES
    assert (4, 4) in ranges  # the run just stored is acknowledged
    assert ranges == sorted(ranges)
    assert ranges[-1] == (state.max_seq, state.max_seq)  # then the highest


def test_resend_after_grace_then_interval_then_give_up() -> None:
    state = marked(1, 2, 3, 4, 6, now=100.0)
    kwargs: ResendPolicy = {"grace_s": 60.0, "interval_s": 30.0, "max_attempts": 2}
    assert state.due(150.0, **kwargs) == ([], [])  # within the grace time
    assert state.due(160.0, **kwargs) == ([(5, 5)], [])
    assert state.due(180.0, **kwargs) == ([], [])  # asked 20 s ago
    assert state.due(190.0, **kwargs) == ([(5, 5)], [])
    ask, given_up = state.due(220.0, **kwargs)
    assert ask == []
    assert [(g.first, g.last, g.attempts) for g in given_up] == [(5, 5, 2)]
    # Given up: the watermark passes the lost seq.
    assert (state.stored_through, state.gaps) == (6, [])


def test_too_many_gaps_gives_up_the_oldest() -> None:
    state = ProbeSeqs()
    dropped = []
    for seq in range(2, 2 * (MAX_GAPS + 5) + 1, 2):
        dropped += state.mark(seq, 0.0)
    assert len(state.gaps) == MAX_GAPS
    assert [(g.first, g.last) for g in dropped][:2] == [(1, 1), (3, 3)]


def test_state_round_trips_through_json() -> None:
    state = marked(1, 3, 7, now=5.5)
    state.due(100.0, 0.0, 0.0, 10)
    again = ProbeSeqs.from_json(state.to_json())
    assert again == state


def test_book_builds_acks_and_rate_limited_resends() -> None:
    book = SequenceBook()
    for probe in ("a", "b", "c"):
        for seq in (1, 2, 4):
            book.mark(probe, seq, now=0.0)
    assert book.take_dirty().keys() == {"a", "b", "c"}
    ack = book.stored_ack("a", {4}, AT)
    assert (ack.probe_id, ack.stored_through_seq, ack.also_stored) == ("a", 2, [(4, 4)])
    requests, lost = book.due_resends(
        100.0, grace_s=1.0, interval_s=10.0, max_attempts=3, budget=2, at=AT
    )
    assert len(requests) == 2
    assert lost == []
    assert all(r.ranges == [(3, 3)] for r in requests)
    # The probe that was not asked for comes first next time.
    asked = {r.probe_id for r in requests}
    requests, _ = book.due_resends(
        101.0, grace_s=1.0, interval_s=10.0, max_attempts=3, budget=1, at=AT
    )
    assert [r.probe_id for r in requests] == sorted({"a", "b", "c"} - asked)
    assert book.handled("a", 2)
    assert not book.handled("a", 3)
    assert not book.handled("z", 1)
