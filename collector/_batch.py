"""What a batch is made of (items, sealed batches), the MQTT side it needs, small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import msgspec
from probefleet.collector import clock
from probefleet.collector.deadletter import DeadLetter
from probefleet.collector.lineproto import Point
from probefleet.collector.mqtt import Inbound
from probefleet.collector.points import Parsed
from probefleet.collector.statedb import Quarantined
from probefleet.core import wire


def rebased_at(
    boot_ns: int, received_ns: int, max_future_s: float, result: wire.Result
) -> clock.Timestamp:
    return clock.rebased(result, boot_ns, received_ns, max_future_s)


def estimated_at(received_ns: int, result: wire.Result) -> clock.Timestamp:
    return clock.estimated(result, received_ns)


class Link(Protocol):
    def ack(self, message: Inbound) -> bool: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None: ...


class _Claim(msgspec.Struct):
    """What a rejected payload says about itself, read leniently (unknown fields ignored)."""

    probe_id: object = None
    seq: object = None


@dataclass(slots=True)
class Item:
    """One entry of a batch, in arrival order."""

    topic: str
    inbound: Inbound | None = None  # None: released from quarantine, nothing to ack
    probe: str | None = None
    seq: int | None = None  # marked handled once the batch is durable
    lines: list[str] = field(default_factory=list)
    letter: DeadLetter | None = None
    quarantine: Quarantined | None = None
    parsed: Parsed | None = None
    release_id: int | None = None
    when_ns: int | None = None  # the points' timestamp (None: quarantined, or no points)
    points: list[Point] | None = None  # as written (alert rules read them)
    status: wire.ProbeStatus | None = None  # a presence message


@dataclass(slots=True)
class Sealed:
    """A batch taken out of intake: its items, and their lines (with each line's topic)."""

    items: list[Item]
    lines: list[str]
    topics: list[str]


def claim(message: Inbound, topics: wire.Topics) -> tuple[str | None, int | None]:
    """The topic's probe, and the seq of a rejected result when its payload is that
    probe's: acknowledging it stops resend loops (it is kept as a dead letter)."""
    try:
        probe = topics.parse(message.topic)[0]
    except wire.WireError:
        return None, None
    payload = message.payload[: wire.MAX_PAYLOAD_BYTES]
    try:
        wire.check_nesting(payload)
        claim = msgspec.json.decode(payload, type=_Claim)
    except (msgspec.MsgspecError, wire.WireError, RecursionError):
        return probe, None
    seq = claim.seq
    if claim.probe_id != probe or type(seq) is not int or not 1 <= seq < 2**53:
        return probe, None
    return probe, seq
