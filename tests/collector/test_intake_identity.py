"""The identity-and-clock stage alone (no database): seq reach, boots, the clock's verdict."""

from __future__ import annotations

import datetime as dt

import pytest
from probefleet.collector import clock
from probefleet.collector.config import ClockSection
from probefleet.collector.errors import Rejected
from probefleet.collector.identity import MAX_SEQ_JUMP, Boots, Identity
from probefleet.collector.sequences import SequenceBook
from probefleet.collector.statedb import Boot
from probefleet.collector.stats import Stats
from probefleet.core import wire

from tests.collector.helpers import BASE_TIME, BOOT, encode, result


def stage(book: SequenceBook | None = None) -> Identity:
    return Identity(ClockSection(), book or SequenceBook(), Boots({}), Stats())


def decoded(**changes: object) -> wire.Result:
    return wire.decode_result(encode(result("latency", **changes)))  # type: ignore[arg-type]


def test_a_trusted_result_teaches_its_boot_and_the_boot_waits_to_be_saved() -> None:
    identity = stage()
    placed = identity.place("probe-a", decoded(seq=1, measured_at=BASE_TIME, uptime_s=100.0),
                            clock.ns(BASE_TIME) + 10**9)  # fmt: skip
    boot_ns = clock.ns(BASE_TIME) - 100 * 10**9
    assert placed.when == clock.Timestamp(clock.ns(BASE_TIME), "probe")
    assert placed.learnt_ns == boot_ns
    assert identity.boots.unsaved == {("probe-a", BOOT): Boot(1, boot_ns)}
    again = identity.place("probe-a", decoded(seq=2, measured_at=BASE_TIME, uptime_s=100.0),
                           clock.ns(BASE_TIME) + 10**9)  # fmt: skip
    assert again.learnt_ns is None  # learnt once


def test_an_unsynced_result_of_an_unknown_boot_has_no_time_yet() -> None:
    identity = stage()
    bogus = dt.datetime(1970, 1, 1, 0, 1, tzinfo=dt.UTC)
    placed = identity.place("probe-a", decoded(seq=1, synced=False, measured_at=bogus),
                            clock.ns(BASE_TIME))  # fmt: skip
    assert placed.when is None
    assert identity.boots.unsaved == {("probe-a", BOOT): Boot(1, None)}  # seen, not timed


def test_a_seq_out_of_reach_is_refused_before_anything_is_noted() -> None:
    identity = stage()
    far = decoded(seq=MAX_SEQ_JUMP + 1, measured_at=BASE_TIME, uptime_s=10.0)
    with pytest.raises(Rejected, match="beyond this probe's seq"):
        identity.place("probe-a", far, clock.ns(BASE_TIME))
    assert identity.boots.unsaved == {}


def test_a_new_boot_restarting_the_seq_resets_the_book() -> None:
    book = SequenceBook()
    for seq in (1, 2, 3):
        book.mark("probe-a", seq, 0.0)
    identity = stage(book)
    identity.boots.known[("probe-a", BOOT)] = Boot(1)
    other = "0b7a8d9e-1111-4222-8333-944455556666"
    identity.place("probe-a", decoded(seq=2, boot=other), clock.ns(BASE_TIME) + 10**9)
    assert identity.stats["seq_resets"] == 1
    assert book.get("probe-a").max_seq == 0
