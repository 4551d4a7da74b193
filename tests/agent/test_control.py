"""Fleet control and the runtime's rules with a real `probe-agent run`: a retained config
from the centre (a bad one rejected and reported, the last good one kept), on-demand
commands, bandwidth tests that never overlap, the busy-line gate, the data budget across a
restart."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from probefleet.agent import statusfile
from probefleet.agent.budget import MB, Budget
from probefleet.agent.clock import kernel_says_synced
from probefleet.core import wire

from tests.agent.helpers import ROOT, AgentProcess, write_agent_config
from tests.harness import Mosquitto, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
TOPICS = wire.Topics()


def spooled_results(state: Path) -> list[wire.Result]:
    with contextlib.closing(sqlite3.connect(state / "spool.db")) as db:
        rows = db.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
    return [wire.decode_result(bytes(p)) for (p,) in rows]


@contextlib.contextmanager
def centre(broker: Mosquitto) -> Iterator[tuple[mqtt.Client, list[wire.ProbeStatus]]]:
    """The centre's side: publishes config/commands, records the probe's retained status."""
    seen: list[wire.ProbeStatus] = []
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.payload:
            seen.append(wire.decode(bytes(msg.payload), wire.ProbeStatus))

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe(TOPICS.all_status(), qos=1)
    client.loop_start()
    try:
        yield client, seen
    finally:
        client.loop_stop()
        client.disconnect()


def publish(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)


def test_remote_config_applied_bad_one_rejected_and_reported_command_runs(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    state = tmp_path / "agent-state"
    config = write_agent_config(tmp_path, mosquitto)
    agent = AgentProcess(config, tmp_path / "agent.log")
    config_topic = TOPICS.channel("probe-a", "config")
    good = {"measurements": {"latency": {"interval_s": 1234}}, "gate": {"max_cpu_pct": 50.0}}
    try:
        with centre(mosquitto) as (client, seen):
            agent.start(wait_for="MQTT connected")
            publish(client, config_topic, json.dumps(good).encode(), retain=True)
            eventually(
                lambda: statusfile.read(state)["config"]["remote_digest"], timeout_s=20,
                message="good config not applied",
            )  # fmt: skip
            kept = json.loads((state / "remote-config.json").read_text())
            assert kept == good
            eventually(lambda: seen and seen[-1].config_digest, message="digest not in status")
            # Bad: a value out of range, and a section the centre may not touch.
            bad = {"measurements": {"latency": {"interval_s": 1}}, "mqtt": {"host": "evil"}}
            publish(client, config_topic, json.dumps(bad).encode(), retain=True)
            eventually(
                lambda: statusfile.read(state)["config"]["error"], timeout_s=20,
                message="bad config not reported in status.json",
            )  # fmt: skip
            error = statusfile.read(state)["config"]["error"]
            assert "mqtt: not changeable from the centre" in error
            eventually(lambda: seen[-1].config_error, message="rejection not in retained status")
            assert seen[-1].config_digest == statusfile.read(state)["config"]["remote_digest"]
            assert json.loads((state / "remote-config.json").read_text()) == good
            # Right shape, wrong values: the same decoder as the file names the key.
            publish(client, config_topic, b'{"measurements": {"latency": {"interval_s": 1}}}',
                    retain=True)  # fmt: skip
            eventually(
                lambda: "measurements.latency.interval_s = 1: must be >= 10"
                in (statusfile.read(state)["config"]["error"] or ""),
                timeout_s=20, message="value error not named",
            )  # fmt: skip
            # A command: the result is spooled and published like any other.
            command = wire.Command(schema=1, command="measure", kind="latency", request_id="r-1")
            publish(client, TOPICS.channel("probe-a", "commands"), wire.encode(command))
            eventually(
                lambda: any(r["kind"] == "latency" for r in statusfile.read(state)["last_results"]),
                timeout_s=20, message="command did not run",
            )  # fmt: skip
            # Its result names the command (scheduled results carry no request_id).
            named = {
                (r.request_id, wire.kind_of(r)) for r in spooled_results(state) if r.request_id
            }
            assert named == {("r-1", "latency")}
            assert agent.terminate() == 0
            eventually(lambda: seen[-1].state == "offline", message="no offline status")
        # Restart: the last good remote config is in force again, before any message.
        agent.start(wait_for="MQTT connected")
        eventually(
            lambda: statusfile.read(state)["config"]["remote_digest"], timeout_s=20,
            message="kept config not applied at start",
        )  # fmt: skip
        assert "applied (kept from" in agent.log_since_start()
        assert agent.terminate() == 0
    finally:
        agent.kill()


def test_hostile_remote_messages_cost_only_themselves(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """A leaked login's worst on the topics a probe listens to: nested documents, junk,
    unknown kinds and broken acks. The agent stays up, keeps its config and still measures."""
    state = tmp_path / "agent-state"
    config = write_agent_config(tmp_path, mosquitto)
    agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="0.5")
    deep = b'{"measurements":' + b"[" * 5000 + b"]" * 5000 + b"}"
    attacks: dict[wire.Channel, list[bytes]] = {
        "config": [deep, b"x = " + b"[" * 5000 + b"]" * 5000, b"\xff\xfe", b"[" * 60_000],
        "commands": [deep, b'{"schema":1,"command":"measure","kind":"nope","request_id":"r"}'],
        "ack": [deep, b"{}", b"null"],
        "resend": [deep, b'{"schema":1,"probe_id":"probe-a","ranges":[[5,1]],"at":"x"}'],
    }
    try:
        with centre(mosquitto) as (client, _seen):
            agent.start(wait_for="MQTT connected")
            for channel, payloads in attacks.items():
                for payload in payloads:
                    publish(
                        client,
                        TOPICS.channel("probe-a", channel),
                        payload,
                        retain=channel == "config",
                    )
            before = len(spooled_results(state))
            eventually(lambda: len(spooled_results(state)) > before + 2, timeout_s=20,
                       message="the agent stopped measuring")  # fmt: skip
            assert agent.proc is not None
            assert agent.proc.poll() is None, agent.log_since_start()[-3000:]
            error = statusfile.read(state)["config"]["error"] or ""
            assert "nested deeper than 16" in error or "not valid JSON or TOML" in error
            log = agent.log_since_start()
            assert "is not a measurement of this probe" in log
            assert "Traceback" not in log
            assert agent.terminate() == 0
        # The retained junk is still there at the next start: it must not stop the agent.
        agent.start(wait_for="MQTT connected")
        before = len(spooled_results(state))
        eventually(lambda: len(spooled_results(state)) > before, timeout_s=20,
                   message="the agent stopped measuring after a restart")  # fmt: skip
        assert agent.terminate() == 0
    finally:
        agent.kill()


def intervals(trace: Path) -> list[tuple[str, float, float]]:
    starts: dict[str, float] = {}
    out = []
    for line in trace.read_text().splitlines():
        what, kind, _iface, when = line.split()
        if what == "start":
            starts[kind] = float(when)
        else:
            out.append((kind, starts.pop(kind), float(when)))
    return out


def test_bandwidth_tests_never_overlap(tmp_path: Path, mosquitto: Mosquitto) -> None:
    trace = tmp_path / "trace"
    config = write_agent_config(tmp_path, mosquitto, enabled=("throughput", "ookla"))
    agent = AgentProcess(
        config, tmp_path / "agent.log", STANDIN_KINDS="throughput,ookla",
        STANDIN_INTERVAL_S="0.5", STANDIN_HEAVY_S="0.4", STANDIN_TRACE=str(trace),
    )  # fmt: skip
    try:
        agent.start()
        eventually(
            lambda: trace.exists() and {k for k, *_ in intervals(trace)} == {"throughput", "ookla"}
            and len(intervals(trace)) >= 12,
            timeout_s=60, message="not enough heavy runs",
        )  # fmt: skip
        assert agent.terminate() == 0
    finally:
        agent.kill()
    runs = sorted(intervals(trace), key=lambda r: r[1])
    for (k1, _s1, e1), (k2, s2, _e2) in itertools.pairwise(runs):
        assert s2 >= e1, f"{k2} started at {s2} while {k1} ran until {e1}"


def busy_loopback(stop: threading.Event) -> None:
    """~1 MB/s of UDP on lo, so that the gate sees cross-traffic there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    chunk = b"x" * 1000
    while not stop.wait(0.001):
        sock.sendto(chunk, sink.getsockname())
    sock.close()
    sink.close()


def test_busy_line_defers_then_skips_with_the_values(tmp_path: Path, mosquitto: Mosquitto) -> None:
    state = tmp_path / "agent-state"
    mosquitto.stop()  # no broker: results stay in the spool, where we read them
    config = write_agent_config(
        tmp_path, mosquitto, enabled=("throughput",),
        gate={"enabled": True, "max_cross_traffic_bytes_per_s": 20_000, "max_cpu_pct": 100.0,
              "sample_s": 0.2, "recheck_s": 0.5, "max_wait_s": 1.0},
    )  # fmt: skip
    with config.open("a") as f:
        f.write('[[interfaces]]\nname = "lo"\naccess = "fixed"\n')
    agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_KINDS="throughput",
                         STANDIN_INTERVAL_S="3")  # fmt: skip
    stop = threading.Event()
    noise = threading.Thread(target=busy_loopback, args=(stop,), daemon=True)
    noise.start()
    try:
        agent.start()
        eventually(lambda: spooled_results(state), timeout_s=30, message="no result")
        assert agent.terminate() == 0
    finally:
        stop.set()
        agent.kill()
        noise.join()
    first = spooled_results(state)[0]
    assert first.status == "skipped"
    assert first.reason is not None
    assert first.reason.startswith("line busy on lo: cross-traffic")
    assert first.detail is not None
    assert first.detail["cross_traffic_bytes_per_s"] > 20_000
    assert first.detail["checks"] == 3  # looked at 0, 0.5 and 1.0 s, then gave up
    assert first.interface == "lo"


def test_data_budget_is_respected_across_a_restart(tmp_path: Path, mosquitto: Mosquitto) -> None:
    state = tmp_path / "agent-state"
    mosquitto.stop()
    config = write_agent_config(
        tmp_path, mosquitto, enabled=("throughput",), budget={"reserve_mb": 10,
        "first_estimate_mb": 5},
    )  # fmt: skip
    with config.open("a") as f:
        f.write('[[interfaces]]\nname = "lo"\naccess = "mobile"\nmonthly_budget_mb = 100\n')
    # 90 MB of the 100 used this month: a 5 MB test would leave less than the 10 MB reserve.
    Budget(state, {"lo": 100 * MB}).charge("lo", 90 * MB)
    agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_KINDS="throughput",
                         STANDIN_INTERVAL_S="2")  # fmt: skip
    try:
        for round_ in (1, 2):  # the second start reads the ledger the first one kept
            agent.start()

            def spooled(n: int = round_) -> bool:
                return len(spooled_results(state)) >= n

            eventually(spooled, timeout_s=30, message="no result")
            assert agent.terminate() == 0
            status = statusfile.read(state)
            assert status["budgets"][0]["used_bytes"] >= 90 * MB
    finally:
        agent.kill()
    found = spooled_results(state)
    assert all(r.status == "skipped" for r in found), [r.reason for r in found]
    assert all("data budget of lo" in (r.reason or "") for r in found)
    assert found[0].detail is not None
    assert found[0].detail["budget_used_bytes"] >= 90 * MB


def status_cli(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probefleet.agent.cli", "status", "--config", str(config)],
        capture_output=True, text=True, timeout=30, check=False, cwd=ROOT,
    )  # fmt: skip


def test_status_shows_the_running_agent_and_says_when_it_stopped(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = write_agent_config(tmp_path, mosquitto)
    with config.open("a") as f:
        f.write('[[interfaces]]\nname = "lo"\naccess = "mobile"\nmonthly_budget_mb = 100\n')
    assert status_cli(config).returncode == 3  # never ran here
    agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="0.5")
    try:
        agent.start(wait_for="MQTT connected")
        eventually(lambda: "latency" in status_cli(config).stdout, timeout_s=20,
                   message="no last result shown")  # fmt: skip
        shown = status_cli(config)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        text = shown.stdout
        assert "connected since" in text
        assert "spool " in text
        assert "budget      lo " in text
        assert "clock       " in text
        assert agent.terminate() == 0
    finally:
        agent.kill()
    after = status_cli(config)
    assert after.returncode == 3
    assert "daemon      stopped" in after.stdout


@pytest.mark.skipif(kernel_says_synced() is True, reason="this kernel's clock is synchronised")
def test_no_measuring_until_the_clock_is_synchronised(tmp_path: Path, mosquitto: Mosquitto) -> None:
    state = tmp_path / "agent-state"
    config = write_agent_config(tmp_path, mosquitto, schedule={"require_synced_clock": True})
    agent = AgentProcess(config, tmp_path / "agent.log", STANDIN_INTERVAL_S="0.2")
    try:
        agent.start(wait_for="waiting for the clock")
        eventually(lambda: "MQTT connected" in agent.log_since_start(), timeout_s=20,
                   message="no connection while waiting")  # fmt: skip
        eventually(lambda: statusfile.read(state), timeout_s=10, message="no status.json")
        time.sleep(2)
        status = statusfile.read(state)
        assert status["measuring"] is False
        assert status["spool"]["next_seq"] == 1, "measured with an unsynchronised clock"
        assert agent.terminate() == 0
    finally:
        agent.kill()
