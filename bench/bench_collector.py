"""Collector throughput end to end (MQTT -> InfluxDB) and stored-latency, against a raw pipe.

Ours: `probe-collector run` as a process (manual acks, validation, enrichment, idempotent
points, fsynced state). Reference, same broker, same InfluxDB, same queued messages:
`mosquitto_sub` piped into a batched raw line-protocol writer (json.loads, one point per
result, no checks, no durability, 5,000 lines or 200 ms per POST).

Throughput: N results are queued on the broker for a persistent session while the consumer
is away; the clock runs from the moment the consumer may receive (for ours the broker is held
with SIGSTOP while the collectors start; for the reference it starts before mosquitto_sub)
until InfluxDB holds everything (``--probes``: until the StoredAcks name every result,
then InfluxDB is checked once: polling a count over 100,000s of series loaded InfluxDB
more than the collector did).
Context, same broker and messages: a bare paho consumer (MQTT v5, persistent session,
manual acks, nothing done with a message but acknowledge it), as paho ships and with the
collector's faster PUBLISH-properties decoding. That is the ceiling of any collector built
on paho on this machine, before it validates or stores anything.
Latency (ours only): results published at a steady rate while the collector runs; the
latency of a result is publish -> the probe receiving a StoredAck that covers it (the
moment the probe may delete it), p50 and p99. Goal: >= 5,000 results/s and >= half the
reference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from _report import header, line, spread
from paho.mqtt.enums import CallbackAPIVersion
from probefleet.core import wire

from tests.collector.helpers import encode, result, write_config
from tests.harness import InfluxDB, InfluxTarget, Mosquitto, eventually

KINDS = ["latency", "dns", "throughput", "service", "health", "ipv6", "ookla"]
POINTS = {"latency": 2, "dns": 3, "throughput": 1, "service": 2, "health": 3, "ipv6": 6,
          "ookla": 1}  # fmt: skip
TOPICS = wire.Topics()
ROOT = Path(__file__).resolve().parents[1]
# The reference consumer: reads one compact JSON result per line from mosquitto_sub.
RAW_WRITER = r"""
import datetime, json, os, select, sys, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
url, batch, started, pending = sys.argv[1], [], time.monotonic(), b""

def flush():
    global started
    if batch:
        request = urllib.request.Request(url, data="\n".join(batch).encode(), method="POST")
        opener.open(request, timeout=30).read()
        batch.clear()
    started = time.monotonic()

while True:
    ready, _, _ = select.select([0], [], [], 0.2)
    if ready:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for raw in lines:
            doc = json.loads(raw)
            when = datetime.datetime.fromisoformat(doc["measured_at"].replace("Z", "+00:00"))
            stamp = int(when.timestamp() * 1e6) * 1000
            batch.append(f"{doc['kind']},probe={doc['probe_id']} seq={doc['seq']}i {stamp}")
    if len(batch) >= 5000 or time.monotonic() - started > 0.2:
        flush()
flush()
"""


class Publisher:
    """A probe fleet in one paho client: QoS 1, waits for every PUBACK; records StoredAcks."""

    def __init__(self, broker: Mosquitto, probes: list[str]) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"bench-fleet-{os.getpid()}-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(1000)
        self.acked: set[int] = set()
        self.lock = threading.Lock()
        self.stored_at: dict[tuple[str, int], float] = {}
        self.ack_through: dict[str, int] = {}
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_ack
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        for probe in probes:
            self.client.subscribe(TOPICS.channel(probe, "ack"), qos=1)

    def _on_publish(self, *args: Any) -> None:
        with self.lock:
            self.acked.add(args[2])

    def _on_ack(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        ack: wire.StoredAck = wire.decode(bytes(msg.payload), wire.StoredAck)
        with self.lock:
            low = self.ack_through.get(ack.probe_id, 0)
            for seq in range(low + 1, ack.stored_through_seq + 1):
                self.stored_at.setdefault((ack.probe_id, seq), now)
            for first, last in ack.also_stored:
                for seq in range(first, last + 1):
                    self.stored_at.setdefault((ack.probe_id, seq), now)
            self.ack_through[ack.probe_id] = max(low, ack.stored_through_seq)

    def publish(self, topic: str, payload: bytes) -> int:
        return self.client.publish(topic, payload, qos=1).mid

    def wait(self, mids: list[int]) -> None:
        eventually(lambda: self.acked.issuperset(mids), timeout_s=300, message="PUBACKs")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class AckWatch:
    """When every queued result is durable, told by the collectors' StoredAcks (sent only
    after the write and the state commit): no count query loading InfluxDB while it
    works — over 100,000s of series that query cost InfluxDB more than our writes."""

    def __init__(self, broker: Mosquitto, msgs: list[tuple[str, bytes]]) -> None:
        self.waiting: dict[str, set[int]] = {}
        for _topic, payload in msgs:
            doc = wire.decode_result(payload)
            self.waiting.setdefault(doc.probe_id, set()).add(doc.seq)
        self.left = sum(len(s) for s in self.waiting.values())
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"bench-acks-{os.getpid()}-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_ack
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe(TOPICS.channel("+", "ack"), qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the StoredAck watch could not subscribe")

    def _on_ack(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ack: wire.StoredAck = wire.decode(bytes(msg.payload), wire.StoredAck)
        with self.lock:
            seqs = self.waiting.get(ack.probe_id)
            if not seqs:
                return
            ranges = [(1, ack.stored_through_seq), *ack.also_stored]
            covered = {s for s in seqs if any(a <= s <= b for a, b in ranges)}
            seqs -= covered
            self.left -= len(covered)
            if self.left == 0:
                self.done.set()

    def wait(self, timeout_s: float = 600) -> float:
        if not self.done.wait(timeout_s):
            raise RuntimeError(f"{self.left} results never acknowledged as stored")
        return time.monotonic()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def messages(
    n: int,
    probes: list[str],
    first_seq: int = 1,
    *,
    recent: bool = False,
    held_from: int | None = None,
) -> tuple[list[tuple[str, bytes]], int]:
    """``recent``: measured within the last few hours, so that alert rules evaluate them
    (older results are history to the alert engine). ``held_from``: each result's
    held_from_seq (the probe holds nothing older: no gap to ask for below it)."""
    out, points = [], 0
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=n // len(probes) + 3600)
    for i in range(n):
        probe = probes[i % len(probes)]
        seq = first_seq + i // len(probes)
        kind = KINDS[i % len(KINDS)]
        when = start + dt.timedelta(seconds=seq) if recent else None
        doc = result(kind, probe=probe, seq=seq, measured_at=when)
        if held_from is not None:
            doc["held_from_seq"] = held_from
        out.append((TOPICS.result(probe, kind), encode(doc)))
        points += POINTS[kind]
    return out, points


def queue_all(broker: Mosquitto, msgs: list[tuple[str, bytes]]) -> None:
    """Publish every message (QoS 1, each PUBACKed): queued for the sessions that are away."""
    publisher = Publisher(broker, [])
    publisher.wait([publisher.publish(t, p) for t, p in msgs])
    publisher.stop()


def total_points(target: InfluxTarget) -> int:
    names = ",".join(f'"{k}"' for k in KINDS)
    query = f'SELECT count("seq") FROM {names}'  # noqa: S608 - our own constant names
    series = target.server.query(query, db=target.db)
    return sum(int(s["values"][0][1]) for s in series)


def wait_until(predicate: Any, timeout_s: float = 600) -> float:
    eventually(predicate, timeout_s=timeout_s, interval_s=0.05, message="not all stored")
    return time.monotonic()


def run_ours(
    work: Path,
    broker: Mosquitto,
    target: InfluxTarget,
    msgs: list[tuple[str, bytes]],
    *,
    points: int,
    tag: str,
    alerts: bool = False,
    collectors: int = 1,
    profile: Path | None = None,
    by_acks: bool = False,
) -> float:
    """``collectors`` > 1: that many processes in one share group ($share), as *Scale-out*
    in collector/README.md runs them."""
    files = {"alerts": str(ROOT / "config/alerts.sample.toml")} if alerts else {}
    share = {"share_group": f"bench-{tag}"} if collectors > 1 else {}
    homes = []
    for i in range(collectors):
        home = work / f"collector-{i}"
        home.mkdir()
        config, _ = write_config(
            home, broker, target, client_id=f"bench-{tag}-{i}",
            mqtt={"receive_maximum": 10_000, **share}, log={"level": "INFO"},
            influxdb={"batch_max_latency_ms": 200}, files=files,
        )  # fmt: skip
        homes.append((config, home / "collector.log"))

    def start(config: Path, log_path: Path, marker: bytes) -> subprocess.Popen[bytes]:
        offset = log_path.stat().st_size if log_path.exists() else 0
        # The collector's main thread under cProfile (written when it stops).
        prof = [] if profile is None else ["-m", "cProfile", "-o", str(profile / f"{tag}.prof")]
        proc = subprocess.Popen(
            [sys.executable, *prof, "-m", "probefleet.collector.cli", "run", "--config",
             str(config)],
            stdout=log_path.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip

        def logged() -> bool:
            with log_path.open("rb") as f:
                f.seek(offset)
                return marker in f.read()

        eventually(logged, timeout_s=30, interval_s=0.01, message="collector not up")
        return proc

    def stop(procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)

    # Creates the persistent sessions.
    stop([start(*home, b"subscribed to") for home in homes])
    queue_all(broker, msgs)
    watch = AckWatch(broker, msgs) if by_acks else None
    # The broker is held (SIGSTOP) while the collectors start, so that they all begin
    # draining together when it goes on: the clock runs from there.
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        procs = [start(*home, b"collector starting") for home in homes]
        time.sleep(0.2)  # from "starting" to connecting: a few ms
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    began = time.monotonic()
    if watch is None:
        done = wait_until(lambda: total_points(target) >= points)
    else:
        done = watch.wait()
        watch.stop()
        wait_until(lambda: total_points(target) >= points, timeout_s=30)
    stop(procs)
    if profile is not None:
        for _config, log_path in homes:
            stopped = [ln for ln in log_path.read_text().splitlines() if "stopped:" in ln]
            print(f"{tag}: {stopped[-1] if stopped else 'no stop line'}", file=sys.stderr)
    return len(msgs) / (done - began)


# A bare paho consumer in its own process (like ours): drains the queued session, acks each
# message at once, prints the messages/s from its CONNACK to the last message.
PAHO_ALONE = r"""
import sys, threading, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
host, port, client_id, topic, n, fast = sys.argv[1:7]
if fast == "1":
    from probefleet.collector.mqtt import speed_up_publish_decoding
    assert speed_up_publish_decoding()
n, got, done, began = int(n), 0, threading.Event(), [0.0]
subscribed = threading.Event()
client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                     protocol=mqtt.MQTTv5, manual_ack=True)
def on_connect(c, _u, _f, _rc, _p):
    # The broker sends the session's queued messages right after CONNACK, before it answers
    # the SUBSCRIBE: the clock starts here.
    began[0] = time.monotonic()
    c.subscribe(topic, qos=1)
def on_subscribe(*_a):
    subscribed.set()
def on_message(c, _u, m):
    global got
    c.ack(m.mid, m.qos)
    got += 1
    if got >= n:
        done.set()
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
props = Properties(PacketTypes.CONNECT)
props.SessionExpiryInterval, props.ReceiveMaximum = 3600, 10_000
client.connect(host, int(port), clean_start=False, properties=props)
client.loop_start()
if not subscribed.wait(30):
    sys.exit("not subscribed")
if n and not done.wait(300):
    sys.exit(f"only {got} of {n} messages")
if n:
    print(n / (time.monotonic() - began[0]))
client.disconnect()
client.loop_stop()
"""


def run_paho_alone(
    broker: Mosquitto, msgs: list[tuple[str, bytes]], *, fast: bool, tag: str
) -> float:
    def consume(n: int) -> str:
        args = [broker.host, str(broker.port), f"alone-{tag}", TOPICS.all_results(), str(n),
                "1" if fast else "0"]  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", PAHO_ALONE, *args], check=False, capture_output=True, text=True,
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"the bare paho consumer failed: {done.stderr.strip()}")
        return done.stdout

    consume(0)  # creates the persistent session
    queue_all(broker, msgs)
    return float(consume(len(msgs)))


def run_reference(
    broker: Mosquitto, target: InfluxTarget, msgs: list[tuple[str, bytes]], tag: str
) -> float:
    sub = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5", "-q", "1",
           "-c", "-x", "3600", "-i", f"ref-{tag}", "-t", TOPICS.all_results(),
           "-F", "%p"]  # fmt: skip
    url = f"{target.server.url}/api/v2/write?bucket={target.db}&precision=ns"

    def start() -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
        consumer = subprocess.Popen(sub, stdout=subprocess.PIPE)
        writer = subprocess.Popen([sys.executable, "-c", RAW_WRITER, url], stdin=consumer.stdout)
        assert consumer.stdout is not None
        consumer.stdout.close()
        return consumer, writer

    consumer, writer = start()
    time.sleep(0.5)  # mosquitto_sub prints nothing on subscribe: give it time to connect
    consumer.terminate()
    consumer.wait(10)
    writer.wait(10)
    queue_all(broker, msgs)
    began = time.monotonic()
    consumer, writer = start()
    done = wait_until(lambda: total_points(target) >= len(msgs))
    consumer.terminate()
    consumer.wait(10)
    writer.wait(10)
    return len(msgs) / (done - began)


def latency(
    work: Path, broker: Mosquitto, target: InfluxTarget, rate: int, seconds: float
) -> list[float]:
    probes = [f"lat-{i:03d}" for i in range(50)]
    config, _ = write_config(work, broker, target, client_id="bench-latency", log={"level": "INFO"},
                             mqtt={"receive_maximum": 10_000})  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "probefleet.collector.cli", "run", "--config", str(config)],
        stdout=(work / "latency.log").open("ab"), stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    eventually(lambda: b"subscribed to" in (work / "latency.log").read_bytes(), timeout_s=30)
    publisher = Publisher(broker, probes)
    time.sleep(0.5)  # the ack subscriptions
    n = int(rate * seconds)
    msgs, _ = messages(n, probes)
    sent_at: dict[tuple[str, int], float] = {}
    start = time.monotonic()
    for i, (topic, payload) in enumerate(msgs):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        probe, seq = probes[i % len(probes)], 1 + i // len(probes)
        sent_at[(probe, seq)] = time.monotonic()
        publisher.publish(topic, payload)
    eventually(lambda: len(publisher.stored_at) >= n, timeout_s=60, message="StoredAcks")
    publisher.stop()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return sorted((publisher.stored_at[k] - t) * 1000 for k, t in sent_at.items())


def influx_lines(msgs: list[tuple[str, bytes]]) -> list[str]:
    """The lines ours writes for ``msgs`` (no inventory: every probe "unknown")."""
    from probefleet.collector.inventory import Enrichment
    from probefleet.collector.points import parse, points_from

    out: list[str] = []
    for topic, payload in msgs:
        parsed = parse(topic, payload, TOPICS)
        out.extend(p.line() for p in points_from(parsed.result, parsed.probe, Enrichment()))
    return out


def run_influx_alone(
    influx: InfluxDB, warm: list[tuple[str, bytes]], msgs: list[tuple[str, bytes]], tag: str
) -> float:
    """InfluxDB's own ceiling for these results: their points (series made before by the
    ``warm`` ones), written by a bare client in requests of 5,000 lines, one at a time."""
    from probefleet.collector.config import InfluxSection
    from probefleet.collector.writer import InfluxSink

    db = f"bench_alone_{tag}".replace("-", "_")
    influx.create_database(db)
    # The test InfluxDB has no authentication: any token does.
    sink = InfluxSink(InfluxSection(url=influx.url, bucket=db, token="x:y"))  # noqa: S106
    try:
        took = 0.0
        for lines in (influx_lines(warm), influx_lines(msgs)):  # the second one is timed
            began = time.monotonic()
            for i in range(0, len(lines), 5000):
                sink.write(lines[i : i + 5000])
            took = time.monotonic() - began
        return len(msgs) / took
    finally:
        sink.close()
        influx.drop_database(db)


def by_probes(work: Path, influx: InfluxDB, broker: Mosquitto, args: argparse.Namespace) -> None:
    """Ours and a bare paho consumer on the same ``--n`` results from N distinct probes,
    for each N of ``--probes``: throughput must follow results, not probes.

    A real fleet's series exist in InfluxDB long before: unless ``--cold``, the probes'
    series are made first (a warm-up run of ours), and the figure is a run of the next
    ``--n`` results (new seqs and times, the same series) by a collector that has never
    seen these probes (every boot new: the power cut case)."""
    counts = [int(n) for n in args.probes.split(",")]
    groups = [int(n) for n in args.shared.split(",") if int(n) > 1]
    rows: list[tuple[int, list[float], list[float], list[float], dict[int, list[float]], int]] = []
    for count in counts:
        probes = [f"probe-{i:05d}" for i in range(count)]
        warm, warm_points = messages(args.n, probes)
        first = args.n // count + 2
        msgs, points = messages(args.n, probes, first_seq=first, held_from=first)
        ours: list[float] = []
        paho: list[float] = []
        alone: list[float] = []
        shared: dict[int, list[float]] = {g: [] for g in groups}
        for r in range(args.repeat):
            tag = f"p{count}-{r}"
            paho.append(run_paho_alone(broker, msgs, fast=False, tag=tag))
            alone.append(run_influx_alone(influx, warm, msgs, tag))
            for collectors in [1, *groups]:
                db = f"bench_{tag}_{collectors}".replace("-", "_")
                influx.create_database(db)
                target = InfluxTarget(influx, db)
                base = 0
                if not args.cold:
                    warm_dir = work / f"{tag}-{collectors}-warm"
                    warm_dir.mkdir()
                    run_ours(warm_dir, broker, target, warm, points=warm_points,
                             tag=f"{tag}-{collectors}-warm")  # fmt: skip
                    base = warm_points
                run_dir = work / f"{tag}-{collectors}"
                run_dir.mkdir()
                rate = run_ours(run_dir, broker, target, msgs, points=base + points,
                                tag=f"{tag}-{collectors}", alerts=args.alerts,
                                collectors=collectors, profile=args.profile,
                                by_acks=True)  # fmt: skip
                (ours if collectors == 1 else shared[collectors]).append(rate)
                influx.drop_database(db)
        rows.append((count, ours, paho, alone, shared, points))
    header()
    state = "new series (--cold)" if args.cold else "series made before, boots new"
    for count, ours, paho, alone, shared, points in rows:
        line(
            f"{count:,} distinct probes",
            spread(ours),
            spread(paho),
            "results/s",
            f"a bare paho consumer that only acks (as shipped), same {args.n:,} results; "
            f"{state}; {points / args.n:.1f} points each for ours",
        )
        line(
            f"{count:,} distinct probes",
            spread(ours),
            spread(alone),
            "results/s",
            "InfluxDB alone: the same points by a bare client, 5,000 a request, one at a "
            "time (series made before): the ceiling the store sets",
        )
        for n, rates in shared.items():
            line(
                f"  {n} collectors, $share",
                spread(rates),
                spread(paho),
                "results/s",
                f"the same reference; ours as {n} processes in one share group on this host "
                f"(x{spread(rates)[0] / spread(ours)[0]:.2f} one collector's rate)",
            )
    fewest = spread(rows[0][1])[0]
    for count, ours, *_rest in rows[1:]:
        print(f"{count:,} probes vs {counts[0]:,}: x{spread(ours)[0] / fewest:.2f} ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="results per throughput run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000, help="results/s in the latency run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency run")
    parser.add_argument(
        "--shared",
        default="2,3",
        help="also run ours as this many collectors in one share group, comma-separated "
        "(e.g. 2,3; 0: skip); printed beside one collector",
    )
    parser.add_argument(
        "--probes",
        default="",
        help="distinct probes, comma-separated (e.g. 100,3300,10000): for each, ours beside "
        "a bare paho consumer on the same messages (intake cost per probe); skips the rest",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="with --probes: no warm-up, every point makes a new series in InfluxDB",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="with --probes: run ours under cProfile, one <tag>.prof per run in this folder",
    )
    parser.add_argument(
        "--alerts",
        action="store_true",
        help="ours with the sample alert rules on, on results measured in the last hours",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        work = Path(tmp)
        influx = InfluxDB(work / "influxdb").start()
        broker = Mosquitto(work / "mosquitto", extra_conf=["max_queued_messages 0"]).start()
        try:
            if args.probes:
                by_probes(work, influx, broker, args)
                return
            probes = [f"probe-{i:03d}" for i in range(100)]
            msgs, points = messages(args.n, probes, recent=args.alerts)
            ours: list[float] = []
            ref: list[float] = []
            shipped: list[float] = []
            faster: list[float] = []
            group_sizes = [int(n) for n in args.shared.split(",") if int(n) > 1]
            shared: dict[int, list[float]] = {n: [] for n in group_sizes}
            for r in range(args.repeat):
                shipped.append(run_paho_alone(broker, msgs, fast=False, tag=f"shipped-{r}"))
                faster.append(run_paho_alone(broker, msgs, fast=True, tag=f"fast-{r}"))
                runs = [("ours", ours, 1), ("ref", ref, 0)]
                runs.extend((f"shared{n}", shared[n], n) for n in group_sizes)
                for name, results, collectors in runs:
                    db = f"bench_{name}_{r}"
                    influx.create_database(db)
                    target = InfluxTarget(influx, db)
                    if collectors:
                        run_dir = work / f"{name}-{r}"
                        run_dir.mkdir()
                        results.append(
                            run_ours(
                                run_dir,
                                broker,
                                target,
                                msgs,
                                points=points,
                                tag=f"{name}-{r}",
                                alerts=args.alerts,
                                collectors=collectors,
                            )
                        )
                    else:
                        results.append(run_reference(broker, target, msgs, str(r)))
                    influx.drop_database(db)
            header()
            ref_stats = spread(ref)
            line(
                "collector end to end",
                spread(ours),
                ref_stats,
                "results/s",
                f"mosquitto_sub | raw batched writer; {args.n} results, "
                f"{'alert rules on, ' if args.alerts else ''}"
                f"{points / args.n:.1f} points each for ours, 1 for the ref",
            )
            per_result = points / args.n
            line(
                "collector end to end",
                spread([r * per_result for r in ours]),
                ref_stats,
                "points/s",
                "the same runs counted in InfluxDB points",
            )  # fmt: skip
            for n, rates in shared.items():
                line(
                    f"{n} collectors, $share",
                    spread(rates),
                    ref_stats,
                    "results/s",
                    f"the same reference; ours as {n} processes in one share group "
                    f"(x{spread(rates)[0] / spread(ours)[0]:.2f} one collector's rate)",
                )
            for label, rates in (("paho intake alone", shipped),
                                 ("paho alone, our decoding", faster)):  # fmt: skip
                line(
                    label,
                    spread(rates),
                    ref_stats,
                    "results/s",
                    "the same reference; a bare paho consumer that only acks: the ceiling "
                    "of a paho-based collector",
                )
            influx.create_database("bench_latency")
            lat_dir = work / "latency"
            lat_dir.mkdir()
            lat = latency(
                lat_dir, broker, InfluxTarget(influx, "bench_latency"), args.rate, args.seconds
            )
            p50 = lat[len(lat) // 2]
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(
                f"stored latency at {args.rate}/s for {args.seconds:.0f} s (publish -> StoredAck): "
                f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lat[-1]:.0f} ms over {len(lat)} results"
            )
        finally:
            broker.stop()
            influx.stop()


if __name__ == "__main__":
    main()
