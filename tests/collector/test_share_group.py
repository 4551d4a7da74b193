"""Share groups: 2 and 3 `probe-collector run` processes on one stream, one of them killed -9
mid-stream and restarted, against probes that run the agent's own delivery (its spool,
`Delivery` and paho link, in this process: many probes, no measurement code). Each probe
produces an hour of results at the agent's default schedule (~90, 40 s apart in measured
time, published as fast as they come).

What must hold: every seq 1..N of every probe stored exactly once; every seq any StoredAck
names is in InfluxDB when the ack is seen (an ack for a seq not yet stored is what loses
results); the probes' spools end empty; no collector counts anything as lost.

The same must hold with a thief in the group (issue 17, attack 5): a client that joined the
collectors' share group and never stores what it takes. Mosquitto 2.0 cannot refuse that
SUBSCRIBE to a probe that knows the group's name (deploy/central/README.md, threat model);
what it takes is never acknowledged, so the probes publish it again until a collector has it.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from probefleet.agent.config import SpoolSection
from probefleet.agent.publisher import Publisher
from probefleet.agent.spool import Spool
from probefleet.collector.inventory import Enrichment
from probefleet.collector.points import parse, points_from
from probefleet.core import wire
from probefleet.core.mqtt import MqttSection

from tests.collector.helpers import (
    BASE_TIME,
    BROKER_CONF,
    encode,
    result,
    shared_collector,
    stopped_count,
    topic_of,
)
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PROBES = 12
PER_PROBE = 90  # an hour at the default schedule
SPACING = dt.timedelta(seconds=40)
KINDS = ("latency", "dns", "ipv6")


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


def _doc(probe: str, seq: int) -> dict[str, Any]:
    # One clock: uptime grows with measured_at (the collector checks they agree).
    return result(KINDS[seq % len(KINDS)], probe=probe, seq=seq,
                  measured_at=BASE_TIME + seq * SPACING,
                  uptime_s=100.0 + seq * SPACING.total_seconds())  # fmt: skip


def _points_per_result() -> dict[str, int]:
    """How many points one result of each kind gives (the collector's own rows)."""
    out = {}
    for kind in KINDS:
        doc = _doc("probe-x", len(KINDS) + KINDS.index(kind))
        parsed = parse(topic_of(doc), encode(doc), wire.Topics())
        out[kind] = len(points_from(parsed.result, parsed.probe, Enrichment()))
    return out


class SimProbe:
    """One probe: the agent's Spool and Publisher (Delivery inside), results appended to the
    spool as the runner would."""

    def __init__(
        self, broker: Mosquitto, probe: str, state_dir: Path, *, ack_timeout_s: float = 15.0
    ) -> None:
        self.probe = probe
        self.spool = Spool(state_dir, max_bytes=10**8)
        mqtt_cfg = MqttSection(host=broker.host, port=broker.port, tls=False, keepalive_s=10)
        spool_cfg = SpoolSection(window=20, ack_timeout_s=ack_timeout_s, retry_s=1.0)
        self.publisher = Publisher(
            probe, mqtt_cfg, spool_cfg, self.spool, boot_id=_doc(probe, 1)["boot_id"]
        )

    def measure(self) -> int:
        def make(seq: int) -> tuple[str, bytes]:
            doc = _doc(self.probe, seq)
            return topic_of(doc), encode(doc)

        seq = self.spool.append("latency", make)
        self.publisher.wake()
        return seq

    def depth(self) -> int:
        return self.spool.figures().depth


@dataclass
class AckWatch:
    """Every StoredAck the centre publishes, each checked against InfluxDB as it comes."""

    broker: Mosquitto
    target: InfluxTarget
    acks: int = 0
    unstored: list[tuple[str, int]] = field(default_factory=list)
    _queue: queue.Queue[wire.StoredAck | None] = field(default_factory=queue.Queue)

    def start(self) -> AckWatch:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="ack-watch",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.on_connect = lambda c, *_: c.subscribe(f"{wire.DEFAULT_TOPIC_ROOT}/+/ack", 1)
        self.client.on_message = lambda _c, _u, m: self._queue.put(
            wire.decode(bytes(m.payload), wire.StoredAck)
        )
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        self.checker = threading.Thread(target=self._check, daemon=True)
        self.checker.start()
        return self

    def _check(self) -> None:
        while (ack := self._queue.get()) is not None:
            self.acks += 1
            named = set(range(1, min(ack.stored_through_seq, PER_PROBE) + 1))
            for first, last in ack.also_stored:
                named.update(range(first, min(last, PER_PROBE) + 1))
            missing = named - set(stored_seqs(self.target, ack.probe_id))
            self.unstored.extend((ack.probe_id, s) for s in sorted(missing))

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self._queue.put(None)
        self.checker.join(timeout=30)


def stored_seqs(target: InfluxTarget, probe: str) -> list[int]:
    """One entry per point of ``probe``, over every measurement of the results."""
    out: list[int] = []
    for kind in KINDS:
        query = f'SELECT "seq" FROM "{kind}" WHERE "probe" = \'{probe}\''  # noqa: S608 - test
        for series in target.server.query(query, db=target.db):
            out.extend(int(row[1]) for row in series["values"])
    return out


class Thief:
    """A member of the collectors' share group that keeps what it is given: on the site's
    broker a probe's read ACL drops its share unseen; here it is counted and dropped."""

    def __init__(self, broker: Mosquitto) -> None:
        self.took = 0
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="thief",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        share = f"$share/collectors/{wire.DEFAULT_TOPIC_ROOT}/+/results/+"
        self.client.on_connect = lambda c, *_: c.subscribe(share, 1)
        self.client.on_message = lambda *_: self._take()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _take(self) -> None:
        self.took += 1

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.parametrize(
    ("collectors", "thief"), [(2, False), (3, False), (2, True)], ids=["2", "3", "2+thief"]
)
def test_a_share_group_stores_every_seq_once_and_acks_only_what_is_stored(
    collectors: int, thief: bool, tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    # Asked soon and given few attempts: a design that gives a gap up (moves the watermark
    # past it) would name the dead collector's queued share in its acks.
    policy = {"resend_grace_s": 1.0, "resend_interval_s": 1.0, "resend_max_attempts": 2}
    procs = [
        shared_collector(tmp_path, chr(ord("a") + i), broker, influx_db, sequences=policy,
                         log={"level": "INFO"})
        for i in range(collectors)
    ]  # fmt: skip
    watch = AckWatch(broker, influx_db).start()
    taker = Thief(broker) if thief else None
    # With a thief every result it took waits out an ack timeout: a shorter one keeps the
    # test short (the agent's default is 60 s).
    ack_timeout_s = 6.0 if thief else 15.0
    probes = [
        SimProbe(broker, f"probe-{i:02d}", tmp_path / f"p{i}", ack_timeout_s=ack_timeout_s)
        for i in range(PROBES)
    ]
    victim = procs[0]
    try:
        for proc in procs:
            proc.start()
        for p in probes:
            p.publisher.start()
        for i in range(PER_PROBE):
            for p in probes:
                p.measure()
            if i == PER_PROBE // 3:
                victim.kill()  # mid-stream: its share waits in its session
            if i == 2 * PER_PROBE // 3:
                time.sleep(6.0)  # down long enough for the others to ask for its share
                victim.start()  # same client id: its queue comes back
            time.sleep(0.05)
        eventually(
            lambda: all(p.depth() == 0 for p in probes),
            timeout_s=120,
            message=lambda: (
                "spools not emptied: " + str({p.probe: p.depth() for p in probes if p.depth()})
            ),
        )
    finally:
        for p in probes:
            p.publisher.stop(timeout_s=1.0)
        watch.stop()
        if taker is not None:
            taker.stop()
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is None:
                proc.terminate()
    per_result = _points_per_result()
    want: Counter[int] = Counter()
    for seq in range(1, PER_PROBE + 1):
        want[seq] = per_result[KINDS[seq % len(KINDS)]]
    produced = stored = doubled = lost = 0
    for p in probes:
        have = Counter(stored_seqs(influx_db, p.probe))
        produced += PER_PROBE
        stored += sum(1 for s in range(1, PER_PROBE + 1) if have[s])
        doubled += sum(1 for s in range(1, PER_PROBE + 1) if have[s] > want[s])
        lost += sum(1 for s in range(1, PER_PROBE + 1) if not have[s])
        assert have == want, (p.probe, {s: (have[s], want[s]) for s in want if have[s] != want[s]})
    logs = "".join(
        (tmp_path / chr(ord("a") + i) / "collector.log").read_text() for i in range(collectors)
    )
    figures = {
        "collectors": collectors,
        "produced": produced,
        "stored": stored,
        "doubled": doubled,
        "lost": lost,
        "acks_seen": watch.acks,
        "acked_unstored": len(watch.unstored),
        "seqs_lost": stopped_count(logs, "seqs_lost"),
        "seqs_settled": stopped_count(logs, "seqs_settled"),
        "duplicates": stopped_count(logs, "duplicates"),
        "thief_took": taker.took if taker is not None else 0,
    }
    print("share-group figures:", json.dumps(figures))
    assert watch.acks > PROBES
    assert watch.unstored == []
    assert "counted as lost" not in logs
    assert figures["seqs_lost"] == 0
    if taker is not None:  # the thief really was in the group, and it cost nothing
        assert taker.took > PROBES
    for i in range(collectors):  # every collector took part
        assert stopped_count(
            (tmp_path / chr(ord("a") + i) / "collector.log").read_text(), "received"
        )
