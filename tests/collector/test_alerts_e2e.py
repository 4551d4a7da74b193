"""Alerting end to end: real Mosquitto, the collector in-process, real InfluxDB, a real SMTP
server (STARTTLS + AUTH) and a real HTTP receiver on loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
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
from probefleet.collector.service import Service, load_enrichment

from tests.collector.helpers import (
    BROKER_CONF,
    ROOT,
    TOPICS,
    AgentSession,
    count,
    iso,
    result,
    write_config,
)
from tests.collector.receivers import SMTP_PASSWORD, SMTP_USER, HttpReceiver, SmtpReceiver
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    # aiosmtpd 1.4 warns about its own attribute when it authenticates.
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated"),
]

PROBE = "dongnai-tanphu-01"  # fixed line on eth0: target 150 Mbit/s
OFFLINE_FOR_S = 2.0


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(tmp_path).start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def alerts_file(
    tmp_path: Path,
    hook: HttpReceiver,
    smtp: SmtpReceiver,
    extra: str = "",
    webhook_timeout_s: float = 1.0,
) -> Path:
    """The sample rules (defaults) with the receivers, a short offline T and quick retries."""
    path = tmp_path / "alerts.toml"
    path.write_text(
        f"""
[[overrides]]
rule = "probe_offline"
probe = "{PROBE}"
for_s = {OFFLINE_FOR_S}
{extra}
[notify]
retry_max_s = 1.0
group_wait_s = 0.0  # commune incidents of one alert: notified as it fires
[notify.webhook]
url = "{hook.url}"
timeout_s = {webhook_timeout_s}
[notify.email]
host = "127.0.0.1"
port = {smtp.port}
ca_file = "{smtp.cert}"
username = "{SMTP_USER}"
to = ["oncall@dongnai.example"]
sender = "probefleet@dongnai.example"
"""
    )
    return path


@contextlib.contextmanager
def collector(
    tmp_path: Path, broker: Mosquitto, target: InfluxTarget, alerts: Path
) -> Iterator[tuple[Service, Path]]:
    config, cfg = write_config(
        tmp_path, broker, target, files={"alerts": str(alerts)}, metrics={"interval_s": 1.0}
    )
    import os

    os.environ["PROBEFLEET_SMTP_PASSWORD"] = SMTP_PASSWORD  # secrets come from the env
    try:
        service = Service(cfg, load_enrichment(cfg))
    finally:
        del os.environ["PROBEFLEET_SMTP_PASSWORD"]
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(service.run()), daemon=True)
    thread.start()
    try:
        assert service.link.wait_subscribed(10), "collector did not subscribe"
        yield service, config
    finally:
        service.request_stop()
        thread.join(30)
        assert codes == [0]


class Speeds:
    """Throughput results of PROBE, one per call, measured 'now' (alerts ignore history)."""

    def __init__(self, agent: AgentSession, first_seq: int = 1) -> None:
        self.agent = agent
        self.seq = first_seq
        # One second apart (so each is its own point), recent (older ones page nobody).
        self.base = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)

    def publish(self, *mbps: float) -> None:
        for value in mbps:
            when = self.base + dt.timedelta(seconds=self.seq)
            doc = result("throughput", probe=PROBE, seq=self.seq, measured_at=when)
            doc["data"]["download_mbps"] = value
            self.agent.publish(doc)
            self.seq += 1


def retained_alerts(broker: Mosquitto) -> dict[str, bytes]:
    """What a control-room display subscribed to <root>/_alerts/# gets right now."""
    got: dict[str, bytes] = {}
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: got.__setitem__(m.topic, bytes(m.payload))
    client.connect(broker.host, broker.port)
    client.subscribe(f"{TOPICS.root}/_alerts/#", qos=1)
    client.loop_start()
    time.sleep(1.0)  # retained messages arrive right after SUBACK; nothing else to wait on
    client.loop_stop()
    client.disconnect()
    return got


def rows(target: InfluxTarget, query: str) -> list[list[Any]]:
    series = target.server.query(query, db=target.db)
    return list(series[0]["values"]) if series else []


def _alerts_cli(config: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "probefleet.collector.cli", "alerts", "--config", str(config),
         "--json"],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
    ).stdout  # fmt: skip
    docs: list[dict[str, Any]] = json.loads(out)
    return docs


def test_three_slow_tests_fire_once_and_recovery_resolves_once(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget, smtp: SmtpReceiver,
    hook: HttpReceiver,
) -> None:  # fmt: skip
    with collector(tmp_path, broker, influx_db, alerts_file(tmp_path, hook, smtp)) as (_s, config):
        speeds = Speeds(AgentSession(broker, PROBE))
        speeds.publish(40.0, 40.0)
        eventually(lambda: count(influx_db, "throughput") == 2, message="two stored")
        speeds.publish(40.0)  # the third
        eventually(lambda: hook.events() == [("firing", "download_below_target")],
                   message="one firing by webhook")  # fmt: skip
        eventually(lambda: len(smtp.messages) == 1, message="one firing by e-mail")
        assert smtp.subjects()[0].startswith("[CẢNH BÁO] download_below_target")  # vi
        assert smtp.logins == [SMTP_USER]  # authenticated, after STARTTLS (required)
        doc = hook.posts[0]
        assert (doc["value"], doc["threshold"], doc["labels"]["commune"]) == (
            40.0,
            150.0,
            "Tân Phú",
        )
        [active] = _alerts_cli(config)
        assert active["rule"] == "download_below_target"
        retained = retained_alerts(broker)
        assert [json.loads(v)["event"] for v in retained.values()] == ["firing"]
        # Still slow: nothing new. Then it recovers (150 x 1.05 hysteresis => 160 clears).
        speeds.publish(40.0, 40.0, 160.0, 160.0)
        eventually(lambda: count(influx_db, "throughput") == 7, message="stored")
        speeds.publish(160.0)
        eventually(lambda: len(hook.events()) == 2, message="resolution by webhook")
        assert hook.events() == [("firing", "download_below_target"),
                                 ("resolved", "download_below_target")]  # fmt: skip
        eventually(lambda: len(smtp.messages) == 2, message="resolution by e-mail")
        assert _alerts_cli(config) == []
        eventually(lambda: not any(retained_alerts(broker).values()), message="retained cleared")
        # Grafana can annotate: both transitions are in InfluxDB.
        query = 'SELECT "state", "value", "threshold" FROM "alert"'
        eventually(lambda: len(rows(influx_db, query)) == 2, message="alert points")
        assert [r[1:] for r in rows(influx_db, query)] == [["firing", 40.0, 150.0],
                                                           ["resolved", 160.0, 150.0]]  # fmt: skip
        time.sleep(1.5)  # would any late duplicate arrive?
        assert len(hook.posts) == 2
        assert len(smtp.messages) == 2


def test_a_flapping_commune_does_not_page(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget, smtp: SmtpReceiver,
    hook: HttpReceiver,
) -> None:  # fmt: skip
    with collector(tmp_path, broker, influx_db, alerts_file(tmp_path, hook, smtp)):
        speeds = Speeds(AgentSession(broker, PROBE))
        speeds.publish(*[40.0, 40.0, 155.0] * 6)  # 155: fine, not enough to clear either
        eventually(lambda: count(influx_db, "throughput") == 18, message="all stored")
        # Then 3 bad in a row: it fires once; more flapping around it stays one alert.
        speeds.publish(40.0, 40.0, 40.0, *[160.0, 40.0] * 5)
        eventually(lambda: count(influx_db, "throughput") == 31, message="all stored")
        time.sleep(2.0)  # delivery runs every 0.2 s: give any storm time to show
        assert hook.events() == [("firing", "download_below_target")]
        assert len(smtp.messages) == 1


def test_last_will_raises_an_offline_alert_within_t(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget, smtp: SmtpReceiver,
    hook: HttpReceiver,
) -> None:  # fmt: skip
    with collector(tmp_path, broker, influx_db, alerts_file(tmp_path, hook, smtp)) as (service, _c):
        agent = AgentSession(broker, PROBE)
        agent.publish(result("health", probe=PROBE, seq=1, measured_at=dt.datetime.now(dt.UTC)))
        eventually(lambda: any(r.online for r in service.fleet(time.time())), message="online")
        died = time.monotonic()
        agent.die()
        eventually(lambda: hook.events("probe_offline") == [("firing", "probe_offline")],
                   timeout_s=OFFLINE_FOR_S + 20, message="offline alert")  # fmt: skip
        took = time.monotonic() - died
        # T, plus the 1 s timer and delivery; generous margin for a loaded machine.
        assert OFFLINE_FOR_S <= took < OFFLINE_FOR_S + 10, took
        # Back online: resolved, once.
        agent = AgentSession(broker, PROBE)
        eventually(lambda: len(hook.events("probe_offline")) == 2, timeout_s=20,
                   message="offline resolved")  # fmt: skip
        assert hook.events("probe_offline")[1] == ("resolved", "probe_offline")
        agent.die()


def test_a_silence_holds(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget, smtp: SmtpReceiver,
    hook: HttpReceiver,
) -> None:  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    silence = f"""
[[silences]]
start = "{iso(now - dt.timedelta(hours=1))}"
end = "{iso(now + dt.timedelta(hours=1))}"
commune = "Tân Phú"
comment = "fibre works"
"""
    with collector(tmp_path, broker, influx_db, alerts_file(tmp_path, hook, smtp, silence)) as (
        _s, config,
    ):  # fmt: skip
        speeds = Speeds(AgentSession(broker, PROBE))
        speeds.publish(40.0, 40.0, 40.0, 40.0)
        eventually(lambda: len(_alerts_cli(config)) == 1, message="recorded while silenced")
        query = 'SELECT "silenced_01" FROM "alert"'
        eventually(lambda: influx_db.server.query(query, db=influx_db.db), message="in InfluxDB")
        time.sleep(1.5)
        assert hook.attempts == 0
        assert smtp.messages == []


def test_a_dead_notifier_is_retried_and_does_not_stall_ingestion(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget, smtp: SmtpReceiver,
    hook: HttpReceiver,
) -> None:  # fmt: skip
    # The webhook holds the request 8 s without answering (its client waits up to 10 s).
    hook.mode, hook.hang_s = "hang", 8.0
    alerts = alerts_file(tmp_path, hook, smtp, webhook_timeout_s=10.0)
    with collector(tmp_path, broker, influx_db, alerts):
        agent = AgentSession(broker, PROBE)
        speeds = Speeds(agent)
        speeds.publish(40.0, 40.0, 40.0)
        eventually(lambda: hook.hanging == 1, message="first delivery attempt hangs")
        # While the webhook hangs, results keep flowing to InfluxDB.
        for seq in range(100, 300):
            agent.client.publish(
                TOPICS.result(PROBE, "latency"),
                json.dumps(result("latency", probe=PROBE, seq=seq)).encode(), qos=1,
            )  # fmt: skip
        eventually(lambda: count(influx_db, "latency") == 400, timeout_s=30, message="stored")
        # All of them stored while that one delivery is still hanging: ingestion never waited.
        assert hook.hanging == 1
        assert hook.attempts == 1
        # Its own channel: the e-mail went out meanwhile.
        eventually(lambda: len(smtp.messages) == 1, message="e-mail not held back")
        hook.mode = "down"  # when the hanging attempt gives up, the retry gets a 503
        eventually(lambda: hook.attempts >= 3, timeout_s=30, message="retried after 503")
        hook.mode = "ok"
        eventually(lambda: hook.events() == [("firing", "download_below_target")], timeout_s=20,
                   message="delivered once it answers")  # fmt: skip
        assert len(smtp.messages) == 1
