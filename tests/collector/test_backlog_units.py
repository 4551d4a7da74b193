"""The pieces that keep presence right and memory bounded behind a backlog, without I/O:
the collector's lag from its own pings, the bounded inbox, the latest-status box."""

from __future__ import annotations

import threading
import time

from probefleet.collector.lag import Lag, topic
from probefleet.collector.mqtt import Inbound, Inbox, StatusBox
from probefleet.core import wire

from tests.harness import eventually


def _msg(topic: str = "probefleet/v1/p/results/latency", generation: int = 1) -> Inbound:
    return Inbound(topic, b"{}", 1, 1, generation, time.time_ns())


def test_the_ping_topic_matches_no_probe_subscription() -> None:
    topics = wire.Topics()
    for client_id in ("results", "status", "collector"):
        t = topic(topics.root, client_id)
        parts, results, status = t.split("/"), topics.all_results(), topics.all_status()
        for sub in (results, status):
            pattern = sub.split("/")
            assert len(pattern) != len(parts) or any(
                a not in ("+", b) for a, b in zip(pattern, parts, strict=True)
            ), (t, sub)


def test_lag_is_the_round_trip_and_grows_while_a_ping_is_out() -> None:
    lag = Lag()
    assert lag.lag_s(100.0) == 0.0
    first = lag.ping(100.0)
    assert lag.lag_s(103.0) == 3.0  # out for 3 s: at least that far behind
    lag.ping(105.0)
    assert lag.pong(first, 160.0)  # back after 60 s
    assert lag.through_s == 100.0
    assert lag.lag_s(161.0) == 61.0  # the one sent at 105 is still out: taken up to 100
    assert not lag.pong(b"not a ping", 161.0)
    assert lag.out == 1


def test_after_a_restart_the_lag_starts_at_the_outage() -> None:
    lag = Lag(through_s=1000.0)  # the newest ping back before we stopped
    payload = lag.ping(4600.0)  # an hour later; behind the backlog queued meanwhile
    assert lag.lag_s(4610.0) == 3610.0
    lag.pong(payload, 4900.0)  # drained in 300 s
    assert lag.lag_s(4900.0) == 300.0
    caught_up = lag.ping(4901.0)
    lag.pong(caught_up, 4901.01)
    assert lag.lag_s(4902.0) < 0.1


def test_a_full_inbox_holds_paho_back_until_there_is_room() -> None:
    inbox = Inbox(3, max_wait_s=30)
    for _ in range(3):
        inbox.put(_msg())
    done = threading.Event()

    def put() -> None:
        inbox.put(_msg())
        done.set()

    thread = threading.Thread(target=put, daemon=True)
    thread.start()
    assert not done.wait(0.2)  # waits for room
    assert inbox.qsize() == 3
    assert inbox.get(1) is not None  # taken into a batch: still held ...
    assert not done.wait(0.2)
    inbox.set_elsewhere(0)  # ... until it is acknowledged
    eventually(done.is_set, timeout_s=5, message="put did not resume")
    thread.join(5)
    assert inbox.qsize() == 3
    assert inbox.high_water == 3
    assert inbox.full_waits == 1


def test_a_put_that_waits_too_long_goes_through_and_close_drops() -> None:
    inbox = Inbox(1, max_wait_s=0.05)
    inbox.put(_msg())
    inbox.put(_msg())  # nobody takes: beyond capacity, counted
    assert (inbox.qsize(), inbox.overfilled) == (2, 1)
    inbox.close()
    inbox.put(_msg())
    assert inbox.qsize() == 2


def test_a_new_connection_drops_what_the_broker_will_redeliver() -> None:
    inbox = Inbox(10)
    inbox.put(_msg())
    inbox.put(_msg())
    inbox.new_connection(session_present=False)  # nothing is redelivered: keep them
    assert inbox.qsize() == 2
    inbox.new_connection(session_present=True)
    assert (inbox.qsize(), inbox.dropped) == (0, 2)
    assert inbox.get(0.01) is None


def test_get_wakes_up_on_wake() -> None:
    inbox = Inbox()
    threading.Timer(0.05, inbox.wake).start()
    started = time.monotonic()
    assert inbox.get(5) is None
    assert time.monotonic() - started < 4


def test_the_status_box_hands_over_every_status_in_arrival_order() -> None:
    """Each status is handled (a malformed one must get its dead letter, issue 15's
    corpus); only past max_held are a probe's older ones dropped for its newest."""
    woken: list[bool] = []
    box = StatusBox(wake=lambda: woken.append(True))
    a1, b1, a2 = _msg("r/a/status"), _msg("r/b/status"), _msg("r/a/status")
    for m in (a1, b1, a2):
        box.put(m)
    assert box.qsize() == 3
    assert box.take() == [a1, b1, a2]
    assert box.take() == []
    assert len(woken) == 3
    small = StatusBox(max_held=3)
    c1, d1, c2, c3 = (_msg(t) for t in ("r/c/status", "r/d/status", "r/c/status", "r/c/status"))
    for m in (c1, d1, c2, c3):
        small.put(m)
    assert small.take() == [d1, c3]  # bounded by the fleet: the newest per probe, in order
    assert small.superseded == 2


def test_what_the_service_holds_elsewhere_counts_against_the_inbox() -> None:
    inbox = Inbox(4, max_wait_s=0.05)
    for _ in range(4):
        inbox.put(_msg())
    assert inbox.get_nowait() is not None  # taken into a batch: still held, not acked
    inbox.put(_msg())  # no room: waits, then goes through and is counted
    assert (inbox.overfilled, inbox.qsize()) == (1, 4)
    assert inbox.get_nowait() is not None
    inbox.set_elsewhere(0)  # both batches acknowledged: 3 held, room for one
    inbox.put(_msg())
    assert (inbox.overfilled, inbox.qsize()) == (1, 4)
