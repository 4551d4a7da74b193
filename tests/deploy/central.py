"""deploy/central's Mosquitto config, started for real: rendered onto free loopback ports and
temp paths (nothing else changed), and an MQTT v5 test client that records what it sees."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.harness import Mosquitto, eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
CENTRAL = ROOT / "deploy" / "central"
CONF = CENTRAL / "mosquitto" / "mosquitto.conf"
ACL = CENTRAL / "mosquitto" / "acl"
GEN_CERTS = CENTRAL / "gen-certs.sh"
ENROL = CENTRAL / "enrol.py"
PROBE_PORT = 8883  # the ports mosquitto.conf declares
INTERNAL_PORT = 8884


def make_certs(directory: Path, *clients: str) -> Path:
    """The CA, server and client certificates, by deploy/central/gen-certs.sh."""
    args = ["bash", str(GEN_CERTS), "--dir", str(directory)]
    for client in clients:
        args += ["--client", client]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return directory


def render(text: str, *, config_dir: Path, certs: Path, data: Path, log: Path,
           ports: dict[int, int]) -> str:  # fmt: skip
    """deploy's mosquitto.conf with only its paths and ports moved; the listeners bound to
    127.0.0.1. Anything else must stay as written: this is what the tests exercise."""
    out = []
    for line in text.splitlines():
        listener = re.fullmatch(r"listener (\d+)", line)
        moved = line
        if listener:
            moved = f"listener {ports[int(listener.group(1))]} 127.0.0.1"
        elif line == "log_dest stdout":
            moved = f"log_dest file {log}"
        moved = moved.replace("/mosquitto/config/", f"{config_dir}/")
        moved = moved.replace("/mosquitto/certs/", f"{certs}/")
        out.append(moved.replace("/mosquitto/data/", f"{data}/"))
    if os.geteuid() == 0:
        # As root mosquitto would switch to user "mosquitto", who cannot read the pytest
        # temp folder (mode 0700, owned by root). Global option: it goes first.
        out.insert(0, "user root")
    rendered = "\n".join(out) + "\n"
    settings = [line for line in out if not line.startswith("#")]
    assert not [s for s in settings if "/mosquitto/" in s], "a container path was left"
    return rendered


class CentralBroker(Mosquitto):
    """The real mosquitto running deploy/central/mosquitto/mosquitto.conf and acl."""

    def __init__(self, workdir: Path, certs: Path, *, replace: Sequence[tuple[str, str]] = ()):
        super().__init__(workdir, anonymous=False)
        self.certs = certs
        self.internal_port = free_port(self.host)
        self.config_dir = workdir / "config"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.password_path = self.config_dir / "passwd"
        self.acl_path = self.config_dir / "acl"
        shutil.copyfile(ACL, self.acl_path)
        self.password_path.touch(mode=0o600)
        self.replace = list(replace)

    def config_text(self) -> str:
        text = CONF.read_text()
        for old, new in self.replace:  # deliberate variants, e.g. require_certificate true
            assert old in text, f"{old!r} is not in {CONF}"
            text = text.replace(old, new)
        return render(
            text,
            config_dir=self.config_dir,
            certs=self.certs,
            data=self.data_dir,
            log=self.log_path,
            ports={PROBE_PORT: self.port, INTERNAL_PORT: self.internal_port},
        )

    def write_config(self) -> None:  # the ACL and password file are deploy's, kept as they are
        self.conf_path.write_text(self.config_text())

    def reload(self) -> None:
        self._process.send_signal(signal.SIGHUP)  #: re-read the password file and the ACL


@dataclass
class Client:
    """A paho MQTT v5 client over TLS recording CONNACK, PUBACK and SUBACK codes, messages
    and disconnections."""

    broker: CentralBroker
    username: str | None
    password: str | None = None
    client_id: str = ""
    internal: bool = False
    ca: Path | None = None
    cert: tuple[Path, Path] | None = None
    clean_start: bool = True
    connack: list[int] = field(default_factory=list)
    pubacks: dict[int, int] = field(default_factory=dict)
    subacks: list[list[int]] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    disconnects: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id or f"t-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.tls_set(
            ca_certs=str(self.ca or self.broker.certs / "ca.crt"),
            certfile=str(self.cert[0]) if self.cert else None,
            keyfile=str(self.cert[1]) if self.cert else None,
        )
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.connack.append(rc.value)

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self.lock:
            self.pubacks[mid] = rc.value

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        self.subacks.append([c.value for c in codes])

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.disconnects.append(rc.value)

    def connect(self, *, expect_ok: bool = True, session_expiry_s: int = 0) -> Client:
        port = self.broker.internal_port if self.internal else self.broker.port
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if session_expiry_s:
            props.SessionExpiryInterval = session_expiry_s
        self.client.connect(
            "localhost", port, keepalive=10, clean_start=self.clean_start, properties=props
        )
        self.client.loop_start()
        if expect_ok:
            eventually(lambda: self.connack == [0], timeout_s=10,
                       message=f"{self.username}: CONNACK {self.connack}")  # fmt: skip
        return self

    def refused(self) -> bool:
        """The broker refused the CONNECT (or dropped the connection before a CONNACK)."""
        return bool(self.connack and self.connack[-1] != 0) or bool(self.disconnects)

    def subscribe(self, *topics: str) -> list[int]:
        before = len(self.subacks)
        self.client.subscribe([(t, 1) for t in topics])
        eventually(lambda: len(self.subacks) > before, timeout_s=10, message="no SUBACK")
        return self.subacks[-1]

    def publish(self, topic: str, payload: bytes = b"{}", *, retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        eventually(lambda: info.mid in self.pubacks, timeout_s=10, message=f"PUBACK {topic}")
        return self.pubacks[info.mid]

    def topics(self) -> list[str]:
        with self.lock:
            return [t for t, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
