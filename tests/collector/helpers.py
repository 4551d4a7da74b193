"""Shared test helpers for the collector: results from goldens, configs, a stand-in probe."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from probefleet.collector.config import CollectorConfig, load_config
from probefleet.core import wire

from tests.harness import InfluxTarget, Mosquitto, eventually

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
TOPICS = wire.Topics()
BOOT = "5967a284-5a74-4aee-a62b-9cb68f34bf08"
BASE_TIME = dt.datetime(2025, 11, 3, 13, 0, 0, tzinfo=dt.UTC)
BOOT_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)  # of every result() that gives no uptime
# Brokers for these tests queue without limit: a default Mosquitto drops beyond 1000 queued
# messages per client while telling the publisher "success" (field notes, rule 7).
BROKER_CONF = ["max_queued_messages 0"]


def golden(kind_or_name: str) -> dict[str, Any]:
    name = kind_or_name if kind_or_name.endswith(".json") else f"result-{kind_or_name}.json"
    doc: dict[str, Any] = json.loads((GOLDEN / name).read_text())
    return doc


def iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result(
    kind: str = "latency",
    *,
    probe: str = "probe-a",
    seq: int = 1,
    boot: str = BOOT,
    measured_at: dt.datetime | None = None,
    synced: bool = True,
    uptime_s: float | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """A golden result with a new identity; measured_at defaults to BASE_TIME + seq seconds
    (unique per seq, so every result is its own point)."""
    doc = copy.deepcopy(golden(kind))
    # Set when a probe publishes, about its spool: a golden's value says nothing of the
    # seqs a test makes up (pass held_from_seq= to send one).
    doc.pop("held_from_seq", None)
    when = measured_at or BASE_TIME + dt.timedelta(seconds=seq)
    doc.update(probe_id=probe, seq=seq, boot_id=boot, measured_at=iso(when))
    doc["sent_at"] = iso(when + dt.timedelta(seconds=1))
    if uptime_s is None:
        # One clock per boot, as on a real probe: uptime counts from the same start as
        # measured_at (the collector re-bases a synced result that disagrees with it).
        since_boot = (when - BOOT_START).total_seconds()
        uptime_s = since_boot if since_boot >= 0 else float(seq)
    doc["clock"] = {"synced": synced, "uptime_s": float(uptime_s)}
    doc.update(changes)
    return doc


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def topic_of(doc: dict[str, Any], probe: str | None = None) -> str:
    return TOPICS.result(probe or doc["probe_id"], doc["kind"])


def write_config(
    tmp_path: Path,
    broker: Mosquitto,
    target: InfluxTarget,
    *,
    client_id: str = "collector-test",
    inventory: str | None = None,
    **sections: dict[str, Any],
) -> tuple[Path, CollectorConfig]:
    """A collector config (plus inventory and targets) pointing at the test services."""
    inv = tmp_path / "inventory.toml"
    inv.write_text(
        inventory if inventory is not None else (ROOT / "config/inventory.sample.toml").read_text()
    )
    tgt = tmp_path / "targets.toml"
    tgt.write_text((ROOT / "config/targets.sample.toml").read_text())
    values: dict[str, dict[str, Any]] = {
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "tls": False,
            "client_id": client_id,
            "keepalive_s": 10,
            "receive_maximum": 100,
        },
        "influxdb": {
            "url": target.server.url,
            "bucket": target.db,
            "token": "x:y",
            "batch_max_latency_ms": 50,
            "spool_after_s": 1.0,
        },
        "files": {"inventory": str(inv), "targets": str(tgt), "state_dir": str(tmp_path / "state")},
        "sequences": {"resend_grace_s": 1.0, "resend_interval_s": 2.0},
        "log": {"level": "DEBUG"},
    }
    for name, overrides in sections.items():
        values.setdefault(name, {}).update(overrides)
    lines = []
    for name, table in values.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in table.items())
    path = tmp_path / "collector.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, load_config(path, env={})


def count(target: InfluxTarget, measurement: str, where: str = "") -> int:
    """Points in ``measurement`` (every point carries the integer field seq)."""
    clause = f" WHERE {where}" if where else ""
    query = f'SELECT count("seq") FROM "{measurement}"{clause}'  # noqa: S608 - test input
    series = target.server.query(query, db=target.db)
    return int(series[0]["values"][0][1]) if series else 0


@dataclass
class StandInProbe:
    """A probe as far as MQTT goes: publishes results QoS 1 (MQTT v5), records PUBACK codes,
    the StoredAcks and ResendRequests it receives, and may answer resends from its store."""

    broker: Mosquitto
    probe: str = "probe-a"
    answer_resends: bool = False
    sent: dict[int, bytes] = field(default_factory=dict)
    pubacks: dict[int, int] = field(default_factory=dict)
    acks: list[wire.StoredAck] = field(default_factory=list)
    resends: list[wire.ResendRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"stand-in-{self.probe}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: self._subscribed.set()

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if not rc.is_failure:
            c.subscribe(
                [(TOPICS.channel(self.probe, "ack"), 1), (TOPICS.channel(self.probe, "resend"), 1)]
            )

    def _on_publish(
        self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Properties | None
    ) -> None:
        with self.lock:
            self.pubacks[mid] = rc.value

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic.endswith("/ack"):
                with self.lock:
                    self.acks.append(wire.decode(bytes(msg.payload), wire.StoredAck))
            elif msg.topic.endswith("/resend"):
                request: wire.ResendRequest = wire.decode(bytes(msg.payload), wire.ResendRequest)
                with self.lock:
                    self.resends.append(request)
                if self.answer_resends:
                    for first, last in request.ranges:
                        for seq in range(first, last + 1):
                            if seq in self.sent:
                                self.publish_raw(self._topics[seq], self.sent[seq])
        except Exception as exc:  # recorded for the test, never raised into paho
            print(f"stand-in probe callback failed: {exc!r}", file=sys.stderr)

    def start(self) -> StandInProbe:
        self._topics: dict[int, str] = {}
        self.client.connect(self.broker.host, self.broker.port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(10), "stand-in probe not subscribed"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish_raw(self, topic: str, payload: bytes) -> int:
        info = self.client.publish(topic, payload, qos=1)
        return info.mid

    def publish(self, doc: dict[str, Any], topic: str | None = None) -> int:
        raw = encode(doc)
        topic = topic or topic_of(doc)
        self.sent[doc["seq"]] = raw
        self._topics[doc["seq"]] = topic
        return self.publish_raw(topic, raw)

    def publish_all(self, docs: Iterable[dict[str, Any]]) -> list[int]:
        return [self.publish(d) for d in docs]

    def wait_pubacks(self, mids: list[int], timeout_s: float = 30) -> None:
        eventually(
            lambda: all(m in self.pubacks for m in mids),
            timeout_s=timeout_s,
            message=f"PUBACKs missing: {len([m for m in mids if m not in self.pubacks])}",
        )

    def stored_through(self) -> int:
        with self.lock:
            return max((a.stored_through_seq for a in self.acks), default=0)


class CollectorProcess:
    """`python -m probefleet.collector.cli run --config FILE` as a subprocess, its log in a file."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self) -> CollectorProcess:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "probefleet.collector.cli", "run", "--config", str(self.config)],
            stdout=log,
            stderr=log,
            cwd=ROOT,
            env=env,
        )
        log.close()
        eventually(
            lambda: self._alive() and "subscribed to" in self.log_since_start(),
            timeout_s=20,
            message=f"collector did not subscribe; log:\n{self.log_since_start()[-3000:]}",
        )
        return self

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"collector exited {self.proc.returncode}:\n{self.log_since_start()[-3000:]}"
            )
        return True

    def log_since_start(self) -> str:
        with self.log_path.open("rb") as handle:
            handle.seek(self._offset)
            return handle.read().decode(errors="replace")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self, timeout_s: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)


def shared_collector(
    tmp_path: Path, name: str, broker: Mosquitto, target: InfluxTarget, **sections: dict[str, Any]
) -> CollectorProcess:
    """Collector ``name`` of the share group "collectors": client id collector-<name>, its
    own folder under ``tmp_path``, a window of 20 (busy long enough to be killed mid-run);
    ``sections`` add to or override its config."""
    home = tmp_path / name
    home.mkdir()
    mqtt_cfg = {"share_group": "collectors", "receive_maximum": 20, **sections.pop("mqtt", {})}
    config, _cfg = write_config(
        home, broker, target, client_id=f"collector-{name}", inventory=None, mqtt=mqtt_cfg,
        **sections,
    )  # fmt: skip
    return CollectorProcess(config, home / "collector.log")


def stopped_count(log: str, counter: str) -> int:
    """``counter`` summed over every "stopped: ..." line of a collector log (one per run;
    a run killed -9 writes none)."""
    return sum(int(n) for n in re.findall(rf"stopped: .*\b{counter}=(\d+)", log))


def status_payload(probe: str, state: str, *, at: dt.datetime | None = None, **extra: Any) -> bytes:
    """A ProbeStatus as the agent publishes it (``at`` None: the Last Will's form)."""
    doc: dict[str, Any] = {"schema": 1, "probe_id": probe, "state": state, **extra}
    if at is not None:
        doc["at"] = iso(at)
    return encode(doc)


class AgentSession:
    """A probe's MQTT session as the agent holds it: Last Will = retained "offline" status,
    retained "online" status at connect, results QoS 1. ``die()`` drops the connection so
    that the broker publishes the Last Will."""

    def __init__(self, broker: Mosquitto, probe: str) -> None:
        self.probe = probe
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"agent-{probe}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        status = TOPICS.channel(probe, "status")
        self.client.will_set(status, status_payload(probe, "offline", reason="connection lost"),
                             qos=1, retain=True)  # fmt: skip
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        info = self.client.publish(
            status, status_payload(probe, "online", at=dt.datetime.now(dt.UTC)), qos=1, retain=True
        )
        info.wait_for_publish(10)

    def publish(self, doc: dict[str, Any]) -> None:
        self.client.publish(topic_of(doc), encode(doc), qos=1).wait_for_publish(10)

    def die(self) -> None:
        """DISCONNECT with reason 0x04 "with Will Message": the broker publishes the will."""
        from paho.mqtt.packettypes import PacketTypes

        self.client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=4))
        self.client.loop_stop()
