"""The publisher against a real Mosquitto: a refused PUBACK is not a delivery, a PUBACK is
not the end — only a StoredAck empties the spool — and a failing disk costs one message."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from probefleet.agent.config import AgentConfig
from probefleet.agent.publisher import Publisher
from probefleet.agent.spool import Spool
from probefleet.core import configkit, wire

from tests.agent.spooling import PROBE, disk_fails, seqs, spool_results, stored_ack
from tests.harness import Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
TOPICS = wire.Topics()
BOOT = "5967a284-5a74-4aee-a62b-9cb68f34bf08"


def test_not_authorised_puback_keeps_results_until_the_stored_ack(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    acl = [
        "user probe-a",
        "topic read probefleet/v1/probe-a/#",
        "topic write probefleet/v1/probe-a/status",
        "user centre",
        "topic readwrite probefleet/v1/#",
    ]
    broker = mosquitto_factory(
        anonymous=False, users={"probe-a": "pw-a", "centre": "pw-c"}, acl_lines=acl
    )
    cfg = configkit.build(
        {
            "probe": {"id": "probe-a", "state_dir": str(tmp_path)},
            "mqtt": {"host": broker.host, "port": broker.port, "tls": False,
                     "password": "pw-a"},
            "spool": {"retry_s": 0.5},
        },
        AgentConfig,
    )  # fmt: skip
    cfg = cfg.resolve({}, [], tmp_path)
    spool = Spool(tmp_path, max_bytes=10**6)
    for _ in range(3):
        spool.append("latency", lambda s: (TOPICS.result("probe-a", "latency"), b'{"seq":%d}' % s))
    got: list[bytes] = []
    lock = threading.Lock()
    centre = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    centre.username_pw_set("centre", "pw-c")

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.append(bytes(msg.payload))

    centre.on_message = on_message
    centre.connect(broker.host, broker.port)
    centre.subscribe(TOPICS.all_results(), qos=1)
    centre.loop_start()
    publisher = Publisher("probe-a", cfg.mqtt, cfg.spool, spool, boot_id=BOOT)
    try:
        publisher.start()
        eventually(
            lambda: sum(publisher.state.refused.values()) >= 6, timeout_s=30,
            message="no refusals counted",
        )  # fmt: skip
        assert any("authori" in name.lower() for name in publisher.state.refused)
        assert not got, "the broker delivered what it said it refused"
        assert spool.figures().depth == 3
        # The ACL is fixed: delivered now, but still spooled until the collector confirms.
        assert broker.acl_lines is not None
        broker.acl_lines[:] = [*acl[:3], "topic write probefleet/v1/probe-a/results/#", *acl[3:]]
        broker.reload()
        eventually(lambda: len(got) >= 3, timeout_s=30, message="not delivered after the fix")
        eventually(lambda: publisher.state.unconfirmed == 3, message="not waiting for StoredAck")
        assert spool.figures().depth == 3
        ack = wire.StoredAck(schema=1, probe_id="probe-a", stored_through_seq=2,
                             also_stored=[(3, 3)], at=wire.utc_now())  # fmt: skip
        centre.publish(TOPICS.channel("probe-a", "ack"), wire.encode(ack), qos=1)
        eventually(lambda: spool.figures().depth == 0, message="StoredAck did not empty it")
        assert publisher.state.confirmed == 3
    finally:
        publisher.stop()
        centre.loop_stop()
        centre.disconnect()
        spool.close()


def test_no_subscriber_is_not_a_delivery_and_holds_the_backlog_back(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()  # nobody subscribes: every PUBACK says 0x10
    cfg = configkit.build(
        {
            "probe": {"id": "probe-a", "state_dir": str(tmp_path)},
            "mqtt": {"host": broker.host, "port": broker.port, "tls": False},
            "spool": {"retry_s": 1.0, "window": 5},
        },
        AgentConfig,
    ).resolve({}, [], tmp_path)
    spool = Spool(tmp_path, max_bytes=10**6)
    for _ in range(100):
        spool.append("latency", lambda s: (TOPICS.result("probe-a", "latency"), b'{"seq":%d}' % s))
    publisher = Publisher("probe-a", cfg.mqtt, cfg.spool, spool, boot_id=BOOT)
    try:
        publisher.start()
        eventually(lambda: publisher.state.refused, timeout_s=20, message="no PUBACK seen")
        time.sleep(3)
        refused = publisher.state.refused
        published = publisher.state.published
    finally:
        publisher.stop()
        spool.close()
    assert list(refused) == ["No matching subscribers"]
    # One window at first, then one window per retry_s: not the whole backlog every time.
    assert 5 <= published <= 40, published  # the backlog is 100
    assert Spool(tmp_path, max_bytes=10**6).figures().depth == 100


def test_a_disk_failing_on_a_stored_ack_costs_that_ack_not_the_publisher(
    tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = configkit.build(
        {
            "probe": {"id": PROBE, "state_dir": str(tmp_path)},
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "tls": False},
        },
        AgentConfig,
    ).resolve({}, [], tmp_path)
    spool = Spool(tmp_path / "agent", max_bytes=10**7)
    spool_results(spool, 3)
    centre = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    centre.connect(mosquitto.host, mosquitto.port)
    centre.subscribe(TOPICS.all_results(), qos=1)  # PUBACKs say 0x00
    centre.loop_start()
    publisher = Publisher(PROBE, cfg.mqtt, cfg.spool, spool, boot_id=BOOT)
    ack_topic = TOPICS.channel(PROBE, "ack")
    try:
        publisher.start()
        eventually(lambda: publisher.state.unconfirmed == 3, message="not PUBACKed")
        with disk_fails(spool, "DELETE", from_seq=2):
            centre.publish(ack_topic, stored_ack(3), qos=1).wait_for_publish(10)
            eventually(
                lambda: "ack message not handled, the spool failed" in caplog.text,
                message="the failure was not logged",
            )
        assert publisher.alive() is None
        assert seqs(spool) == [1, 2, 3]
        assert publisher.state.confirmed == 0
        centre.publish(ack_topic, stored_ack(3), qos=1).wait_for_publish(10)
        eventually(lambda: seqs(spool) == [], message="the next StoredAck deleted nothing")
        assert publisher.state.confirmed == 3
        assert publisher.alive() is None
    finally:
        publisher.stop()
        centre.loop_stop()
        centre.disconnect()
        spool.close()
