"""Back within seconds of a returning broker: agents reconnect within ``reconnect_max_s``
(10 s) of the broker's return, with jittered waits so that a fleet does not come back in
step (a real Mosquitto killed -9 and started again 30 s later)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from probefleet.agent.config import SpoolSection
from probefleet.agent.publisher import Publisher
from probefleet.agent.spool import Spool
from probefleet.core import mqtt as core_mqtt
from probefleet.core.mqtt import MqttSection

from tests.harness import Mosquitto, MosquittoFactory, eventually

BOOT = "5967a284-5a74-4aee-a62b-9cb68f34bf08"


def test_reconnect_waits_are_jittered_and_bounded() -> None:
    cfg = MqttSection(reconnect_max_s=10)
    rng = random.Random(7)  # noqa: S311 - a seeded draw to test, not a secret

    class Client:
        def reconnect_delay_set(self, min_delay: float, max_delay: float) -> None:
            self.delays = (min_delay, max_delay)

    draws = []
    for _ in range(200):
        client = Client()
        core_mqtt.jitter_backoff(client, cfg, rng)  # type: ignore[arg-type]
        draws.append(client.delays)
    assert all(0.5 <= first <= 1.5 and 5.0 <= cap <= 10.0 for first, cap in draws)
    assert len({round(first, 3) for first, _ in draws}) > 150, "the fleet would retry in step"


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_agents_are_back_within_ten_seconds_of_the_broker(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker: Mosquitto = mosquitto_factory()
    cfg = MqttSection(host=broker.host, port=broker.port, tls=False, keepalive_s=5)
    publishers = []
    for i in range(5):
        spool = Spool(tmp_path / f"p{i}", max_bytes=10**6)
        publisher = Publisher(f"probe-{i}", cfg, SpoolSection(), spool, boot_id=BOOT)
        publisher.start()
        publishers.append(publisher)
    try:
        eventually(lambda: all(p.state.connected for p in publishers), timeout_s=20,
                   message="not connected")  # fmt: skip
        broker.kill()
        eventually(lambda: not any(p.state.connected for p in publishers), timeout_s=20,
                   message="the loss of the broker went unnoticed")  # fmt: skip
        time.sleep(30)  # long enough for every back-off to reach its cap
        broker.start()
        back = time.monotonic()
        came_back: dict[int, float] = {}

        def all_back() -> bool:
            for i, p in enumerate(publishers):
                if p.state.connected and i not in came_back:
                    came_back[i] = time.monotonic() - back
            return len(came_back) == len(publishers)

        eventually(all_back, timeout_s=30, interval_s=0.05, message=lambda: f"back: {came_back}")
        print("reconnected after (s):", sorted(round(s, 1) for s in came_back.values()))
        assert max(came_back.values()) <= 11.0, came_back
    finally:
        for p in publishers:
            p.stop(timeout_s=0.5)
