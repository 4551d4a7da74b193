"""Presence and alerts while the collector is behind: real Mosquitto, InfluxDB and the real
``probe-collector run`` process, stopped while the fleet's results queue in its session."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.collector.helpers import (
    BROKER_CONF,
    TOPICS,
    AgentSession,
    CollectorProcess,
    count,
    encode,
    result,
    status_payload,
    topic_of,
    write_config,
)
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PROBES = [f"backlog-{i:03d}" for i in range(200)]
RESULTS_EACH = 20  # queued per probe while the collector is away, in rounds
# Probes back from a long outage of their own deliver their spools at once: queued first,
# they keep the fleet's results (and, but for its lag, the fleet's presence) waiting.
CHATTY = [f"backlog-spool-{i}" for i in range(5)]
SPOOLED_EACH = 2000
WILL = "backlog-will"
PER_RESULT = 2  # points: the latency golden measures two targets
OFFLINE_AFTER_S = 10.0
OUTAGE_S = OFFLINE_AFTER_S + 4  # every probe's last sign of life older than offline_after
ALERTS = """
[rules.probe_offline]
measurement = "presence"
field = "online_01"
op = "below"
threshold = 1.0
count = 1
clear_count = 1
for_s = 0.0
severity = "critical"
group_by = ["probe"]

[rules.collector_lag]
measurement = "collector"
field = "lag_s"
op = "above"
threshold = 5.0
count = 1
clear_count = 1
hysteresis_pct = 50.0
for_s = 0.0
group_by = ["collector"]

[notify.mqtt]
enabled = false
"""


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


class Publisher:
    """One MQTT client publishing for many probes (the broker is anonymous here)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="backlog-publisher",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1, retain=retain)

    def results(self, docs: list[dict[str, Any]]) -> None:
        # In chunks: paho's packet ids wrap at 65,535, and one still in flight blocks its
        # number (ERR_QUEUE_SIZE).
        for start in range(0, len(docs), 20_000):
            infos = [self.publish(topic_of(d), encode(d)) for d in docs[start : start + 20_000]]
            for info in infos:
                info.wait_for_publish(60)

    def trickle(self, first_seq: int, stop: threading.Event, every_s: float = 2.0) -> list[int]:
        """The fleet going on while the collector catches up: a result per probe every
        ``every_s``, from a thread, until ``stop``; returns the list of rounds it sent."""
        rounds: list[int] = []

        def run() -> None:
            seq = first_seq
            while not stop.is_set():
                self.results([result("latency", probe=p, seq=seq) for p in PROBES])
                self.results([result("latency", probe=p, seq=SPOOLED_EACH + seq) for p in CHATTY])
                rounds.append(seq)
                seq += 1
                stop.wait(every_s)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return rounds

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(broker)
    try:
        yield pub
    finally:
        pub.close()


def _rows(target: InfluxTarget, query: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for series in target.server.query(query, db=target.db):
        tags = series.get("tags") or {}
        out.extend(
            {**tags, **dict(zip(series["columns"], v, strict=True))} for v in series["values"]
        )
    return out


def test_behind_a_backlog_no_probe_is_silent_a_last_will_is_prompt_and_lag_alerts(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget, publisher: Publisher
) -> None:
    alerts = tmp_path / "alerts.toml"
    alerts.write_text(ALERTS)
    stop = threading.Event()
    config, _cfg = write_config(
        tmp_path,
        broker,
        influx_db,
        # A small window: the collector drains the backlog slowly enough to watch it.
        mqtt={"receive_maximum": 20, "lag_ping_s": 0.5},
        presence={"offline_after_s": OFFLINE_AFTER_S},
        metrics={"interval_s": 1.0},
        files={"alerts": str(alerts)},
        log={"level": "INFO"},
    )
    proc = CollectorProcess(config, tmp_path / "collector.log").start()
    try:
        now = dt.datetime.now(dt.UTC)
        for probe in PROBES:
            publisher.publish(TOPICS.channel(probe, "status"),
                              status_payload(probe, "online", at=now), retain=True)  # fmt: skip
        publisher.results([result("latency", probe=p, seq=1) for p in PROBES])
        agent = AgentSession(broker, WILL)
        agent.publish(result("latency", probe=WILL, seq=1))
        eventually(lambda: count(influx_db, "latency") == PER_RESULT * (len(PROBES) + 1),
                   timeout_s=60,
                   message="first results stored")  # fmt: skip
        assert proc.terminate() == 0
        stopped = time.monotonic()

        # While it is away the fleet goes on: results queue in its session.
        spooled = [
            result("latency", probe=p, seq=s) for p in CHATTY for s in range(1, SPOOLED_EACH + 1)
        ]
        backlog = [
            result("latency", probe=p, seq=s) for s in range(2, RESULTS_EACH + 2) for p in PROBES
        ]
        publisher.results(spooled + backlog)
        total = PER_RESULT * (len(PROBES) * (RESULTS_EACH + 1) + 1 + len(spooled))
        # The outage itself is the test's subject: every last sign of life gets old.
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))

        proc.start()
        restarted_ns = time.time_ns()
        rounds = publisher.trickle(RESULTS_EACH + 2, stop)
        agent.die()  # its Last Will waits behind nothing
        will_query = f"SELECT state FROM presence WHERE probe = '{WILL}' AND time > {restarted_ns}"  # noqa: S608

        def will_offline() -> bool:
            return any(r["state"] == "offline" for r in _rows(influx_db, will_query))

        eventually(will_offline, timeout_s=30, message="Last Will not seen behind the backlog")
        stored_then = count(influx_db, "latency")
        assert stored_then < total, "backlog drained before the Last Will was seen: too small"

        eventually(lambda: count(influx_db, "latency") >= total, timeout_s=180,
                   message="backlog not drained")  # fmt: skip

        def lag_alert_states() -> list[str]:
            rows = _rows(influx_db, "SELECT state FROM alert WHERE rule = 'collector_lag'")
            return [r["state"] for r in rows]

        eventually(lambda: lag_alert_states()[-1:] == ["resolved"], timeout_s=60,
                   message="collector_lag did not resolve")  # fmt: skip
        assert lag_alert_states()[0] == "firing"
        # A few presence rounds caught up, then the fleet stops: silent (rightly)
        # offline_after later, so judged until before that.
        caught_up = time.monotonic()
        eventually(lambda: time.monotonic() - caught_up > 3, timeout_s=10, message="-")
        stop.set()
        publisher.thread.join(30)
        judged_until_ns = time.time_ns() + round((OFFLINE_AFTER_S - 3) * 1e9)
        total += PER_RESULT * (len(PROBES) + len(CHATTY)) * len(rounds)
        eventually(lambda: count(influx_db, "latency") == total, timeout_s=60,
                   message="the live results not all stored")  # fmt: skip
    finally:
        stop.set()
        if proc.proc is not None and proc.proc.poll() is None:
            proc.terminate()

    silent = _rows(
        influx_db,
        f"SELECT state, probe FROM presence WHERE state = 'silent' AND time < {judged_until_ns}",  # noqa: S608
    )
    by_probe: dict[str, list[float]] = {}
    for r in silent:
        by_probe.setdefault(r["probe"], []).append((r["time"] - restarted_ns) / 1e9)
    summary = {p: (min(t), max(t), len(t)) for p, t in sorted(by_probe.items())[:8]}
    assert silent == [], f"{len(silent)} presence points silent (s after restart): {summary}"
    # What the old rule would have said: quiet longer than offline_after, lag ignored.
    quiet = f"SELECT count(last_seen_age_s) FROM presence WHERE last_seen_age_s > {OFFLINE_AFTER_S} AND state = 'online' AND time < {judged_until_ns}"  # noqa: E501, S608
    would_be_silent = _rows(influx_db, quiet)
    assert would_be_silent, "no backlog to speak of"
    assert would_be_silent[0]["count"] > 0
    offline = _rows(influx_db, "SELECT state, probe FROM alert WHERE rule = 'probe_offline'")
    assert {r["probe"] for r in offline} == {WILL}, offline
    log = proc.log_since_start()
    held = [int(n) for n in re.findall(r"held at most (\d+)", log)]
    assert held, "no stopping line"
    assert max(held) <= 20, f"held beyond the window of 20: {held}"
    print(
        f"held at most {max(held)} (window 20); "
        f"stored {stored_then} of {total} when the Last Will showed; "
        f"{would_be_silent[0]['count']} presence points quiet beyond offline_after "
        "(silent without the lag rule), 0 silent"
    )
    assert "Traceback" not in log
