"""Intake stage 1, decode: a message -> a checked result, a probe status, or a dead letter.

Pure (no state): what a message says and whether it keeps to the wire contract. The next
stage (:mod:`collector.identity`) decides what its seq and clock mean.

Usage::

    decoded = decode(message, topics)        # Parsed | Status; raises Rejected
    letter = dead_letter(topic, payload, received_ns, probe, exc)
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from probefleet.collector.deadletter import DeadLetter
from probefleet.collector.errors import Rejected
from probefleet.collector.mqtt import Inbound
from probefleet.collector.points import Parsed, parse, parse_status
from probefleet.core import wire


@dataclass(frozen=True, slots=True)
class Status:
    """A ProbeStatus (presence, Last Will) of the topic's probe."""

    probe: str
    status: wire.ProbeStatus


def decode(message: Inbound, topics: wire.Topics) -> Parsed | Status:
    """Check ``message`` against the wire contract and its topic; Rejected names why."""
    if message.topic.endswith("/status"):
        return Status(*parse_status(message.topic, message.payload, topics))
    return parse(message.topic, message.payload, topics)


class _Claim(msgspec.Struct):
    """What a rejected payload says about itself, read leniently (unknown fields ignored)."""

    probe_id: object = None
    seq: object = None


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
        found = msgspec.json.decode(payload, type=_Claim)
    except (msgspec.MsgspecError, wire.WireError, RecursionError):
        return probe, None
    seq = found.seq
    if found.probe_id != probe or type(seq) is not int or not 1 <= seq < 2**53:
        return probe, None
    return probe, seq


def dead_letter(
    topic: str, payload: bytes, received_ns: int, probe: str | None, exc: Rejected
) -> DeadLetter:
    """A message (or a quarantine row) refused at parse time."""
    return DeadLetter(
        received_at=received_ns / 1e9,
        topic=topic,
        probe=probe,
        stage="parse",
        field=exc.field,
        reason=exc.reason,
        payload=payload,
    )
