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
- paho spends most of its time per received message building two constant lookup tables
  for the message's (MQTT v5) properties; :func:`speed_up_publish_decoding` shares one copy.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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
    """paho behind a small interface: start, ack, publish, stop, alive."""

    def __init__(
        self,
        cfg: MqttSection,
        inbox: queue.SimpleQueue[Inbound | None],
        subscriptions: Sequence[str],
        *,
        on_session: Callable[[bool], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.inbox = inbox
        self.subscriptions = list(subscriptions)
        self.on_session = on_session
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        speed_up_publish_decoding()
        client = core_mqtt.client(cfg, client_id=cfg.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        props.ReceiveMaximum = self.cfg.receive_maximum
        self._client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False,
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
        """Acknowledge ``message`` if it came on the current connection; False if not sent."""
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
                self._connected.set()
            log.info(
                "connected to %s:%d as %s (session %s)",
                self.cfg.host,
                self.cfg.port,
                self.cfg.client_id,
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
                    message.qos,
                    self._generation,
                    time.time_ns(),
                    bool(message.retain),
                )
            )
        except Exception:
            log.exception("on_message failed; the message will be redelivered")
