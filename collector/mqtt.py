"""The collector's MQTT wiring: a persistent MQTT v5 session with manual acknowledgement.

The only collector module that imports paho. Its callbacks are tiny and cannot raise (an
exception there kills paho's network thread): a message becomes an :class:`Inbound` on a
queue, and the service acknowledges it with :meth:`MqttLink.ack` once it is durable.

- Fixed client id, ``clean_start=False`` and a session expiry: while the collector is away
  the broker queues its messages, and un-acknowledged ones are delivered again.
- ``ReceiveMaximum`` bounds how many un-acknowledged messages the broker hands us.
- Subscriptions are made in ``on_connect`` (again after every reconnect).
- Every connection has a *generation*. An acknowledgement carries the message's packet id,
  which means nothing on a later connection (the id may then name another message), so an
  ack from an older generation is not sent: the broker redelivers that message, and the
  duplicate overwrites itself in InfluxDB.
- ``ReceiveMaximum`` does not bound what Mosquitto 2.0.11 (Debian's) sends: every PUBACK
  lets up to another window through (measured: 20 then 80 held after 3 acks with a window
  of 20; 100 then 400 with 100 — eclipse-mosquitto/mosquitto#2301 is the same quota code).
  So the :class:`Inbox` bounds itself: at ``receive_maximum`` messages paho's thread waits
  for room (TCP then holds the rest back in the broker's queue, where it belongs).
- On a new connection the broker sends every un-acknowledged message again, so what an
  older connection left in the :class:`Inbox` is dropped (it could not be acknowledged).
- Presence has a connection of its own (``status_client_id``, clean start, acknowledged
  on receipt, retained statuses replayed at every connect) into a :class:`StatusBox` that
  keeps the latest message per topic: a Last Will never waits behind a results backlog.
- paho spends most of its time per received message building two constant lookup tables
  for the message's (MQTT v5) properties; :func:`speed_up_publish_decoding` shares one copy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt._packet as paho_packet
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from probefleet.collector.config import MqttSection
from probefleet.core import mqtt as core_mqtt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One received message, as the service sees it."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_ns: int  # collector's wall clock, ns
    retained: bool = False  # a retained message replayed on (re-)subscription


class Inbox:
    """Results taken from the broker and not yet handled. With what the service holds
    elsewhere (:meth:`set_elsewhere`: the batch, the write in flight) at most ``capacity``
    — the window (``receive_maximum``) then bounds every message in memory, as meant.

    paho's thread puts, the service's thread gets. A full inbox makes paho's thread wait
    (up to ``max_wait_s``, then it puts anyway and says so: a stuck service must not cost
    the connection its keep-alive). A new connection starts a new queue: the broker
    redelivers everything un-acknowledged on it, so the old queue's messages (which could
    no longer be acknowledged) are dropped, not held twice. :meth:`close` at shutdown
    drops what still comes (not acknowledged: the broker's session keeps it).
    """

    def __init__(self, capacity: int = 0, *, max_wait_s: float = 20.0) -> None:
        self.capacity = capacity  # 0: unbounded
        self.max_wait_s = max_wait_s
        self._queue: deque[Inbound] = deque()
        self._event = threading.Event()  # something to get
        self._room = threading.Event()  # room to put (set by get while a put waits)
        self._waiting = False
        self._closed = False
        self._elsewhere = 0  # taken out, not yet acknowledged (the service's batch, write)
        self.dropped = 0  # messages of older connections dropped (the broker redelivers them)
        self.high_water = 0  # the most ever held at once
        self.full_waits = 0  # times paho's thread waited for room
        self.overfilled = 0  # puts beyond capacity after max_wait_s
        # Called every 0.1 s while paho's thread waits: paho writes only from its own loop,
        # so acknowledgements queued meanwhile would wait, the broker would hear nothing
        # and drop the connection (keep-alive) — then redeliver a whole window again.
        self.while_waiting: Callable[[], None] = lambda: None

    def put(self, message: Inbound) -> None:
        q = self._queue
        if self.capacity and len(q) + self._elsewhere >= self.capacity:
            self._wait_for_room()
            q = self._queue
        if self._closed:
            return  # not acknowledged: delivered again on the next connection
        q.append(message)
        self.high_water = max(self.high_water, len(q))
        self._event.set()

    def _wait_for_room(self) -> None:
        self.full_waits += 1
        deadline = time.monotonic() + self.max_wait_s
        self._waiting = True
        try:
            while len(self._queue) + self._elsewhere >= self.capacity and not self._closed:
                self._room.clear()
                if len(self._queue) + self._elsewhere < self.capacity:
                    break
                remaining = deadline - time.monotonic()
                if remaining > 0 and not self._room.wait(min(remaining, 0.1)):
                    self.while_waiting()
                    continue
                if remaining <= 0:
                    self.overfilled += 1
                    if self.overfilled == 1 or self.overfilled % 10_000 == 0:
                        log.warning(
                            "inbox full (%d) for %.0f s: taking messages beyond it (%d so far)",
                            self.capacity, self.max_wait_s, self.overfilled,
                        )  # fmt: skip
                    break
        finally:
            self._waiting = False

    def set_elsewhere(self, messages: int) -> None:
        """From the service: how many messages it holds outside the inbox, un-acknowledged."""
        self._elsewhere = messages
        if self._waiting:
            self._room.set()

    def close(self) -> None:
        """From now on nothing is kept; a waiting put returns at once."""
        self._closed = True
        self._room.set()

    def new_connection(self, session_present: bool) -> None:
        """From paho's thread, on connect: start afresh (see the class docstring). Without
        the session nothing is redelivered: then the old messages are still handled (their
        acknowledgements cannot be sent; the StoredAcks tell the probes)."""
        if not session_present:
            return
        old, self._queue = self._queue, deque()
        if old:
            self.dropped += len(old)
            log.info("dropped %d messages of the previous connection: redelivered", len(old))

    def wake(self) -> None:
        """Make a waiting :meth:`get` return None (a background write finished)."""
        self._event.set()

    def get_nowait(self) -> Inbound | None:
        try:
            message = self._queue.popleft()
        except IndexError:
            return None
        self._elsewhere += 1  # now the service's, until set_elsewhere says otherwise
        if self._waiting:
            self._room.set()
        return message

    def get(self, timeout_s: float) -> Inbound | None:
        """The oldest message; None after ``timeout_s`` or a :meth:`wake`."""
        message = self.get_nowait()
        if message is not None:
            return message
        self._event.clear()
        message = self.get_nowait()  # put just before the clear
        if message is None and self._event.wait(timeout_s):
            message = self.get_nowait()
        return message

    def qsize(self) -> int:
        return len(self._queue)


class StatusBox:
    """Status messages not yet handled, in arrival order. Every one is handled (a malformed
    one gets its dead letter like any message); only past ``max_held`` — a flapping fleet,
    or a replay of every retained status while the service is stuck — are the older ones
    of a topic dropped for its newest (``superseded`` counts them), so it stays bounded by
    the fleet's size."""

    def __init__(self, wake: Callable[[], None] = lambda: None, *, max_held: int = 50_000) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Inbound] = deque()
        self._wake = wake
        self.max_held = max_held
        self.superseded = 0

    def put(self, message: Inbound) -> None:
        with self._lock:
            self._queue.append(message)
            if len(self._queue) > self.max_held:
                newest = {m.topic: m for m in self._queue}  # the last per topic wins
                kept = deque(m for m in self._queue if newest[m.topic] is m)
                self.superseded += len(self._queue) - len(kept)
                self._queue = kept
                log.warning("%d statuses waiting: older ones of the same probe dropped (%d so far)",
                            self.max_held, self.superseded)  # fmt: skip
        self._wake()

    def new_connection(self, session_present: bool) -> None:
        """Nothing to drop: statuses are acknowledged on receipt."""

    def take(self) -> list[Inbound]:
        """Everything waiting, in arrival order."""
        with self._lock:
            taken, self._queue = self._queue, deque()
        return list(taken)

    def qsize(self) -> int:
        return len(self._queue)


class Sink(Protocol):
    """Where a link puts what it receives: an :class:`Inbox` or a :class:`StatusBox`."""

    def put(self, message: Inbound) -> None: ...

    def new_connection(self, session_present: bool) -> None: ...


class _SharedTablesProperties(Properties):
    """paho's ``Properties`` for received PUBLISH packets, with its lookup tables shared.

    ``Properties.__init__`` rebuilds a 27-entry name table and a 27-entry type table for
    every packet (about 60 µs on this machine, more than the rest of paho's work on a
    message), and ``unpack`` first sweeps all 27 names to delete attributes a new object
    cannot have. The tables never change, so every instance reads one copy from the class,
    and a PUBLISH without properties (what probes send) is done at its length byte.
    Anything else goes through paho's own ``unpack``.
    """

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)

    def unpack(self, buffer: bytes) -> tuple[Properties, int]:
        if buffer[:1] == b"\x00":  # property length 0: nothing follows
            return self, 1
        return super().unpack(buffer)  # type: ignore[no-any-return, no-untyped-call]


def speed_up_publish_decoding() -> bool:
    """Make paho decode received PUBLISH properties with :class:`_SharedTablesProperties`.

    Idempotent. Checks that paho is still built the way this relies on (``decode_publish``
    looks ``Properties`` up in ``paho.mqtt._packet``; the tables are plain instance
    attributes) and otherwise leaves paho alone and returns False: slower, still correct."""
    namespace = vars(paho_packet)  # where decode_publish finds the name
    if namespace.get("Properties") is _SharedTablesProperties:
        return True
    template = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    tables = ("types", "names", "properties")
    shaped = all(t in vars(template) for t in tables)
    if namespace.get("Properties") is not Properties or not shaped:
        log.warning("paho's Properties changed shape: decoding PUBLISH at paho's own speed")
        return False
    for name in tables:
        setattr(_SharedTablesProperties, name, vars(template)[name])
    namespace["Properties"] = _SharedTablesProperties
    return True


def shared(topic: str, group: str) -> str:
    """The subscription for ``topic``: shared ($share/<group>/...) when a group is set."""
    return f"$share/{group}/{topic}" if group else topic


class MqttLink:
    """paho behind a small interface: start, ack, publish, stop, alive.

    ``persistent`` (the results connection): a session kept by the broker, manual
    acknowledgement. Otherwise (presence): clean start, acknowledged on receipt — the
    retained statuses are replayed at every connect, so nothing is lost by that."""

    def __init__(
        self,
        cfg: MqttSection,
        inbox: Sink,
        subscriptions: Sequence[str],
        *,
        on_session: Callable[[bool], None] | None = None,
        client_id: str | None = None,
        username: str | None = None,
        persistent: bool = True,
    ) -> None:
        self.cfg = cfg
        self.inbox = inbox
        self.subscriptions = list(subscriptions)
        self.on_session = on_session
        self.client_id = client_id or cfg.client_id
        self.persistent = persistent
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        speed_up_publish_decoding()
        client = core_mqtt.client(cfg, client_id=self.client_id, manual_ack=persistent)
        if username is not None and cfg.username:
            client.username_pw_set(username, cfg.password or None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        if isinstance(inbox, Inbox):
            inbox.while_waiting = self._write_pending

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self.persistent:
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            props.ReceiveMaximum = self.cfg.receive_maximum
        self._client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=not self.persistent,
            properties=props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect (the session stays on the broker for session_expiry_s) and end the loop."""
        self._client.disconnect()
        self._client.loop_stop()

    def alive(self) -> bool:
        """False if paho's network thread has died (then nothing would ever arrive again)."""
        thread = getattr(self._client, "_thread", None)  # paho keeps its loop thread here
        return thread is not None and thread.is_alive()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    # -- used by the service ----------------------------------------------------------------

    def ack(self, message: Inbound) -> bool:
        """Acknowledge ``message`` if it came on the current connection; False if not sent.
        QoS 0 (or acknowledged on receipt, as statuses are): nothing to send, True."""
        if message.qos == 0:
            return True
        with self._lock:
            if message.generation != self._generation or not self._connected.is_set():
                return False
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)
            return True

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Fire and forget (paho queues in memory while disconnected): StoredAck and
        ResendRequest are sent again later anyway, so losing one costs nothing."""
        self._client.publish(topic, payload, qos=qos, retain=retain)

    # -- paho callbacks (network thread; must not raise) -------------------------------------

    def _write_pending(self) -> None:
        """From paho's thread, inside on_message, while the inbox is full: send what is
        queued (acknowledgements). paho's write path takes no lock its read path holds."""
        try:
            self._client.loop_write()
        except Exception:
            log.exception("writing while the inbox is full failed")

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        rc: ReasonCode,
        _props: Properties | None,
    ) -> None:
        try:
            if rc.is_failure:
                log.error("broker %s:%d refused us: %s", self.cfg.host, self.cfg.port, rc)
                return
            with self._lock:
                self._generation += 1
                self.inbox.new_connection(bool(flags.session_present))
                self._connected.set()
            log.info(
                "connected to %s:%d as %s (session %s)",
                self.cfg.host,
                self.cfg.port,
                self.client_id,
                "resumed" if flags.session_present else "new",
            )
            client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.subscriptions])
            if self.on_session is not None:
                self.on_session(flags.session_present)
        except Exception:
            log.exception("on_connect failed")

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        rcs: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        try:
            failed = [str(rc) for rc in rcs if rc.is_failure]
            if failed:
                log.error("subscription refused: %s (%s)", failed, self.subscriptions)
                return
            log.info("subscribed to %s", ", ".join(self.subscriptions))
            self._subscribed.set()
        except Exception:
            log.exception("on_subscribe failed")

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        rc: ReasonCode,
        _props: Properties | None,
    ) -> None:
        try:
            with self._lock:
                self._generation += 1
                self._connected.clear()
                self._subscribed.clear()
            if rc.is_failure:
                log.warning("disconnected from the broker: %s", rc)
            else:
                log.info("disconnected from the broker")
            core_mqtt.jitter_backoff(self._client, self.cfg)  # the next waits, afresh
        except Exception:
            log.exception("on_disconnect failed")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            try:
                topic = message.topic
            except UnicodeDecodeError:
                topic = message._topic.decode("utf-8", errors="replace")
            self.inbox.put(
                Inbound(
                    topic,
                    bytes(message.payload),
                    message.mid,
                    # Acknowledged by paho on receipt unless persistent: nothing left to ack.
                    message.qos if self.persistent else 0,
                    self._generation,
                    time.time_ns(),
                    bool(message.retain),
                )
            )
        except Exception:
            log.exception("on_message failed; the message will be redelivered")
