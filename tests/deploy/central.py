"""deploy/central's Mosquitto config, started for real: rendered onto free loopback ports and
temp paths (nothing else changed), and an MQTT v5 test client that records what it sees.

The broker has three listeners (mosquitto.conf), each with its own password file and ACL:
``probes`` (8883), ``services`` (8884) and ``admin`` (8885, loopback). A :class:`Client`
picks one with ``listener=``."""

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

from tests.harness import Mosquitto, ServiceProcess, eventually, find_binary, free_port

ROOT = Path(__file__).resolve().parents[2]
CENTRAL = ROOT / "deploy" / "central"
MOSQUITTO_DIR = CENTRAL / "mosquitto"
CONF = MOSQUITTO_DIR / "mosquitto.conf"
# One password file and one ACL per listener; the ports mosquitto.conf declares.
ROLES = ("probes", "services", "admin")
PORTS = {"probes": 8883, "services": 8884, "admin": 8885}
ACL = MOSQUITTO_DIR / "probes.acl"
GEN_CERTS = CENTRAL / "gen-certs.sh"
ENROL = CENTRAL / "enrol.py"
PROBE_PORT = PORTS["probes"]
INTERNAL_PORT = PORTS["services"]
ROOT_TOPIC = "probefleet/v1"


def make_certs(directory: Path, *clients: str) -> Path:
    """The CA, server and client certificates, by deploy/central/gen-certs.sh."""
    args = ["bash", str(GEN_CERTS), "--dir", str(directory)]
    for client in clients:
        args += ["--client", client]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return directory


def copy_acls(directory: Path) -> None:
    """deploy's three ACLs, as they are, into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        shutil.copyfile(MOSQUITTO_DIR / f"{role}.acl", directory / f"{role}.acl")


def conf_settings(text: str | None = None) -> list[tuple[str | None, str, str]]:
    """mosquitto.conf as (listener port or None for the general section, option, value)."""
    out: list[tuple[str | None, str, str]] = []
    listener: str | None = None
    for line in (CONF.read_text() if text is None else text).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        option, _, value = line.partition(" ")
        if option == "listener":
            listener = value.split()[0]
        out.append((listener, option, value))
    return out


def render(text: str, *, config_dir: Path, certs: Path, data: Path, log: Path,
           ports: dict[int, int], host: str = "127.0.0.1") -> str:  # fmt: skip
    """deploy's mosquitto.conf with only its paths and ports moved; every listener bound to
    ``host`` (127.0.0.1: those the file binds to 127.0.0.1 stay there). Anything else must
    stay as written: this is what the tests exercise."""
    out = []
    for line in text.splitlines():
        listener = re.fullmatch(r"listener (\d+)( \S+)?", line)
        moved = line
        if listener:
            bind = listener.group(2).strip() if listener.group(2) else host
            moved = f"listener {ports[int(listener.group(1))]} {bind}"
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
    """The real mosquitto running deploy/central/mosquitto/mosquitto.conf and its ACLs.

    ``replace`` swaps text in mosquitto.conf first (deliberate variants, e.g. a small queue
    bound to measure). ``netns``: run it inside that network namespace on the ports the
    file declares, listening on ``host`` there."""

    def __init__(
        self,
        workdir: Path,
        certs: Path,
        *,
        replace: Sequence[tuple[str, str]] = (),
        netns: str | None = None,
        host: str = "127.0.0.1",
    ):
        super().__init__(workdir, anonymous=False)
        self.certs = certs
        self.netns = netns
        self.bind = host
        if netns is None:
            self.ports = {role: free_port(self.host) for role in ROLES}
            self.ports["probes"] = self.port
        else:
            self.ports = dict(PORTS)
            self.port = PORTS["probes"]
            self._process = ServiceProcess(
                "mosquitto",
                ["ip", "netns", "exec", netns, find_binary("mosquitto", "mosquitto"),
                 "-c", str(self.conf_path)],
                workdir,
                logs=[self.log_path],
                stop_signal=signal.SIGTERM,
            )  # fmt: skip
        self.internal_port = self.ports["services"]
        self.admin_port = self.ports["admin"]
        self.config_dir = workdir / "config"
        copy_acls(self.config_dir)
        for role in ROLES:
            self.passwd(role).touch(mode=0o600)
        self.password_path = self.passwd("probes")
        self.acl_path = self.config_dir / "probes.acl"
        self.replace = list(replace)

    def passwd(self, role: str) -> Path:
        return self.config_dir / f"{role}.passwd"

    def add_user(self, name: str, password: str, *, role: str = "probes") -> None:
        """A login in ``role``'s password file (mosquitto_passwd); reloads a running broker."""
        binary = find_binary("mosquitto_passwd", "mosquitto")
        subprocess.run(
            [binary, "-b", str(self.passwd(role)), name, password],
            capture_output=True, check=True, timeout=30,
        )  # fmt: skip
        self.users[name] = password
        if self.running:
            self.reload()

    def config_text(self) -> str:
        text = CONF.read_text()
        for old, new in self.replace:
            assert old in text, f"{old!r} is not in {CONF}"
            text = text.replace(old, new)
        return render(
            text,
            config_dir=self.config_dir,
            certs=self.certs,
            data=self.data_dir,
            log=self.log_path,
            ports={PORTS[role]: port for role, port in self.ports.items()},
            host=self.bind,
        )

    def write_config(self) -> None:  # the ACLs and password files are deploy's, kept as they are
        self.conf_path.write_text(self.config_text())

    def reload(self) -> None:
        self._process.send_signal(signal.SIGHUP)  #: re-read the password files and the ACLs

    def _ready(self) -> bool:
        log = self._process.output_since_start(self.log_path)
        listening = all(f"listen socket on port {p}." in log for p in self.ports.values())
        if not listening or " running" not in log:
            return False
        return self.netns is not None or super()._ready()


@dataclass
class Client:
    """A paho MQTT v5 client over TLS recording CONNACK, PUBACK and SUBACK codes, messages
    and disconnections. ``listener``: probes (8883), services (8884) or admin (8885)."""

    broker: CentralBroker
    username: str | None
    password: str | None = None
    client_id: str = ""
    listener: str = "probes"
    ca: Path | None = None
    cert: tuple[Path, Path] | None = None
    clean_start: bool = True
    connack: list[int] = field(default_factory=list)
    pubacks: dict[int, int] = field(default_factory=dict)
    subacks: list[list[int]] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    retained: list[str] = field(default_factory=list)
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
            if msg.retain:
                self.retained.append(msg.topic)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.disconnects.append(rc.value)

    @property
    def port(self) -> int:
        return self.broker.ports[self.listener]

    def connect(self, *, expect_ok: bool = True, session_expiry_s: int = 0) -> Client:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if session_expiry_s:
            props.SessionExpiryInterval = session_expiry_s
        self.client.connect(
            "localhost", self.port, keepalive=10, clean_start=self.clean_start, properties=props
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
