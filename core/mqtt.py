"""The MQTT connection both programs make: its settings (``[mqtt]``) and the one factory.

The agent (publisher) and the collector (consumer) differ in what they do on the
connection, not in how they open it: protocol, TLS, credentials, back-off and keep-alive
are set here once, so the two cannot drift apart again. paho is imported only when a client
is made: the one-shot tools (``check``, ``report``) never load it.

Usage::

    client = mqtt.client(cfg.mqtt, client_id="tanphu-01")            # paho, not connected
    client = mqtt.client(cfg.mqtt, client_id="probefleet-collector", manual_ack=True)
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, Self

import msgspec
from probefleet.core import configkit, wire

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from paho.mqtt.client import Client

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
# The wait before a reconnect doubles from about 1 s up to this: a probe is back within
# about 10 s of a returning broker. One value for both programs. The waits are jittered
# (:func:`jitter_backoff`): thousands of probes that lost the broker at the same moment
# would otherwise retry in step and all land on it in the same second when it returns.
RECONNECT_MAX_S = 10


class MqttSection(configkit.Section, frozen=True, kw_only=True):
    """``[mqtt]``: where the broker is and how to log in; the same keys in both programs."""

    host: Annotated[str, msgspec.Meta(min_length=1)] = "localhost"
    port: Port = 8883
    tls: bool = True
    ca_file: str = ""  # empty: the system's CA store
    cert_file: str = ""  # client certificate, optional; needs key_file
    key_file: str = ""
    username: str = ""  # agent: empty means the probe id (the broker maps username -> client id)
    # Secret: env PROBEFLEET_MQTT_PASSWORD or PROBEFLEET_MQTT_PASSWORD_FILE win over these.
    password: str = ""
    password_file: str = ""
    topic_root: Annotated[str, msgspec.Meta(pattern=r"^[^+#/][^+#]*[^+#/]\Z")] = (
        wire.DEFAULT_TOPIC_ROOT
    )
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 60
    reconnect_max_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = RECONNECT_MAX_S

    def resolved(self, env: dict[str, str], base: Path, problems: list[str]) -> Self:
        """A copy with the password read from its secret source; cross-key checks."""
        if bool(self.cert_file) != bool(self.key_file):
            problems.append("mqtt.cert_file and mqtt.key_file: give both or neither")
        password = configkit.read_secret(
            key="mqtt.password",
            value=self.password,
            file_value=self.password_file,
            env_name="PROBEFLEET_MQTT_PASSWORD",
            env=env,
            base=base,
            problems=problems,
        )
        return msgspec.structs.replace(self, password=password)

    def url(self) -> str:
        """``mqtts://host:port`` for people (``check``, logs)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def client(cfg: MqttSection, *, client_id: str, manual_ack: bool = False) -> Client:
    """A paho client (MQTT v5, callback API 2) set up from ``cfg``; not yet connected.

    The caller adds its callbacks, Last Will and CONNECT properties, then connects with
    ``keepalive=cfg.keepalive_s``."""
    from paho.mqtt import client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    made = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    # A stray exception in a callback is logged by paho, never allowed to end its thread.
    made.suppress_exceptions = True
    jitter_backoff(made, cfg)
    # paho retries a failed connect in silence (a DEBUG line): say why, at every attempt.
    made.on_connect_fail = lambda _client, _userdata: log.warning(
        "cannot reach the broker %s: %s; retrying", cfg.url(), connect_failure(sys.exception())
    )
    if cfg.username:
        made.username_pw_set(cfg.username, cfg.password or None)
    if cfg.tls:
        made.tls_set(
            ca_certs=cfg.ca_file or None,
            certfile=cfg.cert_file or None,
            keyfile=cfg.key_file or None,
            cert_reqs=ssl.CERT_REQUIRED,  # the broker's certificate is always checked
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    return made


def jitter_backoff(made: Client, cfg: MqttSection, rng: random.Random | None = None) -> None:
    """Draw this client's reconnect waits afresh: the first in [0.5, 1.5] s, the cap in the
    upper half of ``reconnect_max_s``. paho doubles from the first up to the cap, so clients
    that lost the same broker at the same moment drift apart from their first retry on.
    Called at set-up and again at every disconnect (thread-safe: paho takes its lock)."""
    draw = (rng or _RNG).uniform
    cap = max(1.0, draw(cfg.reconnect_max_s / 2, cfg.reconnect_max_s))
    first = min(cap, draw(0.5, 1.5))
    # paho annotates whole seconds but only ever adds and doubles them: floats are fine.
    made.reconnect_delay_set(min_delay=first, max_delay=cap)  # type: ignore[arg-type]


_RNG: Final = random.SystemRandom()


def connect_failure(exc: BaseException | None) -> str:
    """Why a connection attempt failed, in words a technician can act on. paho calls
    on_connect_fail inside its ``except OSError``, so the error is the one being handled."""
    if isinstance(exc, socket.gaierror):
        return f"its name does not resolve ({exc.strerror or exc}): check [mqtt] host and DNS"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: is the broker running, and is [mqtt] port right?"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: its certificate is not trusted ({exc.verify_message or exc}): "
            "check [mqtt] ca_file and host"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc}): is it a TLS port, is [mqtt] tls right?"
    if isinstance(exc, TimeoutError):
        return "no answer (timed out): a firewall, or the wrong address"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return "unknown reason"
