"""A new life under an old name: the spool renumbered above a previous life's StoredAck.

Seqs are per probe for life; a reflashed SD card or a wiped state dir starts the spool at
seq 1 again, under the collector's watermark for this probe. The discriminator is the highest
seq this spool ever issued (``next_seq - 1``), never its depth: a late StoredAck of this
life cannot name a seq above it, a previous life's can (:meth:`Spool.renumber`)."""

from __future__ import annotations

import logging

import msgspec
from probefleet.agent.spool import Renumbered, Spool
from probefleet.core import wire

log = logging.getLogger(__name__)
# A previous life's watermark is a count of results one probe ever sent: a few million in a
# decade. An "ack" above this is forged or corrupt; renumbering above it would leave no
# seq to issue ("lost: can never be spooled" for every later result, across restarts).
MAX_WATERMARK = 2**40


def previous_life(spool: Spool, ack: wire.StoredAck) -> Renumbered | None:
    """If ``ack`` names a seq beyond any ``spool`` issued, renumber the spool above it, say so
    and return what moved; else None (a StoredAck of this life: confirm what it covers)."""
    highest = max([ack.stored_through_seq, *(last for _, last in ack.also_stored)])
    moved = spool.renumber(highest, reencode)
    if moved is not None:
        report(moved)
    return moved


def reencode(payload: bytes, seq: int) -> bytes | None:
    """The spooled result with a new seq, through the wire contract; None if it is not a
    valid result (it would be refused by the collector anyway).

    The topic, the tags and ``measured_at`` stay the same: a result the collector already
    stored under its old seq is written again as the same InfluxDB point (same measurement,
    tags and timestamp; ``seq`` is a field), which overwrites it -- idempotent, no double
    count."""
    try:
        result = wire.decode_result(payload)
        return wire.encode(msgspec.structs.replace(result, seq=seq))
    except (wire.WireError, ValueError) as exc:
        log.error("spooled result cannot be re-encoded with seq %d: %s", seq, exc)
        return None


def report(moved: Renumbered) -> None:
    """One warning for the renumbering (an error too if results were dropped)."""
    previous = (
        f"the collector has stored seqs up to {moved.watermark} from this probe's previous "
        "life (SD card reflashed or state dir wiped?)"
    )
    if moved.moved:
        log.warning(
            "%s: renumbered %d spooled result(s), seqs %s..%s -> %s..%s; next seq %d (was %d)",
            previous,
            moved.moved,
            moved.old_first,
            moved.old_last,
            moved.new_first,
            moved.new_last,
            moved.next_seq,
            moved.old_next_seq,
        )
    else:
        log.warning(
            "%s: next seq %d (was %d), nothing spooled to renumber",
            previous,
            moved.next_seq,
            moved.old_next_seq,
        )
    if moved.lost:
        log.error(
            "%d spooled result(s) could not be re-encoded with a new seq and were dropped",
            moved.lost,
        )
