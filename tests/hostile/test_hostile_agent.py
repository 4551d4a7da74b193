"""The centre's messages to a probe, every field mutated, against a real running agent on
a real Mosquitto: it survives all of them, reports the bad config it was sent, and goes on
measuring — also after a restart with the last (hostile) config still retained."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from probefleet.agent import statusfile

from tests.agent.helpers import AgentProcess, write_agent_config
from tests.agent.test_control import spooled_results
from tests.harness import Mosquitto, eventually
from tests.hostile.corpus import control_cases

PROBE = "probe-a"


@pytest.mark.integration
def test_a_running_agent_survives_every_mutated_control_message(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cases = control_cases(PROBE)
    print("\nagent corpus:", dict(Counter(c.topic.rsplit("/", 1)[1] for c in cases)))
    state = tmp_path / "agent-state"
    agent = AgentProcess(write_agent_config(tmp_path, mosquitto), tmp_path / "agent.log",
                         STANDIN_INTERVAL_S="0.5")  # fmt: skip
    centre = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    centre.connect(mosquitto.host, mosquitto.port)
    centre.loop_start()
    try:
        agent.start(wait_for="MQTT connected")
        for case in cases:
            retain = case.topic.endswith("/config")
            centre.publish(case.topic, case.payload, qos=1, retain=retain).wait_for_publish(10)
        # The last retained config is a mutated one: rejected with a reason, or applied.
        eventually(lambda: statusfile.read(state)["config"] is not None, timeout_s=20,
                   message="no config state")  # fmt: skip
        before = len(spooled_results(state))
        eventually(lambda: len(spooled_results(state)) > before + 2, timeout_s=30,
                   message="the agent stopped measuring")  # fmt: skip
        assert agent.proc is not None
        assert agent.proc.poll() is None, agent.log_since_start()[-3000:]
        assert "Traceback" not in agent.log_since_start()
        assert agent.terminate() == 0
        agent.start(wait_for="MQTT connected")
        before = len(spooled_results(state))
        eventually(lambda: len(spooled_results(state)) > before, timeout_s=30,
                   message="the agent stopped measuring after a restart")  # fmt: skip
        assert "Traceback" not in agent.log_since_start()
        assert agent.terminate() == 0
    finally:
        centre.loop_stop()
        centre.disconnect()
        agent.kill()
