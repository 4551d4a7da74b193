"""The agent's delivery state, pure: what goes out next and what each broker event means.

No paho, no threads, no clock: :mod:`probefleet.agent.publisher` feeds it events with the
time (``now``, monotonic seconds) and carries out its one action, ``send(topic, payload)``::

    spool (oldest first) --send--> in flight --PUBACK 0x00--> unconfirmed --StoredAck--> deleted
                                             --PUBACK other-> sent again after retry_s
                                   ResendRequest / no StoredAck in ack_timeout_s -> sent again

Every publish carries ``held_from_seq``, the lowest seq still spooled: the probe's word to
every collector that it holds nothing below (see collector/README.md, *Zero loss*).

A PUBACK is a delivery only with reason code 0x00: "no matching subscribers" (0x10) and the
failures (>= 0x80, e.g. 0x87 not authorised) are not, and hold the whole spool back for
``retry_s`` (one window per ``retry_s`` over a metered link, not the backlog). Nor is a PUBACK
the end: a result stays spooled until a StoredAck covers its seq, and goes out again when none
came within ``ack_timeout_s`` (a broker lost it; the timeout doubles, up to 6 h, while no
StoredAck comes at all). At most ``window`` results await a PUBACK and ``max_unconfirmed`` a
StoredAck: a week of backlog drains in steps, oldest first, in bounded memory. Duplicates are
harmless: the collector keys everything by (probe, seq).

A StoredAck naming a seq at or beyond the spool's ``next_seq`` is from this probe's previous
life (SD card reflashed, state dir wiped): it deletes nothing, the spool renumbers every
result above it (:mod:`probefleet.agent.renumber`) and they go out again, oldest first. A
spool failing (StateError: a full disk) on a StoredAck or a ResendRequest costs that message
alone: logged, nothing deleted; its results stay unconfirmed until a later StoredAck.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from probefleet.agent import renumber
from probefleet.agent._pending import InFlight, RetryQueue, Unconfirmed
from probefleet.agent.config import SpoolSection
from probefleet.agent.errors import PublishError, StateError
from probefleet.agent.spool import Renumbered, Row, Spool
from probefleet.core import wire

log = logging.getLogger(__name__)

PUBACK_TIMEOUT_S = 60.0  # no PUBACK by then (a message the client lost): publish again
MAX_ACK_TIMEOUT_S = 6 * 3600.0
# After resuming a session: what the centre queued for us (StoredAcks, possibly from this
# probe's previous life) arrives right after CONNACK; handle it before publishing anything.
SETTLE_S = 1.0
_RC_SUCCESS = 0x00
_RC_NO_SUBSCRIBERS = 0x10
_OVERSIZE_FACTOR = 20.0  # a result too large to publish is tried again this much later
# The channels from the centre that delivery handles (the others are fleet control's).
CHANNELS = ("ack", "resend")

# Publish at QoS 1; the message id, or PublishError when the client will not take it.
Send = Callable[[str, bytes], int]


@dataclass
class DeliveryState:
    """What `probe-agent status` shows about the connection; :class:`Delivery` keeps it."""

    connected: bool = False
    since: float | None = None  # wall time of the last connect or disconnect
    last_error: str | None = None
    published: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # reason name -> count
    confirmed: int = 0
    resent: int = 0
    inflight: int = 0
    unconfirmed: int = 0
    last_ack_seq: int | None = None
    renumbered: int = 0  # results renumbered above a previous life's watermark, this run


class Delivery:
    """The spool drained through ``send`` until the collector says "stored"::

    delivery = Delivery("tanphu-01", cfg.spool, spool, send)
    delivery.connected(now, session_present=False, max_packet=None, at=time.time())
    delivery.tick(now)                        # timeouts, then publish up to the window
    delivery.puback(mid, 0x00, "Success", now)
    delivery.message("ack", payload)          # a StoredAck: deleted from the spool
    """

    def __init__(self, probe_id: str, cfg: SpoolSection, spool: Spool, send: Send) -> None:
        self.probe_id = probe_id
        self.cfg = cfg
        self.spool = spool
        self.send = send
        self.state = DeliveryState()
        self._cursor = 0  # highest seq taken from the spool in order
        self._ahead: list[Row] = []  # read ahead from the spool, newest first (pop = oldest)
        self._retry = RetryQueue()
        self._inflight = InFlight(PUBACK_TIMEOUT_S)
        self._unconfirmed = Unconfirmed(cfg.ack_timeout_s, MAX_ACK_TIMEOUT_S)
        self._max_packet: int | None = None
        self._hold_until = 0.0  # no publishing from the spool before (a refusal, a resume)
        # Set by a renumbering: from then on a StoredAck confirms no seq above the cursor.
        self._renumbered_this_run = False

    @property
    def in_flight(self) -> int:
        """Results sent and awaiting their PUBACK."""
        return len(self._inflight)

    @property
    def ack_timeout_s(self) -> float:
        """How long a PUBACKed result waits for its StoredAck before it is sent again."""
        return self._unconfirmed.timeout_s

    # --- the connection ----------------------------------------------------------------------

    def connected(
        self, now: float, *, session_present: bool, max_packet: int | None, at: float
    ) -> None:
        """CONNACK; ``at`` is the wall time shown in status."""
        self.state.connected = True
        self.state.since = at
        self.state.last_error = None
        self._max_packet = max_packet
        if session_present:
            # A previous life's StoredAcks may wait in the session: renumber before the
            # collector sees a low seq (it would reset its book, then see a gap).
            self._hold_until = max(self._hold_until, now + SETTLE_S)

    def disconnected(self, reason: str, *, at: float) -> None:
        if self.state.connected:
            log.warning("MQTT disconnected: %s; results stay spooled", reason)
        self.state.connected = False
        self.state.since = at
        self.state.last_error = f"disconnected: {reason}"

    def failed(self, why: str) -> None:
        """The broker refused the connection, or the link hit an error: shown in status."""
        self.state.last_error = why
        log.error("%s", why)

    # --- sending -----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Requeue what timed out; then, when connected, publish up to the window."""
        self._expire(now)
        if self.state.connected:
            self._fill(now)
        self.state.inflight = len(self._inflight)
        self.state.unconfirmed = len(self._unconfirmed)

    def _fill(self, now: float) -> None:
        window = self.cfg.window
        cap = self.cfg.max_unconfirmed
        # A refusal sets the hold: whatever refused one result refuses the next too.
        while (
            now >= self._hold_until
            and len(self._inflight) < window
            and len(self._inflight) + len(self._unconfirmed) < cap
        ):
            row = self._next_row()
            if row is None:
                return
            self._send(row, now)

    def _next_row(self) -> Row | None:
        while (seq := self._retry.pop()) is not None:
            rows = self.spool.get([seq])
            if rows:
                return rows[0]
        if not self._ahead:
            self._ahead = self.spool.after(self._cursor, limit=max(self.cfg.window, 50))
            self._ahead.reverse()
        if not self._ahead:
            return None
        row = self._ahead.pop()
        self._cursor = max(self._cursor, row.seq)
        return row

    def _send(self, row: Row, now: float) -> None:
        payload = self._with_held_from(row)
        size = len(payload)
        if size > wire.MAX_PAYLOAD_BYTES:
            # Cannot happen through wire.encode; if it did, paho would reconnect forever.
            log.error(
                "seq %d is %d bytes, over %d: not published", row.seq, size, wire.MAX_PAYLOAD_BYTES
            )
            self._refused(row.seq, "payload too large", now, hold=False)
            return
        if self._max_packet is not None and size + len(row.topic) + 16 > self._max_packet:
            log.error(
                "seq %d (%d bytes) exceeds the broker's maximum packet size %d",
                row.seq,
                size,
                self._max_packet,
            )
            self._refused(row.seq, "over broker packet size", now, hold=False)
            return
        try:
            mid = self.send(row.topic, payload)
        except PublishError as exc:
            if exc.detail is not None:
                log.error("publishing seq %d failed: %s", row.seq, exc.detail)
            self._refused(row.seq, exc.reason, now)
            return
        # Even when not connected paho keeps a QoS 1 message and sends it on reconnect:
        # it is in flight either way; PUBACK_TIMEOUT_S covers a message paho lost.
        self._unconfirmed.discard(row.seq)
        self._inflight.add(mid, row.seq, now)
        self.state.published += 1

    def _with_held_from(self, row: Row) -> bytes:
        """The spooled payload with ``held_from_seq`` (the lowest seq still spooled) put in
        front: what lets every collector settle the gaps it will never see filled (another
        collector of a share group stored them, or this probe dropped and counted them).
        Spliced as bytes, not re-encoded: the spool keeps what was measured, and a fresh
        value goes out with every publish. Without it (the spool cannot say) the result goes
        out as it is and nothing is settled on its account."""
        try:
            oldest = self.spool.oldest_seq()
        except StateError as exc:
            log.warning("publishing seq %d without held_from_seq: %s", row.seq, exc)
            return row.payload
        held = row.seq if oldest is None else min(oldest, row.seq)
        spliced = b'{"held_from_seq":%d,' % held + row.payload[1:]
        limit = wire.MAX_PAYLOAD_BYTES
        if self._max_packet is not None:
            limit = min(limit, self._max_packet - len(row.topic) - 16)
        if not row.payload.startswith(b"{") or len(spliced) > limit:
            return row.payload  # at a size limit already: what it measured is worth more
        return spliced

    def _refused(self, seq: int, reason: str, now: float, *, hold: bool = True) -> None:
        self.state.refused[reason] = self.state.refused.get(reason, 0) + 1
        if not hold:  # this result alone is at fault: the others go on
            self._retry.push(seq, now + self.cfg.retry_s * _OVERSIZE_FACTOR)
            return
        retry_at = now + self.cfg.retry_s
        self._retry.push(seq, retry_at)
        # Whatever made the broker refuse this (no collector session, an ACL) refuses the
        # rest too: hold the spool back, so that at most one window goes out per retry_s
        # instead of the whole backlog over a metered link.
        self._hold_until = max(self._hold_until, retry_at)

    def puback(self, mid: int, code: int, name: str, now: float) -> None:
        """The broker's PUBACK for message ``mid``: reason ``code`` (``name`` for people)."""
        seq = self._inflight.pop(mid)
        if seq is None:
            return  # a duplicate's PUBACK (paho resent it after a reconnect), or the status
        if code == _RC_SUCCESS:
            self._unconfirmed.add(seq, now)
            return
        # 0x10: nobody subscribed, the broker dropped it. >= 0x80: refused. Not delivered.
        if code == _RC_NO_SUBSCRIBERS:
            log.info("seq %d: no matching subscribers (is the collector's session there?)", seq)
        else:
            log.warning("seq %d refused by the broker: %s (0x%02x)", seq, name, code)
        self._refused(seq, name, now)

    def _expire(self, now: float) -> None:
        self._retry.release(now)
        for seq in self._inflight.expire(now):
            self._retry.push(seq)
        timeout = self._unconfirmed.timeout_s
        expired = self._unconfirmed.expire(now)
        if not expired:
            return
        log.info(
            "%d result(s) not confirmed by the collector within %.0f s (seqs %d..%d): "
            "publishing them again",
            len(expired),
            timeout,
            min(expired),
            max(expired),
        )
        self.state.resent += len(expired)
        for seq in expired:
            self._retry.push(seq)

    # --- messages from the centre ------------------------------------------------------------

    def message(self, channel: str, payload: bytes) -> None:
        """A message on one of :data:`CHANNELS`; never raises for what it carries, nor for a
        spool that fails while handling it (that message is lost, the pump goes on)."""
        try:
            if channel == "ack":
                self.stored(wire.decode(payload, wire.StoredAck))
            elif channel == "resend":
                self.resend(wire.decode(payload, wire.ResendRequest))
            else:
                log.warning("ignoring a %s message: not a delivery channel", channel)
        except wire.WireError as exc:
            log.warning("ignoring a bad %s message: %s", channel, exc)
        except StateError as exc:
            log.error(
                "%s message not handled, the spool failed: %s; nothing was deleted, the "
                "results stay spooled until a later StoredAck",
                channel,
                exc,
            )

    def stored(self, ack: wire.StoredAck) -> None:
        """A StoredAck: delete what it covers (StateError if the spool cannot)."""
        if ack.probe_id != self.probe_id:
            log.warning("ignoring a StoredAck for %s", ack.probe_id)
            return
        highest = max([ack.stored_through_seq, *(last for _, last in ack.also_stored)])
        if highest > renumber.MAX_WATERMARK:
            # Forged or corrupt: acting on it would delete the whole spool, or renumber it
            # where no seq is left to issue. Nothing changes.
            log.warning("ignoring a StoredAck naming seq %d: no probe ever got that far", highest)
            return
        moved = renumber.previous_life(self.spool, ack)
        if moved is not None:
            self._restart_numbering(moved)
            return  # nothing is deleted on the strength of another life's watermark
        ranges = [(0, ack.stored_through_seq), *ack.also_stored]
        if self._renumbered_this_run:
            # A burst of the previous life's StoredAcks (W1 < W2 < ...): W1 renumbered the
            # spool to W1+1.., W2 then names renumbered seqs. A seq not yet published since
            # the renumbering cannot have been stored: confirm only up to the cursor.
            ranges = [(a, min(b, self._cursor)) for a, b in ranges if a <= self._cursor]
        through = ranges[0][1] if ranges and ranges[0][0] == 0 else 0
        also = [r for r in ranges if r[0] > 0]
        gone = self.spool.confirm(through, also)  # StateError: nothing below changes
        self.state.confirmed += gone
        self.state.last_ack_seq = ack.stored_through_seq

        def covered(seq: int) -> bool:
            return any(first <= seq <= last for first, last in ranges)

        self._unconfirmed.acked(covered)
        self._inflight.forget(covered)
        log.debug("StoredAck through %d: %d deleted from the spool", ack.stored_through_seq, gone)

    def _restart_numbering(self, moved: Renumbered) -> None:
        """After a renumbering: every seq delivery knew is gone; start from the spool again.
        Old mids' PUBACKs then find nothing in ``_inflight`` and are ignored."""
        self._cursor = 0
        self._ahead = []
        self._retry.clear()
        self._inflight.clear()
        self._unconfirmed.clear()
        self._renumbered_this_run = True
        self.state.renumbered += moved.moved

    def resend(self, request: wire.ResendRequest) -> None:
        """A ResendRequest: publish again the seqs it names that are still spooled."""
        asked = found = 0
        for first, last in request.ranges:
            asked += last - first + 1
            for seq in self.spool.seqs_between(first, last, limit=100_000):
                found += 1
                if seq > self._cursor:
                    continue  # not published yet: it goes out in order anyway
                self._unconfirmed.discard(seq)
                self.state.resent += 1
                self._retry.push(seq)
        log.info("resend request for %d seq(s): %d still spooled, publishing again", asked, found)
