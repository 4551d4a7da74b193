"""A fleet at scale: N simulated probes against real Mosquitto, `probe-collector run`, InfluxDB.

    .venv/bin/python bench/bench_fleet.py                          # 1,000 probes, ~5 min
    .venv/bin/python bench/bench_fleet.py --probes 3300
    .venv/bin/python bench/bench_fleet.py --probes 10000 --outage-results 900000 --outage-speed 4

Every probe is its own MQTT connection (bench/_fleet_probes.py, asyncio, spread over
--workers processes) with its Last Will (retained "offline"), a retained "online" status and
the agent's sample schedule (config/agent.sample.toml through the agent's own loader: 90
results an hour), time compressed by --speed; results from tests/collector/helpers.py.
The broker's queue bound is deploy/central/broker_limits.py's for this fleet and outage.
The collector's presence.offline_after_s is compressed like the schedule (900 s / speed),
so "silent" means what it means at a real site.

Phases, in one run:
1. reference: no collector yet; a bare paho consumer (MQTT v5, manual acks, acks at once,
   nothing else) takes the fleet's results while the fleet publishes as fast as this harness
   can: the harness's own ceiling and paho's, beside which the collector's figure is read;
2. real time (--realtime-s at 1x): StoredAck latency p50/p99 (PUBLISH -> the probe sees the
   StoredAck covering it), the figure the issue's "< 2 s" is about;
3. sustained (--duration at --speed): results/s stored (StoredAcks seen by the probes) vs
   offered, latency, backlog left, collector RSS;
4. outage: the collector is stopped (SIGTERM, timed) while the fleet publishes
   --outage-results at --outage-speed, then restarted: the drain time (until every result
   published before the restart has its StoredAck) with the live fleet still publishing.
Presence throughout: the `presence` points the collector writes (metrics every 10 s), counted
per interval where a probe that is connected and publishing is not "online".
Exit status 1 only if something could not be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from _report import header, line, machine
from probefleet.agent.config import load_config as load_agent_config
from probefleet.agent.scheduler import job_specs
from probefleet.collector.config import InfluxSection, MqttSection, SequencesSection
from probefleet.core import wire

from tests.collector.helpers import write_config
from tests.harness import InfluxDB, InfluxTarget, Mosquitto, eventually

ROOT = Path(__file__).resolve().parents[1]
PROBES_WORKER = Path(__file__).resolve().parent / "_fleet_probes.py"
TOPICS = wire.Topics()
METRICS_INTERVAL_S = 10.0
OFFLINE_AFTER_S = 900.0  # the collector's default presence.offline_after_s

BARE_CONSUMER = r"""
import sys, threading, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
host, port, topic, client_id, expect, expiry = sys.argv[1:7]
expect, state, done = int(expect), {"n": 0, "first": 0.0, "last": 0.0}, threading.Event()
def on_message(c, _u, m):
    c.ack(m.mid, m.qos)
    now = time.monotonic()
    if not state["n"]:
        state["first"] = now
    state["n"] += 1
    state["last"] = now
    if expect and state["n"] >= expect:
        done.set()
client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                     protocol=mqtt.MQTTv5, manual_ack=True)
client.on_message = on_message
client.on_subscribe = lambda *_a: print("ready", flush=True)
client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
props = Properties(PacketTypes.CONNECT)
props.ReceiveMaximum, props.SessionExpiryInterval = 10_000, int(expiry)
client.connect(host, int(port), clean_start=False, properties=props)
client.loop_start()
threading.Thread(target=lambda: (sys.stdin.readline(), done.set()), daemon=True).start()
while not done.wait(0.5):  # or 3 s without a message: the broker dropped the rest
    if expect and state["n"] and time.monotonic() - state["last"] > 3:
        break
client.disconnect()
client.loop_stop()
print(f'{state["n"]} {state["last"] - state["first"]}', flush=True)
"""


class BareConsumer:
    """A bare paho consumer process (session ``client_id``, kept ``expiry_s`` after it goes):
    acks, counts; ``expect`` > 0: until it had that many."""

    def __init__(
        self, broker: Mosquitto, client_id: str, expect: int = 0, expiry_s: int = 3600
    ) -> None:
        self.expect = expect
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BARE_CONSUMER, broker.host, str(broker.port),
             TOPICS.all_results(), client_id, str(expect), str(expiry_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        # A resumed session's queue comes before the SUBACK: only a fresh one waits for it.
        if not expect and self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the bare consumer did not subscribe")

    def finish(self, timeout_s: float = 600) -> tuple[int, float]:
        """Stop it (or wait until it had ``expect``): (messages, seconds first -> last)."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if not self.expect:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
        out = ["ready"]
        while out == ["ready"]:
            out = self.proc.stdout.readline().split()
        if len(out) != 2:
            raise RuntimeError(f"the bare consumer failed: {out}")
        self.proc.wait(timeout_s)
        return int(out[0]), float(out[1])


def agent_schedule() -> list[tuple[str, float]]:
    """(kind, interval_s) of every job the sample config runs, by the agent's scheduler."""
    cfg = load_agent_config(
        ROOT / "config" / "agent.sample.toml", env={"PROBEFLEET_MQTT_PASSWORD": "x"}
    )
    return [(spec.kind, spec.interval_s) for spec in job_specs(cfg) if not spec.cron]


def broker_queue_limits(probes: int, outage_h: float, per_probe_h: float) -> list[str]:
    import importlib.util

    path = ROOT / "deploy" / "central" / "broker_limits.py"
    spec = importlib.util.spec_from_file_location("broker_limits", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["broker_limits"] = module
    spec.loader.exec_module(module)
    limits = module.compute(probes, max(outage_h, 0.1), per_probe_h)
    return [
        f"max_queued_messages {limits.max_queued_messages}",
        f"max_queued_bytes {limits.max_queued_bytes}",
    ]


class Workers:
    """The simulated fleet: --workers processes of bench/_fleet_probes.py."""

    def __init__(self, broker: Mosquitto, probes: int, workers: int, schedule: list[Any]) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.procs: list[subprocess.Popen[str]] = []
        share = -(-probes // workers)
        for w in range(workers):
            first, last = w * share, min(probes, (w + 1) * share)
            if first >= last:
                break
            spec = {"host": broker.host, "port": broker.port, "first": first, "last": last,
                    "schedule": schedule, "speed": 0}  # fmt: skip
            proc = subprocess.Popen(
                [sys.executable, str(PROBES_WORKER), json.dumps(spec)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(w, proc), daemon=True).start()
        self._stats: dict[int, queue.Queue[dict[str, Any]]] = {
            w: queue.Queue() for w in range(len(self.procs))
        }
        self.wait_event("connected", timeout_s=600)

    def _read(self, w: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            event = json.loads(raw)
            event["worker"] = w
            if event["event"] == "stats":
                self._stats[w].put(event)
            else:
                self.events.put(event)
        self.events.put({"event": "exited", "worker": w})

    def wait_event(self, name: str, timeout_s: float) -> None:
        """Until every worker reported ``name``."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(seen) < len(self.procs):
            event = self.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            if event["event"] == "exited":
                raise RuntimeError(f"fleet worker {event['worker']} exited")
            if event["event"] == name:
                seen.add(event["worker"])

    def send(self, **cmd: Any) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(cmd) + "\n")
            proc.stdin.flush()

    def stats(self) -> dict[str, Any]:
        self.send(cmd="stats")
        total: dict[str, Any] = {"latencies_ms": [], "errors": []}
        for w in range(len(self.procs)):
            got = self._stats[w].get(timeout=60)
            for key, value in got.items():
                if isinstance(value, list):
                    total[key].extend(value)
                elif isinstance(value, int):
                    total[key] = total.get(key, 0) + value
        total["acked"] = total["published"] - total["unacked"]
        return total

    def burst(self, results: int, speed: float, timeout_s: float) -> None:
        """Every worker publishes its share of ``results`` at ``speed``, then goes back."""
        self.send(cmd="burst", results=-(-results // len(self.procs)), speed=speed)
        self.wait_event("burst_done", timeout_s)

    def stop(self) -> None:
        self.send(cmd="quit")
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass
class Collector:
    """`probe-collector run` as a process, its RSS sampled every 0.5 s."""

    config: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    rss: list[tuple[float, int]] = field(default_factory=list)
    _sampling: threading.Event = field(default_factory=threading.Event)

    def start(self, timeout_s: float = 120) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "probefleet.collector.cli", "run", "--config", str(self.config)],
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited:\n{self.log_tail()}")
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return b"subscribed to" in f.read()

        eventually(up, timeout_s=timeout_s, interval_s=0.05, message="collector not up")
        self._sampling = threading.Event()
        threading.Thread(
            target=self._sample, args=(self.proc.pid, self._sampling), daemon=True
        ).start()

    def _sample(self, pid: int, stop: threading.Event) -> None:
        try:
            proc = psutil.Process(pid)
            while not stop.wait(0.5):
                self.rss.append((time.monotonic(), proc.memory_info().rss))
        except psutil.Error:
            return

    def stop(self) -> float:
        """SIGTERM; the seconds until it exited."""
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._sampling.set()
        return time.monotonic() - began

    def rss_mb(self, since: float, until: float | None = None) -> tuple[float, float]:
        """(first, max) RSS in MB sampled in [since, until]."""
        picked = [r for t, r in self.rss if t >= since and (until is None or t <= until)]
        if not picked:
            return (0.0, 0.0)
        return picked[0] / 1e6, max(picked) / 1e6

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def not_online(target: InfluxTarget, since_ns: int, until_ns: int | None = None) -> tuple[int, int]:
    """(the most probes of the fleet not "online" in one presence interval, intervals seen)."""
    where = f"time >= {since_ns}" + (f" AND time <= {until_ns}" if until_ns else "")
    where += " AND probe =~ /^fleet-/"
    bad = target.server.query(
        f'SELECT count("online_01") FROM presence WHERE {where} AND "state" != \'online\' '  # noqa: S608
        "GROUP BY time(1s) fill(none)",
        db=target.db,
    )
    every = target.server.query(
        f'SELECT count("online_01") FROM presence WHERE {where} GROUP BY time(1s) fill(none)',  # noqa: S608
        db=target.db,
    )
    worst = max((int(v[1]) for s in bad for v in s["values"]), default=0)
    intervals = sum(len(s["values"]) for s in every)
    return worst, intervals


def now_ns() -> int:
    return time.time_ns()


def run(args: argparse.Namespace, work: Path) -> int:
    schedule = agent_schedule()
    per_probe_h = sum(3600 / interval for _kind, interval in schedule)
    fleet_per_s = args.probes * per_probe_h / 3600
    outage_results = args.outage_results or int(args.probes * per_probe_h / 4)
    print(f"machine: {machine()}")
    print(f"fleet: {args.probes:,} probes x {per_probe_h:g} results/h = {fleet_per_s:,.1f}/s at "
          f"1x; --speed {args.speed:g} -> {fleet_per_s * args.speed:,.0f}/s; "
          f"{len(schedule)} jobs each ({', '.join(k for k, _ in schedule)})")  # fmt: skip
    influx = InfluxDB(work / "influxdb").start()
    # The queue must hold the outage and what is still behind from the sustained phase.
    behind = args.duration * fleet_per_s * args.speed
    outage_h = (outage_results + behind) / (args.probes * per_probe_h)
    limits = broker_queue_limits(args.probes, outage_h * 1.5, per_probe_h)
    broker = Mosquitto(work / "mosquitto", extra_conf=limits).start()
    workers: Workers | None = None
    collector: Collector | None = None
    try:
        influx.create_database("bench")
        target = InfluxTarget(influx, "bench")
        t0 = time.monotonic()
        workers = Workers(broker, args.probes, args.workers, schedule)
        print(f"connected {args.probes:,} probes in {time.monotonic() - t0:.1f} s "
              f"({len(workers.procs)} worker processes); broker: {', '.join(limits)}")  # fmt: skip

        # 1. reference: a bare paho consumer, live (the fleet as fast as the harness goes),
        # then draining a queued backlog (its session away while the fleet publishes).
        bare = BareConsumer(broker, "bare-live")
        before = workers.stats()
        began = time.monotonic()
        workers.send(cmd="speed", value=100_000)
        time.sleep(args.ref_s)
        workers.send(cmd="speed", value=0)
        after = workers.stats()
        harness_rate = (after["pubacked"] - before["pubacked"]) / (time.monotonic() - began)
        time.sleep(1.0)
        n_bare, span = bare.finish()
        bare_rate = n_bare / max(span, 1e-6)
        backlog = min(int(args.ref_s * harness_rate), int(limits[0].split()[1]) * 9 // 10)
        workers.burst(backlog, 100_000, timeout_s=600)
        time.sleep(1.0)
        drain_bare = BareConsumer(broker, "bare-live", expect=backlog, expiry_s=0)
        n_drain, span = drain_bare.finish()
        bare_drain_rate = n_drain / max(span, 1e-6)
        workers.send(cmd="forget")  # those were never stored: nobody will StoredAck them

        # 2.-3. the collector, at real time then at --speed.
        home = work / "collector"
        home.mkdir()

        def configure(speed: float) -> Path:
            # A site's collector.toml: the defaults (write_config's are the tests' short ones),
            # the sample alert rules; presence compressed like the schedule.
            mqtt, influx_cfg, seqs = MqttSection(), InfluxSection(), SequencesSection()
            config, _ = write_config(
                home, broker, target, client_id="bench-fleet", inventory="# none\n",
                mqtt={"receive_maximum": mqtt.receive_maximum, "keepalive_s": mqtt.keepalive_s},
                log={"level": "INFO"},
                influxdb={"batch_max_latency_ms": influx_cfg.batch_max_latency_ms,
                          "spool_after_s": influx_cfg.spool_after_s},
                sequences={"resend_grace_s": seqs.resend_grace_s,
                           "resend_interval_s": seqs.resend_interval_s},
                presence={"offline_after_s": max(10.0, OFFLINE_AFTER_S / speed)},
                metrics={"interval_s": METRICS_INTERVAL_S},
                files={"alerts": str(ROOT / "config" / "alerts.sample.toml")},
            )  # fmt: skip
            return config

        collector = Collector(configure(args.speed), home / "collector.log")
        collector.start()
        workers.send(cmd="speed", value=1)
        start_ns = now_ns()
        time.sleep(args.realtime_s)
        realtime = workers.stats()
        rt_lat = realtime["latencies_ms"]

        workers.send(cmd="speed", value=args.speed)
        sustained_began = time.monotonic()
        first = workers.stats()
        time.sleep(args.duration)
        last = workers.stats()
        window = time.monotonic() - sustained_began
        stored_rate = (last["acked"] - first["acked"]) / window
        offered_rate = (last["published"] - first["published"]) / window
        rss_first, rss_max = collector.rss_mb(sustained_began - args.realtime_s)
        live_bad, live_intervals = not_online(target, start_ns + int(2 * METRICS_INTERVAL_S * 1e9))

        # 4. outage: stopped, the fleet publishes, restarted, drained.
        workers.send(cmd="speed", value=args.outage_speed)
        shutdown_s = collector.stop()
        outage_began = time.monotonic()
        workers.burst(outage_results, args.outage_speed, timeout_s=3600)
        outage_s = time.monotonic() - outage_began
        workers.send(cmd="mark")
        queued = workers.stats()
        collector.config = configure(args.outage_speed)
        restart_ns = now_ns()
        restart = time.monotonic()
        collector.start(timeout_s=300)
        up_s = time.monotonic() - restart
        drained_s: float | None = None
        deadline = restart + args.drain_timeout
        left = queued["unacked_before_mark"]
        at_restart = progress = workers.stats()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            progress = workers.stats()
            left = progress["unacked_before_mark"]
            if left == 0:
                drained_s = time.monotonic() - restart
                break
        # From the moment it subscribed: its start-up is in up_s, not in its capacity.
        drain_rate = (progress["acked"] - at_restart["acked"]) / (time.monotonic() - restart - up_s)
        drain_end_ns = now_ns()
        time.sleep(METRICS_INTERVAL_S * 1.5)  # the last presence interval of the drain
        drain_bad, drain_intervals = not_online(target, restart_ns, drain_end_ns)
        _, drain_rss_max = collector.rss_mb(restart)
        final = workers.stats()
        final_shutdown = collector.stop()
    except Exception:
        if collector is not None and collector.proc is not None:
            print(collector.log_tail(), file=sys.stderr)
        raise
    finally:
        if workers is not None:
            workers.stop()
        if collector is not None and collector.proc is not None and collector.proc.poll() is None:
            collector.proc.kill()
        broker.stop()
        influx.stop()
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for log in (work / "collector" / "collector.log", broker.log_path):
                if log.exists():
                    shutil.copyfile(log, args.keep / log.name)

    print()
    header()
    line("collector drain (capacity)", (drain_rate,) * 3, (bare_drain_rate,) * 3, "results/s",
         "a bare paho consumer that only acks, draining a queued backlog of the same fleet; "
         "ours: StoredAcks/s during the drain, live load included")  # fmt: skip
    line("fleet intake, live", (stored_rate,) * 3, (bare_rate,) * 3, "results/s",
         f"the bare consumer, live, the fleet at the harness's ceiling; ours at {args.speed:g}x "
         f"(offered {offered_rate:,.0f}/s)")  # fmt: skip
    line("harness ceiling (sent)", (harness_rate,) * 3, (bare_rate,) * 3, "results/s",
         "the bare consumer, live: the harness must outrun the collector")  # fmt: skip
    print()
    print(f"{args.probes:,} probes, run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    rows = [
        ("sustained results/s stored", f"{stored_rate:,.0f} of {offered_rate:,.0f} offered "
         f"({args.speed:g}x, {window:.0f} s); {last['unacked']:,} without StoredAck at the end",
         ">= 4,000/s at 10,000 probes (16x)"),
        ("  capacity vs bare paho", f"drain x{drain_rate / bare_drain_rate:.2f}: "
         f"{drain_rate:,.0f}/s vs {bare_drain_rate:,.0f}/s", ">= 0.5x"),
        ("ack latency, real time", f"p50 {percentile(rt_lat, 0.5) / 1000:.2f} s, p99 "
         f"{percentile(rt_lat, 0.99) / 1000:.2f} s ({len(rt_lat):,} results, 1x)", "p99 < 2 s"),
        (f"ack latency, {args.speed:g}x", f"p50 {percentile(last['latencies_ms'], 0.5) / 1000:.2f}"
         f" s, p99 {percentile(last['latencies_ms'], 0.99) / 1000:.2f} s", ""),
        ("collector RSS, live", f"{rss_first:.0f} -> max {rss_max:.0f} MB", "< 300 MB"),
        ("wrongly silent, live", f"{live_bad:,} probes at worst ({live_intervals:,} presence "
         "intervals)" if live_intervals else "not measured: no presence interval", "0"),
        ("shutdown (SIGTERM)", f"{shutdown_s:.1f} s with the live load; {final_shutdown:.1f} s "
         "at the end", "< 10 s"),
        ("outage", f"{outage_results:,} results in {outage_s:.0f} s at {args.outage_speed:g}x; "
         f"{queued['unacked_before_mark']:,} awaiting StoredAck at the restart", ""),
        ("drain after restart", (f"{drained_s:.0f} s" if drained_s is not None else
         f"NOT drained in {args.drain_timeout:.0f} s ({left:,} left)") +
         f" (up in {up_s:.1f} s; live load {fleet_per_s * args.outage_speed:,.0f}/s)",
         "< 10 min for 900,000 at 10,000 probes"),
        ("wrongly silent, drain", f"{drain_bad:,} probes at worst ({drain_intervals:,} presence "
         "intervals)" if drain_intervals else "not measured: no presence interval in the drain",
         "0"),
        ("collector RSS, drain", f"max {drain_rss_max:.0f} MB", "< 300 MB"),
        ("fleet", f"{final['published']:,} published, {final['stored_acks']:,} StoredAck "
         f"messages received, {final['resent']:,} results re-sent on ResendRequest, "
         f"{final['disconnects']:,} disconnects"
         + (f", errors: {final['errors']}" if final["errors"] else ""), ""),
    ]  # fmt: skip
    for name, value, goal in rows:
        print(f"  {name:<28} {value}" + (f"   [target: {goal}]" if goal else ""))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=16.0, help="time compression, live")
    parser.add_argument("--workers", type=int, default=2, help="fleet processes")
    parser.add_argument("--ref-s", type=float, default=10.0, help="length of the reference")
    parser.add_argument("--realtime-s", type=float, default=20.0, help="the 1x latency phase")
    parser.add_argument("--duration", type=float, default=60.0, help="the sustained phase, s")
    parser.add_argument(
        "--outage-results",
        type=int,
        default=0,
        help="published while the collector is away (default: a simulated 15 min of the "
        "fleet; 900000 = an hour of 10,000 probes)",
    )
    parser.add_argument(
        "--outage-speed",
        type=float,
        default=0.0,
        help="time compression during the outage and the drain (default: --speed)",
    )
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--keep", type=Path, help="copy the collector's and broker's logs here")
    args = parser.parse_args()
    args.outage_speed = args.outage_speed or args.speed
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        try:
            return run(args, Path(tmp))
        except Exception as exc:  # could not measure: say why
            print(f"bench_fleet: could not measure: {exc!r}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
