"""Delivery: the spool drained over MQTT v5, QoS 1, until the collector says "stored".

The narrow seam around paho-mqtt 2.x. paho's thread only puts events on a queue (its
callbacks are tiny and cannot raise: an exception there kills its network thread); this
module's own thread, the *pump*, does the work::

    spool (oldest first) --publish QoS 1--> broker --PUBACK 0x00--> "unconfirmed"
                                                    --PUBACK other-> retried after retry_s
    collector --StoredAck--> spool.confirm(): deleted      --ResendRequest--> published again

The rules (see the field notes): a PUBACK is a delivery only with reason code 0x00 —
"no matching subscribers" (0x10) and every failure (>= 0x80, e.g. 0x87 not authorised) are
not, so the result is published again after ``retry_s``. A PUBACK is not the end either: a
result stays in the spool until a StoredAck covers its seq, and is published again when
no StoredAck came within ``ack_timeout_s`` (a broker that lost it after acknowledging it;
the timeout doubles, up to 6 h, while no StoredAck comes at all: the collector is away).
At most ``window`` results await a PUBACK and at most ``max_unconfirmed`` await a StoredAck,
so a week of backlog is drained in steps, oldest first, with bounded memory. Duplicates are
harmless: the collector keys everything by (probe, seq).

A StoredAck naming a seq at or beyond the spool's ``next_seq`` comes from this probe's
previous life (SD card reflashed, state dir wiped: the spool restarted at seq 1 under the
collector's old watermark). It deletes nothing: the spool renumbers every result above it
(:meth:`agent.spool.Spool.renumber`) and the pump forgets what it was waiting for, so the
renumbered results go out again, oldest first.

The session is persistent (fixed client id = probe id, clean_start=False, a week's expiry):
StoredAcks and ResendRequests sent while the probe was offline wait at the broker. The
retained ``status`` topic says "online" on connect; its "offline" form is the Last Will.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from probefleet.agent import __version__
from probefleet.agent.config import SpoolSection
from probefleet.agent.spool import Renumbered, Row, Spool
from probefleet.core import mqtt as core_mqtt
from probefleet.core import wire
from probefleet.core.mqtt import MqttSection

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86_400  # acks and resend requests wait this long for an offline probe
PUBACK_TIMEOUT_S = 60.0
MAX_ACK_TIMEOUT_S = 6 * 3600.0  # no PUBACK by then (connection lost): publish again
_RC_SUCCESS = 0x00
_RC_NO_SUBSCRIBERS = 0x10
_TICK_S = 0.5
# After resuming a session: what the centre queued for us (StoredAcks, possibly from this
# probe's previous life) arrives right after CONNACK; handle it before publishing anything.
_SETTLE_S = 1.0
# Control messages the centre may send us (results and status are ours).
ControlHandler = Callable[[str, bytes], None]


@dataclass
class DeliveryState:
    """What `probe-agent status` shows about the connection; the pump updates it."""

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


def _session_properties() -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    return props


class Publisher:
    def __init__(
        self,
        probe_id: str,
        mqtt_cfg: MqttSection,
        spool_cfg: SpoolSection,
        spool: Spool,
        *,
        on_control: ControlHandler | None = None,
        boot_id: str | None = None,
    ) -> None:
        self.probe_id = probe_id
        self.cfg = mqtt_cfg
        self.spool_cfg = spool_cfg
        self.spool = spool
        self.on_control = on_control
        self.boot_id = boot_id
        self.topics = wire.Topics(mqtt_cfg.topic_root)
        self.state = DeliveryState()
        # Fleet control's part of the retained status (see agent.fleet).
        self.config_digest: str | None = None
        self.config_error: str | None = None
        self._events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor = 0  # highest seq taken from the spool in order
        self._ahead: list[Row] = []  # read ahead from the spool, oldest first
        self._due: list[int] = []  # heap: seqs to publish again now
        self._later: list[tuple[float, int]] = []  # heap: (monotonic not-before, seq)
        self._queued: set[int] = set()  # in _due or _later
        self._inflight: dict[int, tuple[int, float]] = {}  # mid -> (seq, monotonic sent)
        self._unconfirmed: dict[int, float] = {}  # seq -> monotonic PUBACK time, oldest first
        self._max_packet: int | None = None
        self._hold_until = 0.0  # monotonic: no publishing before (after a refused PUBACK)
        # Set by a renumbering: from then on a StoredAck confirms no seq above the cursor.
        self._renumbered_this_run = False
        # Doubles each time results time out with no StoredAck at all in between (the
        # collector away for hours: do not refill the broker's queue every few minutes).
        self._ack_timeout_s = spool_cfg.ack_timeout_s
        self._acked_since_expiry = True
        self._fatal: str | None = None
        self.client = self._make_client()

    # --- paho: setup and callbacks (tiny, never raising) -----------------------------------

    def _make_client(self) -> mqtt.Client:
        client = core_mqtt.client(self.cfg, client_id=self.probe_id)
        client.max_inflight_messages_set(self.spool_cfg.window)
        will = wire.ProbeStatus(
            schema=1,
            probe_id=self.probe_id,
            state="offline",
            boot_id=self.boot_id,
            agent_version=__version__[:32],
            reason="connection lost",
        )
        client.will_set(self._status_topic, wire.encode(will), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    @property
    def _status_topic(self) -> str:
        return self.topics.channel(self.probe_id, "status")

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        try:
            if rc.is_failure:
                self._events.put(("refused", str(rc)))
                return
            subs = [
                (self.topics.channel(self.probe_id, ch), 1)
                for ch in ("ack", "resend", "commands", "config")
            ]
            client.subscribe(subs)
            max_packet = getattr(props, "MaximumPacketSize", None)
            self._events.put(("connected", bool(flags.session_present), max_packet))
        except Exception as exc:  # never into paho's thread
            self._events.put(("error", f"on_connect: {exc!r}"))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        with contextlib.suppress(Exception):
            self._events.put(("disconnected", str(rc)))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with contextlib.suppress(Exception):
            self._events.put(("puback", mid, int(rc.value), str(rc)))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(Exception):
            self._events.put(("message", msg.topic, bytes(msg.payload)))

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False,
            properties=_session_properties(),
        )
        self.client.loop_start()
        self._thread = threading.Thread(target=self._pump, name="publisher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A result was spooled: publish it soon."""
        self._events.put(("wake",))

    def alive(self) -> str | None:
        """None while healthy, else why not (the daemon exits and systemd restarts it)."""
        if self._fatal:
            return self._fatal
        if self._thread is not None and not self._thread.is_alive():
            return "the publisher thread died"
        paho_thread = getattr(self.client, "_thread", None)
        if paho_thread is not None and not paho_thread.is_alive() and not self._stop.is_set():
            return "paho's network thread died"
        return None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say "offline" (retained), wait briefly for in-flight PUBACKs, disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.state.connected:
            info = self.client.publish(
                self._status_topic, self._status("offline", "stopped"), qos=1, retain=True
            )
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and (self._inflight or not info.is_published()):
                self._drain_events(0.1)
        self.client.disconnect()
        self.client.loop_stop()

    # --- the pump ----------------------------------------------------------------------------

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                self._drain_events(_TICK_S)
                now = time.monotonic()
                self._expire(now)
                if self.state.connected:
                    self._fill(now)
                self.state.inflight = len(self._inflight)
                self.state.unconfirmed = len(self._unconfirmed)
        except Exception as exc:
            log.exception("publisher failed")
            self._fatal = f"publisher failed: {exc!r}"

    def _drain_events(self, timeout_s: float) -> None:
        try:
            event = self._events.get(timeout=timeout_s)
        except queue.Empty:
            return
        while True:
            self._handle(event)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return

    def _handle(self, event: tuple[Any, ...]) -> None:
        name = event[0]
        if name == "puback":
            self._puback(event[1], event[2], event[3])
        elif name == "message":
            self._message(event[1], event[2])
        elif name == "connected":
            self._connected(event[1], event[2])
        elif name == "disconnected":
            if self.state.connected:
                log.warning("MQTT disconnected: %s; results stay spooled", event[1])
            self.state.connected = False
            self.state.since = time.time()
            self.state.last_error = f"disconnected: {event[1]}"
        elif name == "refused":
            self.state.last_error = f"broker refused the connection: {event[1]}"
            log.error("%s", self.state.last_error)
        elif name == "error":
            self.state.last_error = event[1]
            log.error("%s", event[1])

    def _connected(self, session_present: bool, max_packet: int | None) -> None:
        self.state.connected = True
        self.state.since = time.time()
        self.state.last_error = None
        self._max_packet = max_packet
        if session_present:
            # A previous life's StoredAcks may wait in the session: renumber before the
            # collector sees a low seq (it would reset its book, then see a gap).
            self._hold_until = max(self._hold_until, time.monotonic() + _SETTLE_S)
        log.info(
            "MQTT connected to %s:%s (session %s)",
            self.cfg.host,
            self.cfg.port,
            "resumed" if session_present else "new",
        )
        self.client.publish(self._status_topic, self._status("online"), qos=1, retain=True)

    def _status(self, state: str, reason: str | None = None) -> bytes:
        return wire.encode(
            wire.ProbeStatus(
                schema=1,
                probe_id=self.probe_id,
                state=state,  # type: ignore[arg-type]
                boot_id=self.boot_id,
                at=wire.utc_now(),
                agent_version=__version__[:32],
                reason=reason,
                config_digest=self.config_digest,
                config_error=self.config_error,
            )
        )

    def publish_status(self) -> None:
        """Publish the retained status again (the config in force changed)."""
        if self.state.connected:
            self.client.publish(self._status_topic, self._status("online"), qos=1, retain=True)

    # --- sending -----------------------------------------------------------------------------

    def _fill(self, now: float) -> None:
        if now < self._hold_until:
            return  # the broker refused something: probe again after retry_s, not the spool
        window = self.spool_cfg.window
        cap = self.spool_cfg.max_unconfirmed
        while len(self._inflight) < window and len(self._inflight) + len(self._unconfirmed) < cap:
            row = self._next_row()
            if row is None:
                return
            self._send(row, now)

    def _next_row(self) -> Row | None:
        while self._due:
            seq = heapq.heappop(self._due)
            self._queued.discard(seq)
            rows = self.spool.get([seq])
            if rows:
                return rows[0]
        if not self._ahead:
            self._ahead = self.spool.after(self._cursor, limit=max(self.spool_cfg.window, 50))
            self._ahead.reverse()  # pop() from the end = oldest first
        if not self._ahead:
            return None
        row = self._ahead.pop()
        self._cursor = max(self._cursor, row.seq)
        return row

    def _send(self, row: Row, now: float) -> None:
        size = len(row.payload)
        if size > wire.MAX_PAYLOAD_BYTES:
            # Cannot happen through wire.encode; if it did, paho would reconnect forever.
            log.error(
                "seq %d is %d bytes, over %d: not published", row.seq, size, wire.MAX_PAYLOAD_BYTES
            )
            self._refused(row.seq, "payload too large", now, factor=20)
            return
        if self._max_packet is not None and size + len(row.topic) + 16 > self._max_packet:
            log.error(
                "seq %d (%d bytes) exceeds the broker's maximum packet size %d",
                row.seq,
                size,
                self._max_packet,
            )
            self._refused(row.seq, "over broker packet size", now, factor=20)
            return
        try:
            info = self.client.publish(row.topic, row.payload, qos=1)
        except (ValueError, RuntimeError) as exc:
            log.error("publishing seq %d failed: %s", row.seq, exc)
            self._refused(row.seq, "publish error", now)
            return
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self._refused(row.seq, "paho queue full", now)
            return
        # Even when not connected paho keeps a QoS 1 message and sends it on reconnect:
        # it is in flight either way; PUBACK_TIMEOUT_S covers a message paho lost.
        self._unconfirmed.pop(row.seq, None)
        self._inflight[info.mid] = (row.seq, now)
        self.state.published += 1

    def _refused(self, seq: int, reason: str, now: float, factor: float = 1.0) -> None:
        self.state.refused[reason] = self.state.refused.get(reason, 0) + 1
        retry_at = now + self.spool_cfg.retry_s * factor
        self._requeue(seq, retry_at)
        if factor == 1.0:
            # Whatever made the broker refuse this (no collector session, an ACL) refuses
            # the rest too: hold the spool back, so that at most one window goes out per
            # retry_s instead of the whole backlog over a metered link.
            self._hold_until = max(self._hold_until, retry_at)

    def _requeue(self, seq: int, not_before: float | None = None) -> None:
        if seq in self._queued:
            return
        self._queued.add(seq)
        if not_before is None:
            heapq.heappush(self._due, seq)
        else:
            heapq.heappush(self._later, (not_before, seq))

    def _puback(self, mid: int, code: int, name: str) -> None:
        sent = self._inflight.pop(mid, None)
        if sent is None:
            return  # a duplicate's PUBACK (paho resent it after a reconnect), or the status
        seq = sent[0]
        now = time.monotonic()
        if code == _RC_SUCCESS:
            self._unconfirmed[seq] = now
            return
        # 0x10: nobody subscribed, the broker dropped it. >= 0x80: refused. Not delivered.
        if code == _RC_NO_SUBSCRIBERS:
            log.info("seq %d: no matching subscribers (is the collector's session there?)", seq)
        else:
            log.warning("seq %d refused by the broker: %s (0x%02x)", seq, name, code)
        self._refused(seq, name, now)

    def _expire(self, now: float) -> None:
        while self._later and self._later[0][0] <= now:
            _, seq = heapq.heappop(self._later)
            self._queued.discard(seq)
            self._requeue(seq)
        for mid, (seq, sent) in list(self._inflight.items()):
            if now - sent > PUBACK_TIMEOUT_S:
                del self._inflight[mid]
                self._requeue(seq)
        timeout = self._ack_timeout_s
        expired = []
        for seq, acked in self._unconfirmed.items():
            if now - acked <= timeout:
                break  # insertion order is PUBACK order: the rest are younger
            expired.append(seq)
        if expired:
            if not self._acked_since_expiry:
                self._ack_timeout_s = min(self._ack_timeout_s * 2, MAX_ACK_TIMEOUT_S)
            self._acked_since_expiry = False
            log.info(
                "%d result(s) not confirmed by the collector within %.0f s (seqs %d..%d): "
                "publishing them again",
                len(expired),
                timeout,
                min(expired),
                max(expired),
            )
        for seq in expired:
            del self._unconfirmed[seq]
            self.state.resent += 1
            self._requeue(seq)

    # --- messages from the centre ------------------------------------------------------------

    def _message(self, topic: str, payload: bytes) -> None:
        try:
            probe, channel, _ = self.topics.parse(topic)
        except wire.WireError as exc:
            log.warning("ignoring %s: %s", topic, exc)
            return
        if probe != self.probe_id:
            log.warning("ignoring %s: not for probe %s", topic, self.probe_id)
            return
        try:
            if channel == "ack":
                self._stored(wire.decode(payload, wire.StoredAck))
            elif channel == "resend":
                self._resend(wire.decode(payload, wire.ResendRequest))
            elif self.on_control is not None:
                self.on_control(channel, payload)
        except wire.WireError as exc:
            log.warning("ignoring a bad %s message: %s", channel, exc)

    def _stored(self, ack: wire.StoredAck) -> None:
        if ack.probe_id != self.probe_id:
            log.warning("ignoring a StoredAck for %s", ack.probe_id)
            return
        highest = max([ack.stored_through_seq, *(last for _, last in ack.also_stored)])
        # The discriminator is the highest seq ever issued (next_seq - 1), never the depth:
        # a late StoredAck of this life cannot name a seq above it, a previous life's can.
        moved = self.spool.renumber(highest, _reencode)
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
        gone = self.spool.confirm(through, also)
        self.state.confirmed += gone
        self.state.last_ack_seq = ack.stored_through_seq
        self._acked_since_expiry = True
        self._ack_timeout_s = self.spool_cfg.ack_timeout_s

        def covered(seq: int) -> bool:
            return any(first <= seq <= last for first, last in ranges)

        for seq in [s for s in self._unconfirmed if covered(s)]:
            del self._unconfirmed[seq]
        for mid in [m for m, (s, _) in self._inflight.items() if covered(s)]:
            del self._inflight[mid]
        log.debug("StoredAck through %d: %d deleted from the spool", ack.stored_through_seq, gone)

    def _restart_numbering(self, moved: Renumbered) -> None:
        """After a renumbering: every seq the pump knew is gone; start from the spool again.
        Old mids' PUBACKs then find nothing in ``_inflight`` and are ignored."""
        self._cursor = 0
        self._ahead = []
        self._due = []
        self._later = []
        self._queued = set()
        self._inflight = {}
        self._unconfirmed = {}
        self._renumbered_this_run = True
        self.state.renumbered += moved.moved
        if moved.moved:
            log.warning(
                "the collector has stored seqs up to %d from this probe's previous life (SD "
                "card reflashed or state dir wiped?): renumbered %d spooled result(s), seqs "
                "%s..%s -> %s..%s; next seq %d (was %d)",
                moved.watermark,
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
                "the collector has stored seqs up to %d from this probe's previous life (SD "
                "card reflashed or state dir wiped?): next seq %d (was %d), nothing spooled "
                "to renumber",
                moved.watermark,
                moved.next_seq,
                moved.old_next_seq,
            )
        if moved.lost:
            log.error(
                "%d spooled result(s) could not be re-encoded with a new seq and were dropped",
                moved.lost,
            )

    def _resend(self, request: wire.ResendRequest) -> None:
        asked = found = 0
        for first, last in request.ranges:
            asked += last - first + 1
            for seq in self.spool.seqs_between(first, last, limit=100_000):
                found += 1
                if seq > self._cursor:
                    continue  # not published yet: it goes out in order anyway
                self._unconfirmed.pop(seq, None)
                self.state.resent += 1
                self._requeue(seq)
        log.info("resend request for %d seq(s): %d still spooled, publishing again", asked, found)


def _reencode(payload: bytes, seq: int) -> bytes | None:
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
