"""The agent's MQTT link: paho-mqtt 2.x behind start, wake, publish_status, alive and stop.

The only agent module that imports paho. paho's thread only puts events on a queue (its
callbacks are one line and cannot raise: an exception there kills its network thread); this
module's own thread, the *pump*, hands each event with the time to :class:`Delivery`
(agent.delivery: what to publish next, what a PUBACK, StoredAck or ResendRequest means, no
broker needed to test it) and carries out the rest: publish, subscribe, say "online".

The session is persistent (fixed client id = probe id, clean_start=False, a week's expiry):
StoredAcks and ResendRequests sent while the probe was offline wait at the broker. The
retained ``status`` topic says "online" on connect; its "offline" form is the Last Will.
Messages on the ``commands`` and ``config`` channels go to ``on_control`` (agent.fleet).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from probefleet.agent import __version__
from probefleet.agent.config import SpoolSection
from probefleet.agent.delivery import CHANNELS, Delivery, DeliveryState
from probefleet.agent.errors import PublishError, StateError
from probefleet.agent.spool import Spool
from probefleet.core import mqtt as core_mqtt
from probefleet.core import wire
from probefleet.core.mqtt import MqttSection

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86_400  # acks and resend requests wait this long for an offline probe
_TICK_S = 0.5
_SUBSCRIBED: tuple[wire.Channel, ...] = ("ack", "resend", "commands", "config")
# Control messages the centre may send us (results and status are ours).
ControlHandler = Callable[[str, bytes], None]
Event = Callable[[], None]  # run on the pump's thread


def _nothing() -> None:
    """The wake-up event: the pump looks at the spool again."""


class Publisher:
    """The spool drained over MQTT v5 until the collector says "stored"::

    publisher = Publisher("tanphu-01", cfg.mqtt, cfg.spool, spool, boot_id=boot)
    publisher.start()
    publisher.wake()  # a result was spooled
    publisher.stop()  # "offline" (retained), then disconnect
    """

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
        self.delivery = Delivery(probe_id, spool_cfg, spool, self._publish)
        # Fleet control's part of the retained status (see agent.fleet).
        self.config_digest: str | None = None
        self.config_error: str | None = None
        # The storage part of the retained status: () -> (results dropped ever, storage
        # state "ok" | "disk_full" | "failing"); set by the daemon (agent.runner).
        self.storage_figures: Callable[[], tuple[int, str]] | None = None
        self._events: queue.Queue[Event] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fatal: str | None = None
        self._spool_error_logged = -1e9
        self.client = self._make_client()

    @property
    def state(self) -> DeliveryState:
        """What `probe-agent status` shows about the connection."""
        return self.delivery.state

    # --- paho: set-up and callbacks (tiny, never raising) -----------------------------------

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

    # paho's thread: each callback only queues its arguments for the pump (neither
    # functools.partial nor Queue.put raises, and nothing else happens here).

    def _on_connect(
        self, _c: mqtt.Client, _u: Any, flags: mqtt.ConnectFlags, rc: ReasonCode, props: Any
    ) -> None:
        self._events.put(functools.partial(self._connected, flags, rc, props))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self._events.put(functools.partial(self._disconnected, rc))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        self._events.put(functools.partial(self._puback, mid, rc))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._events.put(functools.partial(self._message, msg))

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self.client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()
        self._thread = threading.Thread(target=self._pump, name="publisher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A result was spooled: publish it soon."""
        self._events.put(_nothing)

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
            while time.monotonic() < deadline and (
                self.delivery.in_flight or not info.is_published()
            ):
                self._drain_events(0.1)
        self.client.disconnect()
        self.client.loop_stop()

    def publish_status(self) -> None:
        """Publish the retained status again (the config in force changed)."""
        if self.state.connected:
            self.client.publish(self._status_topic, self._status("online"), qos=1, retain=True)

    # --- the pump ----------------------------------------------------------------------------

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                self._drain_events(_TICK_S)
                try:
                    self.delivery.tick(time.monotonic())
                except StateError as exc:
                    # The spool cannot be read now (a full or failing disk): nothing is
                    # lost, everything stays spooled; try again next tick, not die.
                    self._spool_failed(exc)
        except Exception as exc:
            log.exception("publisher failed")
            self._fatal = f"publisher failed: {exc!r}"

    def _spool_failed(self, exc: StateError) -> None:
        now = time.monotonic()
        if now >= self._spool_error_logged + 60:
            self._spool_error_logged = now
            log.error("the spool cannot be read, publishing waits: %s", exc)
        self.delivery.state.last_error = f"spool: {exc}"

    def _drain_events(self, timeout_s: float) -> None:
        try:
            event = self._events.get(timeout=timeout_s)
        except queue.Empty:
            return
        while True:
            event()
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return

    def _connected(self, flags: mqtt.ConnectFlags, rc: ReasonCode, props: Any) -> None:
        if rc.is_failure:
            self.delivery.failed(f"broker refused the connection: {rc}")
            return
        resumed = bool(flags.session_present)
        self.delivery.connected(
            time.monotonic(),
            session_present=resumed,
            max_packet=getattr(props, "MaximumPacketSize", None),
            at=time.time(),
        )
        log.info(
            "MQTT connected to %s:%s (session %s)",
            self.cfg.host,
            self.cfg.port,
            "resumed" if resumed else "new",
        )
        self.client.subscribe([(self.topics.channel(self.probe_id, ch), 1) for ch in _SUBSCRIBED])
        self.client.publish(self._status_topic, self._status("online"), qos=1, retain=True)

    def _disconnected(self, rc: ReasonCode) -> None:
        self.delivery.disconnected(str(rc), at=time.time())
        core_mqtt.jitter_backoff(self.client, self.cfg)  # the next outage's waits, afresh

    def _puback(self, mid: int, rc: ReasonCode) -> None:
        self.delivery.puback(mid, int(rc.value), str(rc), time.monotonic())

    def _message(self, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # cannot match what we subscribed to
            log.warning("ignoring a message on a topic that is not UTF-8")
            return
        try:
            probe, channel, _ = self.topics.parse(topic)
        except wire.WireError as exc:
            log.warning("ignoring %s: %s", topic, exc)
            return
        if probe != self.probe_id:
            log.warning("ignoring %s: not for probe %s", topic, self.probe_id)
            return
        payload = bytes(msg.payload)
        try:
            if channel in CHANNELS:
                self.delivery.message(channel, payload)
            elif self.on_control is not None:
                self.on_control(channel, payload)
        except wire.WireError as exc:
            log.warning("ignoring a bad %s message: %s", channel, exc)
        except StateError as exc:  # a full disk: this message is lost, not the publisher
            log.error("%s message not applied: %s", channel, exc)
        except Exception:
            # Whatever a remote message does, it costs that message only: the pump (and
            # with it every result's delivery) goes on.
            log.exception("ignoring a %s message that could not be handled", channel)

    def _publish(self, topic: str, payload: bytes) -> int:
        """Delivery's ``send``: a result to paho at QoS 1; its message id."""
        try:
            info = self.client.publish(topic, payload, qos=1)
        except (ValueError, RuntimeError) as exc:
            raise PublishError("publish error", str(exc)) from None
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise PublishError("paho queue full")
        return info.mid

    def _status(self, state: str, reason: str | None = None) -> bytes:
        dropped: int | None = None
        storage: str | None = None
        if self.storage_figures is not None:
            try:
                dropped, storage = self.storage_figures()
            except Exception:  # the status still goes out, without these figures
                log.exception("the storage figures for the status could not be read")
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
                storage=storage,  # type: ignore[arg-type]
                dropped=dropped,
            )
        )
