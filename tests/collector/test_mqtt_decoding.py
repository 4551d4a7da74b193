"""The collector's faster decoding of PUBLISH properties gives what paho's own gives.

``collector.mqtt.speed_up_publish_decoding`` swaps the class paho's ``decode_publish`` uses
for received properties; every packet here is decoded both ways and compared field by field.
The end-to-end tests (tests/collector, tests/agent) then run the whole collector with it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import paho.mqtt._packet as paho_packet
import pytest
from paho.mqtt.client import MQTTv5
from paho.mqtt.exception import MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from probefleet.collector import mqtt as collector_mqtt

PUBLISH_QOS1 = 0x32


def _props(**values: Any) -> bytes:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, name, value)
    return props.pack()  # type: ignore[no-any-return, no-untyped-call]


def _packet(
    props: bytes, payload: bytes = b'{"schema":1}', topic: bytes = b"pf/p-1/results/dns"
) -> bytes:
    return struct.pack("!H", len(topic)) + topic + struct.pack("!H", 4242) + props + payload


CASES = {
    "no properties": _packet(b"\x00"),
    "no properties, empty payload": _packet(b"\x00", payload=b""),
    "payload starting with a zero byte": _packet(b"\x00", payload=b"\x00\x01\x02"),
    "user properties": _packet(_props(UserProperty=[("a", "1"), ("b", "2")])),
    "expiry and content type": _packet(
        _props(MessageExpiryInterval=60, ContentType="application/json", PayloadFormatIndicator=1)
    ),
    "response topic and correlation data": _packet(
        _props(ResponseTopic="pf/x/reply", CorrelationData=b"\x00\x01")
    ),
    "subscription identifiers": _packet(_props(SubscriptionIdentifier=[7, 300])),
}


@pytest.fixture
def paho_own() -> Iterator[None]:
    """paho as shipped for the duration of a block; the collector's class afterwards."""
    saved = vars(paho_packet)["Properties"]
    vars(paho_packet)["Properties"] = Properties
    yield
    vars(paho_packet)["Properties"] = saved


def _decode(packet: bytes) -> tuple[Any, ...]:
    result = paho_packet.decode_publish(PUBLISH_QOS1, packet, MQTTv5)
    props = result.properties
    assert props is not None
    as_json = props.json()  # type: ignore[no-untyped-call]  # paho leaves Properties.json bare
    return (result.topic, result.mid, result.payload, result.qos, str(props), as_json)


@pytest.mark.parametrize("name", sorted(CASES))
def test_decoding_matches_paho_exactly(name: str, paho_own: None) -> None:
    packet = CASES[name]
    expected = _decode(packet)
    assert collector_mqtt.speed_up_publish_decoding()
    try:
        got = _decode(packet)
        assert (
            type(paho_packet.decode_publish(PUBLISH_QOS1, packet, MQTTv5).properties)
            is not Properties
        )
    finally:
        vars(paho_packet)["Properties"] = Properties
    assert got == expected


def _error_of(packet: bytes) -> str:
    try:
        _decode(packet)
    except Exception as exc:  # which exception, and its text, is what is compared
        return f"{type(exc).__name__}: {exc}"
    return "decoded"


def test_malformed_properties_fail_the_same_way(paho_own: None) -> None:
    # A property id that PUBLISH cannot carry (17, session expiry) and a truncated one.
    for props in (b"\x05\x11\x00\x00\x00\x01", b"\x05\x02\x00"):
        packet = _packet(props, payload=b"")
        theirs = _error_of(packet)
        assert theirs != "decoded"
        assert collector_mqtt.speed_up_publish_decoding()
        try:
            ours = _error_of(packet)
        finally:
            vars(paho_packet)["Properties"] = Properties
        assert ours == theirs


def test_it_is_idempotent_and_leaves_a_changed_paho_alone(paho_own: None) -> None:
    assert collector_mqtt.speed_up_publish_decoding()
    assert collector_mqtt.speed_up_publish_decoding()
    assert vars(paho_packet)["Properties"] is not Properties

    class Elsewhere(Properties):  # a paho whose decode_publish uses another class
        pass

    vars(paho_packet)["Properties"] = Elsewhere
    assert not collector_mqtt.speed_up_publish_decoding()
    assert vars(paho_packet)["Properties"] is Elsewhere


def test_properties_built_for_sending_are_untouched() -> None:
    # Only the name decode_publish looks up is replaced: Properties(...) elsewhere (CONNECT,
    # what the agent and the collector send) is paho's own class, checks included.
    collector_mqtt.speed_up_publish_decoding()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    with pytest.raises(MQTTException):
        props.ReceiveMaximum = 0
