"""Delivery without a broker: a real spool on disk, real wire payloads, a fake ``send`` and
a hand-driven clock. What goes out, when, and what PUBACKs, StoredAcks and ResendRequests do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from probefleet.agent.config import SpoolSection
from probefleet.agent.delivery import MAX_ACK_TIMEOUT_S, PUBACK_TIMEOUT_S, SETTLE_S, Delivery
from probefleet.agent.errors import PublishError
from probefleet.agent.renumber import reencode
from probefleet.agent.spool import Spool
from probefleet.core import wire

from tests.agent.spooling import (
    PROBE,
    disk_fails,
    resend_request,
    seqs,
    spool_results,
    stored_ack,
)

T = 1000.0  # the monotonic clock at the start of each test


class Sends:
    """The fake ``send``: records each publish as (mid, seq); mids count up from 1."""

    def __init__(self) -> None:
        self.log: list[tuple[int, int]] = []
        self.held: dict[int, int | None] = {}  # seq -> its held_from_seq when last sent
        self.refuse: PublishError | None = None
        self._read = 0

    def __call__(self, topic: str, payload: bytes) -> int:
        if self.refuse is not None:
            raise self.refuse
        assert topic == wire.Topics().result(PROBE, "latency")
        result = wire.decode_result(payload)
        self.log.append((len(self.log) + 1, result.seq))
        self.held[result.seq] = result.held_from_seq
        return len(self.log)

    def new(self) -> list[int]:
        """The seqs published since the last call, in order."""
        fresh = [seq for _, seq in self.log[self._read :]]
        self._read = len(self.log)
        return fresh

    def mid(self, seq: int) -> int:
        """The message id of ``seq``'s latest publish."""
        return max(mid for mid, s in self.log if s == seq)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path, max_bytes=10**7)
    try:
        yield spool
    finally:
        spool.close()


def online(spool: Spool, **cfg: Any) -> tuple[Delivery, Sends]:
    """A delivery on ``spool`` with [spool] settings ``cfg``, connected at ``T``."""
    sends = Sends()
    delivery = Delivery(PROBE, SpoolSection(**cfg), spool, sends)
    delivery.connected(T, session_present=False, max_packet=None, at=0.0)
    return delivery, sends


def puback_all(delivery: Delivery, sends: Sends, seqs: list[int], now: float) -> None:
    for seq in seqs:
        delivery.puback(sends.mid(seq), 0x00, "Success", now)


# --- the window ---------------------------------------------------------------------------


def test_the_window_fills_oldest_first_and_the_unconfirmed_cap_holds(spool: Spool) -> None:
    spool_results(spool, 10)
    delivery, sends = online(spool, window=3, max_unconfirmed=5)
    delivery.tick(T)
    assert sends.new() == [1, 2, 3]
    delivery.tick(T + 1)
    assert sends.new() == [], "the window is full"
    puback_all(delivery, sends, [1], T + 1)
    delivery.tick(T + 1)
    assert sends.new() == [4]
    puback_all(delivery, sends, [2, 3, 4], T + 2)
    delivery.tick(T + 2)
    assert sends.new() == [5], "4 await a StoredAck, 1 a PUBACK: the cap of 5"
    assert (delivery.state.published, delivery.state.inflight, delivery.state.unconfirmed) == (
        5,
        1,
        4,
    )
    assert seqs(spool) == list(range(1, 11)), "a PUBACK deletes nothing"
    delivery.message("ack", stored_ack(4))
    delivery.tick(T + 3)
    assert sends.new() == [6, 7]
    assert seqs(spool) == list(range(5, 11))


def test_every_publish_says_the_lowest_seq_still_held(spool: Spool) -> None:
    """held_from_seq is spliced in at publish time (the spool keeps what was measured):
    after a StoredAck for 1..2 and 4, seq 3 is the lowest the probe still holds."""
    spool_results(spool, 6)
    delivery, sends = online(spool, window=2)
    delivery.tick(T)
    assert sends.new() == [1, 2]
    assert sends.held == {1: 1, 2: 1}
    delivery.message("ack", stored_ack(2, [(4, 4)]))
    puback_all(delivery, sends, [1, 2], T + 1)
    delivery.tick(T + 1)
    assert sends.new() == [3, 4]
    assert (sends.held[3], sends.held[4]) == (3, 3)
    delivery.message("ack", stored_ack(3))
    puback_all(delivery, sends, [3, 4], T + 2)
    delivery.tick(T + 2)
    assert sends.new() == [5, 6]
    assert (sends.held[5], sends.held[6]) == (5, 5)
    assert all(b'"held_from_seq"' not in r.payload for r in spool.after(0, limit=10))


def test_nothing_goes_out_while_disconnected(spool: Spool) -> None:
    spool_results(spool, 3)
    delivery, sends = online(spool)
    delivery.disconnected("Unspecified error", at=5.0)
    delivery.tick(T)
    assert sends.new() == []
    assert delivery.state.last_error == "disconnected: Unspecified error"
    delivery.connected(T + 1, session_present=False, max_packet=None, at=6.0)
    delivery.tick(T + 1)
    assert sends.new() == [1, 2, 3]
    assert delivery.state.connected
    assert delivery.state.last_error is None


def test_a_resumed_session_waits_for_what_the_centre_queued_first(spool: Spool) -> None:
    spool_results(spool, 3)
    delivery, sends = online(spool)
    delivery.connected(T, session_present=True, max_packet=None, at=0.0)
    delivery.tick(T + SETTLE_S / 2)
    assert sends.new() == []
    # The previous life's StoredAck, queued in the session, arrives in the settling time:
    # nothing of the new life went out under the old numbering.
    delivery.message("ack", stored_ack(500))
    delivery.tick(T + SETTLE_S)
    assert sends.new() == [501, 502, 503]


# --- PUBACK -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name", "logged"),
    [
        (0x10, "No matching subscribers", "no matching subscribers"),
        (0x87, "Not authorized", "refused by the broker: Not authorized (0x87)"),
        (0x80, "Unspecified error", "refused by the broker: Unspecified error (0x80)"),
    ],
)
def test_a_puback_other_than_success_is_retried_and_holds_the_spool_back(
    spool: Spool, caplog: pytest.LogCaptureFixture, code: int, name: str, logged: str
) -> None:
    caplog.set_level(logging.INFO)
    spool_results(spool, 4)
    delivery, sends = online(spool, window=2, retry_s=30.0)
    delivery.tick(T)
    assert sends.new() == [1, 2]
    delivery.puback(sends.mid(1), code, name, T + 1)
    puback_all(delivery, sends, [2], T + 1)
    assert delivery.state.refused == {name: 1}
    assert logged in caplog.text
    delivery.tick(T + 30)
    assert sends.new() == [], "held back for retry_s: neither seq 1 nor the rest of the spool"
    delivery.tick(T + 31.5)
    assert sends.new() == [1, 3], "seq 1 again first, then the spool where it was"
    puback_all(delivery, sends, [1, 3], T + 32)
    delivery.tick(T + 32)
    assert sends.new() == [4]
    assert (delivery.state.unconfirmed, delivery.state.published) == (3, 5)  # 1 went out twice
    assert seqs(spool) == [1, 2, 3, 4]


def test_a_puback_that_never_comes_means_publishing_again(spool: Spool) -> None:
    spool_results(spool, 1)
    delivery, sends = online(spool)
    delivery.tick(T)
    assert sends.new() == [1]
    delivery.tick(T + PUBACK_TIMEOUT_S)
    assert sends.new() == []
    delivery.tick(T + PUBACK_TIMEOUT_S + 1)
    assert sends.new() == [1]
    delivery.puback(1, 0x00, "Success", T + 62)  # the first message's, late: not ours any more
    delivery.tick(T + 62)
    assert (delivery.state.inflight, delivery.state.unconfirmed) == (1, 0)
    delivery.puback(2, 0x00, "Success", T + 62)
    delivery.tick(T + 62)
    assert (delivery.state.inflight, delivery.state.unconfirmed) == (0, 1)


def test_paho_refusing_a_message_holds_the_spool_back(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool_results(spool, 3)
    delivery, sends = online(spool, retry_s=10.0)
    sends.refuse = PublishError("publish error", "Invalid topic.")
    delivery.tick(T)
    assert delivery.state.refused == {"publish error": 1}, "one try, not the whole spool"
    assert "publishing seq 1 failed: Invalid topic." in caplog.text
    sends.refuse = PublishError("paho queue full")
    delivery.tick(T + 10)
    assert delivery.state.refused == {"publish error": 1, "paho queue full": 1}
    sends.refuse = None
    delivery.tick(T + 15)
    assert sends.new() == []
    delivery.tick(T + 20)
    assert sends.new() == [1, 2, 3]


def test_a_result_over_the_brokers_packet_size_is_set_aside_alone(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool_results(spool, 10)
    rows = spool.after(0, limit=10)
    big = rows[-1]  # seq 10: two digits where the others have one
    assert all(len(r.payload) < len(big.payload) for r in rows[:-1])
    delivery, sends = online(spool, window=10, retry_s=1.0)
    limit = len(big.payload) + len(big.topic) + 15  # seq 10 is one byte over, 1..9 fit
    delivery.connected(T, session_present=False, max_packet=limit, at=0.0)
    delivery.tick(T)
    assert sends.new() == list(range(1, 10)), "the others are not held back"
    assert delivery.state.refused == {"over broker packet size": 1}
    assert f"seq 10 ({len(big.payload)} bytes) exceeds the broker's maximum packet size" in (
        caplog.text
    )
    delivery.tick(T + 19)
    assert delivery.state.refused == {"over broker packet size": 1}
    delivery.tick(T + 20.5)  # 20 x retry_s: tried again (a new broker may take it)
    assert delivery.state.refused == {"over broker packet size": 2}
    assert sends.new() == []


# --- the StoredAck timeout --------------------------------------------------------------------


def test_the_ack_timeout_doubles_while_no_stored_ack_comes_and_resets_at_one(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    spool_results(spool, 1)
    delivery, sends = online(spool, ack_timeout_s=10.0)
    now = T
    delivery.tick(now)
    for wait in (10.0, 10.0, 20.0, 40.0):  # the first expiry does not double: one did
        assert sends.new() == [1]
        delivery.puback(sends.mid(1), 0x00, "Success", now)
        delivery.tick(now + wait)
        assert sends.new() == [], f"sent again before {wait} s"
        now += wait + 0.1
        delivery.tick(now)
    assert sends.new() == [1]
    assert delivery.ack_timeout_s == 80.0
    assert delivery.state.resent == 4
    assert "1 result(s) not confirmed by the collector within 40 s (seqs 1..1)" in caplog.text
    # A StoredAck: the collector is back, the timeout too.
    delivery.puback(sends.mid(1), 0x00, "Success", now)
    delivery.message("ack", stored_ack(1))
    assert delivery.ack_timeout_s == 10.0
    spool_results(spool, 1)
    delivery.tick(now)
    assert sends.new() == [2]
    delivery.puback(sends.mid(2), 0x00, "Success", now)
    delivery.tick(now + 10.1)
    assert sends.new() == [2]


def test_each_result_waits_for_its_stored_ack_from_its_own_puback(spool: Spool) -> None:
    spool_results(spool, 3)
    delivery, sends = online(spool, ack_timeout_s=10.0)
    delivery.tick(T)
    assert sends.new() == [1, 2, 3]
    puback_all(delivery, sends, [1], T)
    puback_all(delivery, sends, [2], T + 5)
    puback_all(delivery, sends, [3], T + 8)
    delivery.tick(T + 10.5)
    assert sends.new() == [1]
    delivery.tick(T + 15.5)
    assert sends.new() == [2]
    delivery.tick(T + 18.5)
    assert sends.new() == [], "a second expiry with no StoredAck between: 20 s now"
    delivery.tick(T + 28.5)
    assert sends.new() == [3]


def test_the_ack_timeout_stops_doubling_at_six_hours(spool: Spool) -> None:
    spool_results(spool, 1)
    delivery, sends = online(spool, ack_timeout_s=3600.0)
    now = T
    for _ in range(5):
        delivery.tick(now)
        delivery.puback(sends.mid(1), 0x00, "Success", now)
        now += delivery.ack_timeout_s + 1
    delivery.tick(now)
    assert delivery.ack_timeout_s == MAX_ACK_TIMEOUT_S == 6 * 3600.0


# --- StoredAck and ResendRequest ----------------------------------------------------------


def test_a_stored_ack_deletes_exactly_the_seqs_it_names(spool: Spool) -> None:
    spool_results(spool, 9)
    delivery, sends = online(spool, window=8)
    delivery.tick(T)
    puback_all(delivery, sends, list(range(1, 8)), T)  # 8 still awaits its PUBACK
    delivery.message("ack", stored_ack(2, [(4, 5), (7, 8)]))
    assert seqs(spool) == [3, 6, 9]
    delivery.tick(T + 1)
    assert sends.new() == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert delivery.state.confirmed == 6
    assert delivery.state.last_ack_seq == 2
    assert (delivery.state.unconfirmed, delivery.state.inflight) == (2, 1)  # 3, 6; 9
    delivery.message("ack", stored_ack(2, [(4, 5)]))  # repeated: nothing more to delete
    assert (delivery.state.confirmed, seqs(spool)) == (6, [3, 6, 9])
    other = wire.encode(
        wire.StoredAck(schema=1, probe_id="probe-b", stored_through_seq=9, at=wire.utc_now())
    )
    delivery.message("ack", other)
    assert seqs(spool) == [3, 6, 9], "another probe's StoredAck"


def test_a_bad_message_from_the_centre_changes_nothing(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool_results(spool, 2)
    delivery, _ = online(spool)
    delivery.message("ack", b'{"schema": 1, "probe_id": "probe-a"}')
    delivery.message("resend", b"\xff not json")
    assert "ignoring a bad ack message" in caplog.text
    assert "ignoring a bad resend message" in caplog.text
    assert seqs(spool) == [1, 2]


def test_a_resend_request_republishes_only_what_is_still_spooled(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    spool_results(spool, 6)
    delivery, sends = online(spool, window=4)
    delivery.tick(T)
    assert sends.new() == [1, 2, 3, 4]
    puback_all(delivery, sends, [1, 2, 3, 4], T)
    delivery.message("ack", stored_ack(0, [(2, 2)]))
    # 2 was stored (gone), 5 and 6 were never published (they go out in order anyway),
    # 100..200 were never ours: 1 and 3 go out again, before the rest of the spool.
    delivery.message("resend", resend_request((1, 3), (5, 6), (100, 200)))
    assert "resend request for 106 seq(s): 4 still spooled, publishing again" in caplog.text
    assert delivery.state.resent == 2
    delivery.tick(T + 1)
    assert sends.new() == [1, 3, 5, 6]
    assert delivery.state.unconfirmed == 1  # 4: still awaits its StoredAck


# --- a new life under an old name (wiped state dir, reflashed SD card) -----------------------


def test_late_acks_of_this_life_confirm_and_never_renumber(spool: Spool) -> None:
    spool_results(spool, 6)
    delivery, _ = online(spool)
    delivery.message("ack", stored_ack(6))  # the whole spool confirmed: depth 0, six issued
    assert seqs(spool) == []
    spool_results(spool, 2)  # 7, 8
    for late in (3, 6, 8):  # late or repeated, never above the highest seq issued
        delivery.message("ack", stored_ack(late))
    assert seqs(spool) == []
    assert spool.figures().next_seq == 9
    assert delivery.state.renumbered == 0
    assert spool.figures().renumbered == 0


def test_an_ack_from_the_previous_life_renumbers_and_deletes_nothing(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool_results(spool, 5)
    before = spool.after(0, limit=10)
    delivery, sends = online(spool, window=2)
    delivery.tick(T)
    assert sends.new() == [1, 2]
    delivery.message("ack", stored_ack(3, [(5, 40_000)]))  # an also_stored range reaches beyond
    after = spool.after(0, limit=10)
    assert [r.seq for r in after] == [40_001, 40_002, 40_003, 40_004, 40_005]
    for old, new in zip(before, after, strict=True):
        decoded = wire.decode_result(new.payload)
        assert decoded == msgspec.structs.replace(wire.decode_result(old.payload), seq=new.seq)
        assert new.topic == old.topic
    assert delivery.state.renumbered == 5
    assert spool.figures().next_seq == 40_006
    assert "from this probe's previous life" in caplog.text
    assert "renumbered 5 spooled result(s), seqs 1..5 -> 40001..40005" in caplog.text
    # Old mids mean nothing now; delivery starts again from the spool, oldest first.
    delivery.puback(sends.mid(1), 0x00, "Success", T)
    delivery.tick(T)
    assert sends.new() == [40_001, 40_002]
    assert (delivery.state.inflight, delivery.state.unconfirmed) == (2, 0)


def test_a_forged_ack_beyond_any_life_changes_nothing(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool_results(spool, 5)
    delivery, sends = online(spool, window=5)
    delivery.tick(T)
    assert sends.new() == [1, 2, 3, 4, 5]
    for forged in (stored_ack(2**53 - 1), stored_ack(2, [(3, 2**41)])):
        delivery.message("ack", forged)
    assert seqs(spool) == [1, 2, 3, 4, 5], "a forged ack deleted results"
    assert spool.figures().next_seq == 6, "a forged ack moved the numbering"
    assert "no probe ever got that far" in caplog.text
    # ... and the real collector's ack still works.
    delivery.message("ack", stored_ack(5))
    assert seqs(spool) == []
    spool_results(spool, 1)
    assert [r.seq for r in spool.after(0, limit=5)] == [6]


def test_a_burst_of_previous_life_acks_deletes_only_what_was_published(spool: Spool) -> None:
    spool_results(spool, 5)
    delivery, sends = online(spool, window=2)
    delivery.message("ack", stored_ack(1000))  # 1..5 -> 1001..1005
    delivery.message("ack", stored_ack(1003))  # the old life's next ack, right behind it
    assert seqs(spool) == [1001, 1002, 1003, 1004, 1005], "deleted results never published"
    delivery.tick(T)  # 1001 and 1002 go out; the collector stores them, acks them
    assert sends.new() == [1001, 1002]
    delivery.message("ack", stored_ack(1002))
    assert seqs(spool) == [1003, 1004, 1005]
    delivery.message("ack", stored_ack(1010))  # beyond again: renumbered once more
    assert seqs(spool) == [1011, 1012, 1013]
    assert delivery.state.renumbered == 8


def test_a_wiped_spool_with_nothing_in_it_moves_its_counter_past_the_old_life(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    delivery, sends = online(spool)
    delivery.message("ack", stored_ack(900))
    assert "next seq 901 (was 1), nothing spooled to renumber" in caplog.text
    assert spool_results(spool, 1) == [901]
    delivery.tick(T)
    assert sends.new() == [901]


def test_reencode_changes_only_the_seq_through_the_wire_contract(spool: Spool) -> None:
    spool_results(spool, 3)
    row = spool.after(2, limit=1)[0]
    fresh = reencode(row.payload, 40_001)
    assert fresh is not None
    again = wire.decode_result(fresh)
    assert again.seq == 40_001
    assert again == msgspec.structs.replace(wire.decode_result(row.payload), seq=40_001)
    assert reencode(b'{"kind": "latency"}', 40_002) is None  # not a result: dropped, logged


# --- a failing disk costs one message, never the publisher ----------------------------------


def test_a_spool_failing_on_a_stored_ack_deletes_nothing_and_delivery_goes_on(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool_results(spool, 6)
    delivery, sends = online(spool, window=4)
    delivery.tick(T)
    assert sends.new() == [1, 2, 3, 4]
    puback_all(delivery, sends, [1, 2, 3, 4], T)
    with disk_fails(spool, "DELETE", from_seq=4):  # 1..3 deleted, then the disk fails
        delivery.message("ack", stored_ack(4))
    assert "ack message not handled, the spool failed" in caplog.text
    assert "disk I/O error (test)" in caplog.text
    assert seqs(spool) == [1, 2, 3, 4, 5, 6], "the transaction was rolled back whole"
    assert (delivery.state.confirmed, delivery.state.last_ack_seq) == (0, None)
    delivery.tick(T + 1)
    assert sends.new() == [5, 6], "the pump goes on"
    assert delivery.state.unconfirmed == 4, "1..4 still await their StoredAck"
    delivery.message("ack", stored_ack(4))  # the next StoredAck, the disk fine again
    assert seqs(spool) == [5, 6]
    assert delivery.state.confirmed == 4


def test_a_spool_failing_mid_renumbering_keeps_the_old_numbering_whole(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool_results(spool, 4)
    delivery, sends = online(spool)
    with disk_fails(spool, "UPDATE", from_seq=3):  # 1 and 2 renumbered, then the disk fails
        delivery.message("ack", stored_ack(700))
    assert "ack message not handled, the spool failed" in caplog.text
    assert seqs(spool) == [1, 2, 3, 4]
    assert (spool.figures().next_seq, delivery.state.renumbered) == (5, 0)
    delivery.message("ack", stored_ack(700))  # the centre sends it again: done whole
    assert seqs(spool) == [701, 702, 703, 704]
    delivery.tick(T)
    assert sends.new() == [701, 702, 703, 704]
