"""Smoke tests proving the harness runs real Mosquitto, InfluxDB (+ v2 front) and nginx."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, NginxTestServer, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MB = 1_000_000
NO_MATCHING_SUBSCRIBERS = 0x10  # MQTT 5: a *success* code, the message was accepted
NOT_AUTHORIZED = 0x87


# -- InfluxDB ------------------------------------------------------------------------------


def test_influxdb_client_v2_write_reads_back_with_influxql(influx_db: InfluxTarget) -> None:
    influxdb, db = influx_db
    ts_ns = 1_764_337_200_123_456_789
    with InfluxDBClient(url=influxdb.url, token="x:y", org="-", timeout=10_000) as client:
        assert client.ping() is True
        write_api = client.write_api(write_options=SYNCHRONOUS)
        point = (
            # influxdb_client ships py.typed, but Point's methods are unannotated.
            Point("smoke")  # type: ignore[no-untyped-call]
            .tag("probe", "pi-001")
            .tag("ip_version", "6")
            .field("download_mbps", 93.25)
            .field("bytes", 123_456_789)
            .field("ok", True)
            .field("server", "nginx-local")
            .time(ts_ns, WritePrecision.NS)
        )
        write_api.write(bucket=db, record=point, write_precision=WritePrecision.NS)
        # A second point in seconds precision proves the precision mapping in the front.
        write_api.write(
            bucket=db,
            # A Point's own precision wins over write_precision=, so give it on both.
            record=Point("smoke")  # type: ignore[no-untyped-call]  # unannotated, as above
            .tag("probe", "pi-002")
            .field("bytes", 1)
            .time(1_700_000_000, WritePrecision.S),
            write_precision=WritePrecision.S,
        )

    series = influxdb.query('SELECT * FROM "smoke" ORDER BY time', db=db)
    assert series == [
        {
            "name": "smoke",
            "columns": ["time", "bytes", "download_mbps", "ip_version", "ok", "probe", "server"],
            "values": [
                [1_700_000_000 * 10**9, 1, None, None, None, "pi-002", None],
                [ts_ns, 123_456_789, 93.25, "6", True, "pi-001", "nginx-local"],
            ],
        }
    ]
    tag_keys = influxdb.query('SHOW TAG KEYS FROM "smoke"', db=db)
    assert tag_keys[0]["values"] == [["ip_version"], ["probe"]]


# -- Mosquitto -----------------------------------------------------------------------------


@dataclass
class Recorder:
    """What the paho callbacks saw, filled from paho's network thread."""

    connects: list[ReasonCode] = field(default_factory=list)
    disconnects: int = 0
    granted: list[list[int]] = field(default_factory=list)
    published: dict[int, ReasonCode] = field(default_factory=dict)
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_client(client_id: str, recorder: Recorder, *, subscribe: str | None = None) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    # Keep reconnects prompt: the restart test waits for one.
    client.reconnect_delay_set(min_delay=1, max_delay=2)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Properties | None) -> None:
        with recorder.lock:
            recorder.connects.append(rc)
        if subscribe is not None and not rc.is_failure:
            # Subscribing on every connect survives a broker that lost its sessions.
            c.subscribe(subscribe, qos=1)

    def on_disconnect(*_args: Any) -> None:
        with recorder.lock:
            recorder.disconnects += 1

    def on_subscribe(
        _c: mqtt.Client, _u: Any, _mid: int, rcs: list[ReasonCode], _p: Properties | None
    ) -> None:
        # Recorded, not asserted: an assert here would only kill paho's network thread.
        with recorder.lock:
            recorder.granted.append([rc.value for rc in rcs])

    def on_publish(
        _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Properties | None
    ) -> None:
        with recorder.lock:
            recorder.published[mid] = rc

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with recorder.lock:
            recorder.messages.append(message)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    return client


@contextmanager
def running(client: mqtt.Client, broker: Mosquitto) -> Iterator[mqtt.Client]:
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish_and_wait(client: mqtt.Client, recorder: Recorder, topic: str, payload: bytes) -> int:
    """Publish QoS 1 and return the PUBACK reason code value."""
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout=10)
    rc = eventually(
        lambda: recorder.published.get(info.mid),
        timeout_s=10,
        message=f"no PUBACK for {topic}",
    )
    assert rc is not None
    return int(rc.value)


def first_connack(recorder: Recorder) -> ReasonCode:
    connects = eventually(lambda: recorder.connects, message="no CONNACK")
    return connects[0]


def connack_of(broker: Mosquitto, username: str | None, password: str | None) -> ReasonCode:
    """Connect once, driving paho's loop by hand, and return the CONNACK reason code."""
    seen = Recorder()
    client = make_client(f"connack-{username}", seen)
    if username is not None:
        client.username_pw_set(username, password)
    client.connect(broker.host, broker.port, keepalive=10)

    def step() -> list[ReasonCode]:
        # By hand because loop_start()'s thread would retry a refused connect after a back-off.
        client.loop(0.05)
        return seen.connects

    try:
        return eventually(step, message="no CONNACK")[0]
    finally:
        client.disconnect()


def test_mqtt_v5_qos1_roundtrip(mosquitto: Mosquitto) -> None:
    payload = b'{"probe": "pi-001", "download_mbps": 93.25}\x00\xff'
    sub_seen, pub_seen = Recorder(), Recorder()
    subscriber = make_client("smoke-sub", sub_seen, subscribe="probefleet/v1/#")
    publisher = make_client("smoke-pub", pub_seen)
    with running(subscriber, mosquitto), running(publisher, mosquitto):
        eventually(lambda: sub_seen.granted == [[1]], message="no SUBACK granting QoS 1")
        rc = publish_and_wait(publisher, pub_seen, "probefleet/v1/pi-001/results", payload)
        assert rc == 0
        eventually(lambda: sub_seen.messages, message="subscriber got nothing")
    [message] = sub_seen.messages
    assert (message.topic, message.payload, message.qos) == (
        "probefleet/v1/pi-001/results",
        payload,
        1,
    )


def test_mqtt_password_and_acl(mosquitto_factory: MosquittoFactory) -> None:
    broker = mosquitto_factory(
        anonymous=False,
        users={"alice": "alice-secret"},
        acl_lines=["user alice", "topic readwrite t/alice/#"],
    )
    seen = Recorder()
    alice = make_client("alice", seen)
    alice.username_pw_set("alice", "alice-secret")
    with running(alice, broker):
        assert first_connack(seen).value == 0
        # Nobody subscribes to t/alice/x: Mosquitto says so with 0x10, still a success.
        assert publish_and_wait(alice, seen, "t/alice/x", b"mine") == NO_MATCHING_SUBSCRIBERS
        # Mosquitto 2 answers a denied MQTT 5 QoS 1 publish with PUBACK 0x87 (and drops it).
        assert publish_and_wait(alice, seen, "t/bob/x", b"not mine") == NOT_AUTHORIZED

    # Mosquitto 2.0 refuses both with CONNACK 0x87 "Not authorized" (not 0x86 "Bad user name
    # or password" for the wrong password), so clients cannot tell the two apart.
    for username, password in [(None, None), ("alice", "wrong")]:
        rc = connack_of(broker, username, password)
        assert rc.is_failure
        assert rc.value == NOT_AUTHORIZED, (username, rc)


def test_mqtt_client_survives_broker_kill_and_restart(mosquitto: Mosquitto) -> None:
    seen = Recorder()
    client = make_client("restart-probe", seen, subscribe="r/#")
    with running(client, mosquitto):
        eventually(lambda: seen.granted == [[1]], message="no SUBACK granting QoS 1")
        assert publish_and_wait(client, seen, "r/before", b"1") == 0
        eventually(lambda: len(seen.messages) == 1, message="own message not received")

        mosquitto.kill()
        eventually(lambda: seen.disconnects >= 1, message="client did not notice the crash")
        mosquitto.restart()

        eventually(
            lambda: len(seen.connects) == 2 and seen.granted == [[1], [1]],
            timeout_s=20,
            message="client did not reconnect and resubscribe",
        )
        assert publish_and_wait(client, seen, "r/after", b"2") == 0
        eventually(lambda: len(seen.messages) == 2, message="message after restart missing")
    assert [(m.topic, m.payload) for m in seen.messages] == [("r/before", b"1"), ("r/after", b"2")]
    # Two runs of the broker, on the same port, wrote to the same log.
    assert mosquitto.log_text().count(f"listen socket on port {mosquitto.port}.") == 2


# -- nginx test server ---------------------------------------------------------------------


def _http() -> httpx.Client:
    # trust_env=False: an http_proxy variable in CI must not reroute loopback traffic.
    return httpx.Client(trust_env=False, timeout=httpx.Timeout(30.0))


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_download_counts_exact_bytes(http_server: NginxTestServer, family: str) -> None:
    if family == "ipv6" and not http_server.has_ipv6:
        pytest.skip("::1 is not configured on this machine")
    url = http_server.large_url if family == "ipv4" else http_server.large_url_v6
    want = 50 * MB
    received = 0
    with _http() as client:
        head = client.head(url)
        assert head.status_code == 200
        assert int(head.headers["content-length"]) == http_server.large_size
        with client.stream("GET", url, headers={"Range": f"bytes=0-{want - 1}"}) as response:
            assert response.status_code == 206
            assert int(response.headers["content-length"]) == want
            for chunk in response.iter_raw(1 << 20):
                received += len(chunk)
    assert received == want


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upload_sink_accepts_20_mb(http_server: NginxTestServer, framing: str) -> None:
    size, chunk = 20 * MB, b"\x5a" * MB
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(size // len(chunk)):
            sent += len(chunk)
            yield chunk

    headers = {"Content-Length": str(size)} if framing == "content-length" else {}
    with _http() as client:
        response = client.post(http_server.upload_url, content=body(), headers=headers)
        assert response.is_success, response
        assert sent == size
        assert client.get(http_server.empty_url).content == b""


def _read_response_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(4096)
        assert more, f"connection closed mid-response: {data!r}"
        data += more
    return data


def test_upload_sink_answers_only_after_the_whole_body(http_server: NginxTestServer) -> None:
    # An upload measurement times "body sent → response"; a server that answers early (nginx
    # "return 200" discards the body in the background) would make that meaningless.
    size = 5 * MB
    with socket.create_connection((http_server.host, http_server.port), timeout=10) as sock:
        head = f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
        sock.sendall(head.encode() + b"\0" * (size - 1))
        # A bounded wait for an answer that must not come: nginx still waits for one byte.
        readable, _, _ = select.select([sock], [], [], 0.5)
        assert not readable, f"nginx answered before the body was complete: {sock.recv(200)!r}"
        sock.sendall(b"\0")
        assert _read_response_head(sock).startswith(b"HTTP/1.1 200 ")
        # The connection is still in sync, so nginx consumed exactly the body we sent.
        sock.sendall(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response_head(sock).startswith(b"HTTP/1.1 200 ")
