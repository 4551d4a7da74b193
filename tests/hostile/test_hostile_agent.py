"""The centre's messages to a probe, every field mutated, against a real running agent on
a real Mosquitto: it survives all of them, reports the bad config it was sent, and goes on
measuring — also after a restart with the last (hostile) config still retained."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from probefleet.agent import statusfile
from probefleet.core import wire
from probefleet.kinds.service.payload import ServiceCheck, ServiceResult

from tests.agent.helpers import AgentProcess, write_agent_config
from tests.agent.test_control import centre as _centre
from tests.agent.test_control import publish as _publish
from tests.agent.test_control import spooled_results
from tests.harness import Mosquitto, eventually
from tests.hostile.corpus import TOPICS, control_cases, remote_attacks
from tests.hostile.listener import CountingListener, ipv6_loopback

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


# --- remote control as a weapon (issue 17, item 9) ------------------------------------------


def _service_checks(state: Path, name: str) -> list[ServiceCheck]:
    found = []
    for result in spooled_results(state):
        if isinstance(result, ServiceResult) and result.data is not None:
            found += [c for c in result.data.checks if c.name == name]
    return found


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_remote_config_and_commands_cannot_turn_a_probe_into_a_weapon(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A real agent, a real broker, real listeners where the office LAN would be: every
    weapon config is refused, named in the retained status, the last good config kept; a
    name resolving to loopback is refused at run time; a command flood runs one bandwidth
    test; the LAN listeners see no connection at all, while the file's own check reaches its
    target."""
    state = tmp_path / "agent-state"
    broad = ["0.0.0.0/0", "::/0", "localhost"]  # every public address: the LAN is still shut
    with contextlib.ExitStack() as stack:
        lan = stack.enter_context(CountingListener("127.0.0.1"))
        lan6 = stack.enter_context(CountingListener("::1")) if ipv6_loopback() else None
        own = stack.enter_context(CountingListener("127.0.0.1"))  # the file's own service
        config = write_agent_config(
            tmp_path, mosquitto, enabled=("latency", "service"),
            remote={"allow_destinations": broad, "max_commands_per_hour": 20},
        )  # fmt: skip
        with config.open("a") as f:
            f.write('[[measurements.service.checks]]\nname = "own"\n'
                    f'target = "127.0.0.1:{own.port}"\ntimeout_s = 2.0\n')  # fmt: skip
        trace = tmp_path / "trace"
        agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="1",
                             STANDIN_TRACE=str(trace))  # fmt: skip
        centre = stack.enter_context(_centre(mosquitto))
        client, seen = centre
        try:
            agent.start(wait_for="MQTT connected")
            eventually(lambda: own.connections > 0, timeout_s=20,
                       message="the file's own service check did not run")  # fmt: skip
            config_topic = TOPICS.channel(PROBE, "config")
            good = {"measurements": {"latency": {"interval_s": 600}}}
            _publish(client, config_topic, json.dumps(good).encode(), retain=True)
            eventually(lambda: statusfile.read(state)["config"]["remote_digest"], timeout_s=20,
                       message="good config not applied")  # fmt: skip
            attacks = remote_attacks(lan.port, lan6.port if lan6 else 9)
            for attack in attacks:
                _publish(client, config_topic, json.dumps(attack.doc).encode(), retain=True)

                # The retained status is republished at once (status.json: every 5 s).
                def refused(named: str = attack.named) -> bool:
                    return named in (seen[-1].config_error or "")

                why = f"{attack.name}: not refused naming {attack.named!r}"
                eventually(refused, timeout_s=20, message=why)
                assert json.loads((state / "remote-config.json").read_text()) == good
            eventually(
                lambda: attacks[-1].named in (statusfile.read(state)["config"]["error"] or ""),
                timeout_s=20, message="the last refusal is not in status.json",
            )  # fmt: skip
            assert seen[-1].config_digest == statusfile.read(state)["config"]["remote_digest"]
            # A name the file allows, resolving to loopback: accepted, refused at run time.
            by_name = {
                "measurements": {
                    "service": {
                        "checks": [
                            {
                                "name": "lan",
                                "target": f"http://localhost:{lan.port}/",
                                "timeout_s": 2.0,
                            }
                        ]
                    }
                }
            }
            _publish(client, config_topic, json.dumps(by_name).encode(), retain=True)
            eventually(lambda: _service_checks(state, "lan"), timeout_s=30,
                       message="no service run with the remote check")  # fmt: skip
            check = _service_checks(state, "lan")[0]
            assert not check.up
            assert check.error is not None
            assert "localhost resolves to" in check.error, check.error
            assert "loopback ([remote] allow_private = false); nothing was sent" in check.error
            # A command flood: one bandwidth test runs, the rest are skipped or dropped.
            commands = TOPICS.channel(PROBE, "commands")
            for i in range(30):
                flood = wire.Command(schema=1, command="measure", kind="throughput",
                                     request_id=f"flood-{i}")  # fmt: skip
                _publish(client, commands, wire.encode(flood))

            def commanded() -> list[wire.Result]:
                return [
                    r for r in spooled_results(state) if (r.request_id or "").startswith("flood")
                ]

            eventually(
                lambda: len(commanded()) == 20
                and "more than [remote] max_commands_per_hour = 20" in agent.log_since_start(),
                timeout_s=60, message="not 20 results for the commands within the hourly cap",
            )  # fmt: skip
            assert agent.terminate() == 0
            log = agent.log_since_start()
            assert "Traceback" not in log
            assert log.count("max_commands_per_hour") == 1  # logged once, not per message
        finally:
            agent.kill()
        statuses = Counter(r.status for r in commanded())
        assert statuses == {"ok": 1, "skipped": 19}, statuses
        skipped = [r for r in commanded() if r.status == "skipped"]
        assert all("at most one per [remote] min_interval_s = 900 s" in (r.reason or "")
                   for r in skipped)  # fmt: skip
        starts = [line for line in trace.read_text().splitlines() if "start throughput" in line]
        assert len(starts) == 1
        assert lan.connections == 0, "a refused destination was reached"
        assert lan6 is None or lan6.connections == 0
