"""The agent's memory and idle CPU: `probe-agent run` as a process, against a bare interpreter.

Ours: `probe-agent run` with the test hook's fast stand-in measurements (latency, and
throughput + ookla taking the heavy-test lock and the budget check) on a 20 ms interval, so
that 10,000 scheduled cycles take a minute or two instead of weeks. Every cycle goes the
whole way: scheduler -> runner -> SQLite spool (fsync) -> paho -> Mosquitto -> a stand-in
collector that answers each result with a StoredAck -> spool row deleted. RSS is read from
/proc after start (first 200 cycles) and after 2,500 / 5,000 / 10,000 cycles: no growth is
the goal, <= 40 MB the budget. Idle CPU: the same agent on the sample config's intervals
with nothing due, for --idle-s seconds.

Reference: a bare `python3` that imports what the agent imports (paho, APScheduler,
msgspec, psutil, sqlite3) and holds one idle paho connection with its network thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from _report import header
from paho.mqtt.enums import CallbackAPIVersion
from probefleet.core import wire

from tests.agent.helpers import HOOK, write_agent_config
from tests.harness import Mosquitto, eventually

ROOT = Path(__file__).resolve().parents[1]
TOPICS = wire.Topics()
REFERENCE = """
import sys, time, sqlite3
import msgspec, psutil, apscheduler.schedulers.background, apscheduler.triggers.interval
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
c.connect(sys.argv[1], int(sys.argv[2]), keepalive=60)
c.loop_start()
print("ready", flush=True)
time.sleep(float(sys.argv[3]))
"""


def rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StandInCollector:
    """Acks every result at once: StoredAck(stored_through = highest seq seen)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(TOPICS.all_results(), qos=1)
        self.high = 0
        self.lock = threading.Lock()
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        seq = json.loads(msg.payload)["seq"]
        probe = json.loads(msg.payload)["probe_id"]
        with self.lock:
            self.high = max(self.high, seq)
            ack = wire.StoredAck(
                schema=1, probe_id=probe, stored_through_seq=self.high, at=wire.utc_now()
            )
        self.client.publish(TOPICS.channel(probe, "ack"), wire.encode(ack), qos=1)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def start_agent(config: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "probefleet.agent.cli", "run", "--config", str(config)],
            stdout=out,
            stderr=out,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        )


def cycles(state: Path) -> int:
    try:
        return int(json.loads((state / "status.json").read_text())["spool"]["next_seq"]) - 1
    except (OSError, ValueError, KeyError):
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--idle-s", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto", extra_conf=["max_queued_messages 0"]).start()
        collector = StandInCollector(broker)
        state = work / "agent-state"
        marks: dict[int, float] = {}
        try:
            config = write_agent_config(
                work, broker, enabled=("latency", "throughput", "ookla"), log={"level": "INFO"}
            )
            env = {
                "PROBEFLEET_AGENT_TEST_HOOK": HOOK,
                "STANDIN_KINDS": "latency,throughput,ookla",
                "STANDIN_INTERVAL_S": "0.02",
                "STANDIN_HEAVY_S": "0",
            }
            agent = start_agent(config, work / "agent.log", env)
            started = time.monotonic()
            try:
                for mark in (200, args.cycles // 4, args.cycles // 2, args.cycles):

                    def reached(m: int = mark) -> bool:
                        return agent.poll() is None and cycles(state) >= m

                    eventually(
                        reached,
                        timeout_s=1800,
                        interval_s=0.2,
                        message=f"agent stopped before {mark} cycles",
                    )
                    marks[mark] = rss_mb(agent.pid)
                busy_s = time.monotonic() - started
                busy_cpu = cpu_s(agent.pid)
                backlog = json.loads((state / "status.json").read_text())["spool"]["depth"]
            finally:
                agent.terminate()
                agent.wait(60)
            # Idle: the sample config's intervals, nothing due for minutes.
            idle_config = write_agent_config(work, broker, enabled=("latency",))
            idle = start_agent(idle_config, work / "agent-idle.log", {})
            ref = subprocess.Popen(
                [sys.executable, "-c", REFERENCE, broker.host, str(broker.port),
                 str(args.idle_s + 10)],
                stdout=subprocess.PIPE,
            )  # fmt: skip
            try:
                time.sleep(5)  # both settled (imports done, connected)
                idle_rss, ref_rss = rss_mb(idle.pid), rss_mb(ref.pid)
                idle0, ref0 = cpu_s(idle.pid), cpu_s(ref.pid)
                time.sleep(args.idle_s)
                idle_cpu = (cpu_s(idle.pid) - idle0) / args.idle_s * 100
                ref_cpu = (cpu_s(ref.pid) - ref0) / args.idle_s * 100
            finally:
                idle.terminate()
                idle.wait(60)
                ref.kill()
                ref.wait(10)
                if ref.stdout:
                    ref.stdout.close()
        finally:
            collector.stop()
            broker.stop()
    header()
    first = marks[200]
    for mark, rss in marks.items():
        print(
            f"{'RSS after ' + format(mark, ',') + ' cycles':<30} {rss:>14.1f} {ref_rss:>14.1f} "
            f"{rss / ref_rss:>7.2f}   MB  (ref: bare python + paho/apscheduler/msgspec/psutil; "
            f"growth since 200 cycles {rss - first:+.1f} MB)"
        )
    print(
        f"{'idle agent RSS':<30} {idle_rss:>14.1f} {ref_rss:>14.1f} {idle_rss / ref_rss:>7.2f}"
        f"   MB  (ref: same)"
    )
    ratio = f"{idle_cpu / ref_cpu:>7.2f}" if ref_cpu else f"{'n/a':>7}"
    print(
        f"{'idle CPU':<30} {idle_cpu:>14.3f} {ref_cpu:>14.3f} {ratio}   % of one core  "
        f"(ref: idle paho connection; over {args.idle_s:.0f} s)"
    )
    print(
        f"cycles: {args.cycles:,} in {busy_s:.0f} s ({args.cycles / busy_s:,.0f}/s, "
        f"{busy_cpu / args.cycles * 1000:.2f} ms CPU per cycle incl. fsync'd spool and "
        f"publish); spool depth at the end {backlog}"
    )
    goal = "met" if max(marks.values()) <= 40 else "MISSED"
    print(f"goal <= 40 MB RSS with no growth: {goal}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
