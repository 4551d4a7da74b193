"""What a batch is made of (items, sealed chunks) and the MQTT side it needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from probefleet.collector.deadletter import DeadLetter
from probefleet.collector.lineproto import Point
from probefleet.collector.mqtt import Inbound
from probefleet.collector.points import Parsed
from probefleet.collector.statedb import Quarantined
from probefleet.core import wire


class Link(Protocol):
    def ack(self, message: Inbound) -> bool: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None: ...


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
