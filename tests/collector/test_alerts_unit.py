"""Alerting without I/O: evaluation (consecutive, median, hysteresis, for_s), the life cycle
(dedup, silences, storm guards, persistence), rule overrides and targets, delivery retries."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest
from probefleet.collector.alerts.engine import AlertEngine
from probefleet.collector.alerts.evaluate import Subject, step
from probefleet.collector.alerts.lifecycle import AlertBook, Breach, alerts_from_rows
from probefleet.collector.alerts.mqttnotify import alert_topic
from probefleet.collector.alerts.outbox import Delivery, DeliveryError, Outbox
from probefleet.collector.alerts.rules import (
    DEFAULT_RULES,
    AlertsFile,
    Notify,
    Override,
    Silence,
    Webhook,
    series_tags,
    threshold_of,
)
from probefleet.collector.alerts.webhook import render
from probefleet.collector.fleet import FleetRow
from probefleet.collector.inventory import Enrichment, load_inventory, load_targets
from probefleet.collector.statedb import StateDB

from tests.collector.helpers import ROOT
from tests.harness import eventually

DOWNLOAD = DEFAULT_RULES["download_below_target"]
TARGETS = load_targets(ROOT / "config/targets.sample.toml")


def feed(rule: Any, values: list[float], threshold: float = 150.0) -> list[str | None]:
    s = Subject()
    return [step(rule, threshold, v, float(i), s) for i, v in enumerate(values)]


def test_three_consecutive_breaches_fire_and_hysteresis_resolves() -> None:
    out = feed(DOWNLOAD, [40, 40, 160, 40, 40, 40, 40, 155, 160, 160, 160])
    assert out.count("fire") == 1
    assert out.index("fire") == 5  # the run 3..5 is the first with three in a row
    # 155 is above 150 but inside the 5 % hysteresis: it does not count towards clearing.
    assert out.index("resolve") == 10
    assert out.count("resolve") == 1


def test_flapping_never_fires() -> None:
    assert set(feed(DOWNLOAD, [40, 40, 160] * 20)) == {None}


def test_median_mode_ignores_single_outliers() -> None:
    rule = DEFAULT_RULES["latency_high"]
    out = feed(rule, [20, 900, 20, 20, 900, 20, 20, 900, 20], threshold=100.0)
    assert set(out) == {None}
    out = feed(rule, [20, 20, 300, 300, 300, 20, 20, 20, 20, 20], threshold=100.0)
    assert out.count("fire") == 1
    assert out.count("resolve") == 1


def test_for_s_and_late_values() -> None:
    rule = msgspec.structs.replace(DOWNLOAD, count=1, for_s=10.0)
    s = Subject()
    assert step(rule, 150, 40, 100.0, s) is None
    assert step(rule, 150, 40, 105.0, s) is None
    assert step(rule, 150, 200, 50.0, s) is None  # older than what we know: ignored
    assert step(rule, 150, 40, 110.0, s) == "fire"


def test_thresholds_come_from_the_targets_file_with_overrides() -> None:
    alerts = AlertsFile(overrides=[
        Override(rule="download_below_target", commune="Tân Phú", target_factor=0.8),
        Override(rule="download_below_target", probe="p-9", threshold=10.0),
    ])  # fmt: skip
    plain = alerts.rule_for("download_below_target", probe="p-1", commune="Biên Hòa")
    assert threshold_of(plain, TARGETS, "fixed") == 150.0
    assert threshold_of(plain, TARGETS, "mobile") == 60.0
    assert threshold_of(plain, TARGETS, None) is None  # no access type: no target applies
    tanphu = alerts.rule_for("download_below_target", probe="p-1", commune="Tân Phú")
    assert threshold_of(tanphu, TARGETS, "fixed") == 120.0
    # The probe's override beats its commune's.
    p9 = alerts.rule_for("download_below_target", probe="p-9", commune="Tân Phú")
    assert threshold_of(p9, TARGETS, "mobile") == 10.0
    # The plan sets no upload target: the upload rule stays quiet.
    up = alerts.rule_for("upload_below_target", probe="p-1", commune=None)
    assert threshold_of(up, TARGETS, "fixed") is None


def _breach(key: str = "k", commune: str = "Tân Phú") -> Breach:
    return Breach(key, "download_below_target", DOWNLOAD,
                  {"probe": "p-1", "commune": commune}, 40.0, 150.0)  # fmt: skip


def test_life_cycle_notifies_once_each_way_and_guards_against_storms() -> None:
    book = AlertBook(Notify(renotify_min_s=600, max_per_hour=2), [])
    _a, notify = book.change("fire", _breach(), 1000.0)
    assert notify
    alert, notify = book.change("resolve", _breach(), 1100.0)
    assert notify
    assert alert.state == "resolved"
    # Fires again within renotify_min_s: recorded, not notified; nor is its resolution.
    alert, notify = book.change("fire", _breach(), 1200.0)
    assert not notify
    assert alert.suppressed == "renotify_min_s"
    assert not book.change("resolve", _breach(), 1300.0)[1]
    # Fleet-wide cap: 2 an hour.
    assert book.change("fire", _breach("k2"), 1400.0)[1]
    assert not book.change("fire", _breach("k3"), 1500.0)[1]
    # Persistence: a new book restored from the rows knows the same.
    rows = book.take_dirty()
    again = AlertBook(Notify(), [])
    again.restore(rows)
    assert {a.key for a in again.active()} == {"k2", "k3"}
    assert {a.key for a in alerts_from_rows(rows)} == {"k2", "k3"}


def test_silences_match_by_commune_and_time() -> None:
    window = Silence(start="1970-01-01T00:10:00Z", end="1970-01-01T00:20:00+00:00",
                     commune="Tân Phú")  # fmt: skip
    book = AlertBook(Notify(), [window])
    alert, notify = book.change("fire", _breach(), 700.0)
    assert (notify, alert.silenced) == (False, True)
    assert book.change("fire", _breach("other", commune="Biên Hòa"), 700.0)[1]
    assert book.change("fire", _breach("later"), 1300.0)[1]  # after the window


def test_notifier_shapes() -> None:
    doc = {"event": "firing", "rule": "service_down", "text": "down",
           "labels": {"probe": "p-1", "service": "portal/x", "commune": "A"}}  # fmt: skip
    assert alert_topic("probefleet/v1", doc) == "probefleet/v1/_alerts/p-1/service_down/portal_x"
    telegram = render(Webhook(url="http://x", template="telegram", chat_id="-100"), doc)
    assert telegram == {"chat_id": "-100", "text": "down", "disable_web_page_preview": True}
    assert render(Webhook(url="http://x", template="slack"), doc) == {"text": "down"}


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[dict[str, Any]] = []

    def send(self, doc: dict[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise DeliveryError("receiver down")
        self.sent.append(doc)


@pytest.mark.slow  # ~2 s of real retry back-off
def test_delivery_retries_until_sent_and_survives_a_restart(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.put("hook", {"key": "a"})
    outbox.close()
    outbox = Outbox(tmp_path)  # a restart keeps the queue
    flaky, stop = Flaky(2), threading.Event()
    delivery = Delivery(outbox, "hook", flaky, retry_max_s=1.0, give_up_after_s=60,
                        stopping=stop, poll_s=0.05)  # fmt: skip
    delivery.start()
    try:
        eventually(lambda: flaky.sent == [{"key": "a"}], timeout_s=10, message="delivered")
        assert delivery.failures == 2
        assert outbox.count() == 0
    finally:
        stop.set()
        delivery.join(5)
        outbox.close()


def _row(probe: str, state: str) -> FleetRow:
    return FleetRow(probe, None, None, None, state, 1.0, None, {}, None, None, None,  # type: ignore[arg-type]
                    False, None)  # fmt: skip


def test_while_the_collector_is_behind_silence_is_held_back_but_a_last_will_is_not(
    tmp_path: Path,
) -> None:
    rules = dict(DEFAULT_RULES)
    rules["probe_offline"] = msgspec.structs.replace(rules["probe_offline"], for_s=0.0)
    rules["collector_lag"] = msgspec.structs.replace(rules["collector_lag"], for_s=0.0)
    db, outbox = StateDB(tmp_path), Outbox(tmp_path)
    lines: list[str] = []
    try:
        engine = AlertEngine(
            AlertsFile(rules=rules),
            Enrichment(load_inventory(ROOT / "config/inventory.sample.toml"), TARGETS),
            db=db,
            outbox=outbox,
            emit=lambda _topic, new: lines.extend(new),
            channels=[],
        )
        rows = [_row("p-silent", "silent"), _row("p-will", "offline"), _row("p-up", "online")]

        def firing() -> set[tuple[str, str]]:
            return {(a.rule, a.labels.get("probe") or a.labels["collector"])
                    for a in engine.active()}  # fmt: skip

        engine.tick(rows, 1000.0, collector="c-1", own={"lag_s": 300.0})
        assert firing() == {("collector_lag", "c-1"), ("probe_offline", "p-will")}
        engine.tick(rows, 1001.0, collector="c-1", own={"lag_s": 100.0})  # hysteresis: 60 s
        assert ("collector_lag", "c-1") in firing()
        # Caught up: the silence is the probe's own now.
        engine.tick(rows, 1002.0, collector="c-1", own={"lag_s": 0.5})
        assert firing() == {("probe_offline", "p-will"), ("probe_offline", "p-silent")}
        assert any("collector_lag" in line and "resolved" in line for line in lines)
    finally:
        db.close()
        outbox.close()


def test_subjects_are_told_apart_by_every_series_tag_ipv4_and_ipv6_too() -> None:
    from grafana.alerts import group_tags

    latency = DEFAULT_RULES["loss_high"]
    tags = {"probe": "p-1", "interface": "eth0", "access": "fixed", "commune": "Tân Phú",
            "status": "ok", "target": "t", "method": "icmp", "ip_version": "6"}  # fmt: skip
    assert series_tags(latency, tags) == ["interface", "ip_version", "method", "probe", "target"]
    assert series_tags(DEFAULT_RULES["probe_offline"], tags) == ["probe"]  # explicit group_by
    # The throughput server is chosen per run: not a subject tag.
    assert "server" not in series_tags(DOWNLOAD, {"probe": "p-1", "server": "s1"})
    # Grafana groups its query by the same tags (plus the place).
    assert set(group_tags(latency)) == {"interface", "ip_version", "method", "port", "probe",
                                        "target", "commune", "district"}  # fmt: skip


def test_offline_inhibits_the_probes_other_alerts_until_it_resolves() -> None:
    book = AlertBook(Notify(), [])
    offline = DEFAULT_RULES["probe_offline"]
    book.subject("off").breach_since = 10_000.0
    b = Breach("off", "probe_offline", offline, {"probe": "p-1"}, 0.0, 1.0)
    assert book.change("fire", b, 10_900.0)[1]
    assert book.inhibited("p-1", 9_200.0)  # INHIBIT_LEAD_S before the breach began
    assert not book.inhibited("p-1", 9_000.0)
    assert book.inhibited("p-1", 50_000.0)  # still offline
    assert not book.inhibited("p-2", 10_500.0)
    assert book.change("resolve", b, 20_000.0)[1]
    assert book.inhibited("p-1", 19_999.0)  # spooled results of the outage: inhibited
    assert not book.inhibited("p-1", 20_001.0)  # measured after it came back: evaluated
    again = AlertBook(Notify(), [])
    again.restore(book.take_dirty())
    assert again.inhibitors == book.inhibitors


def test_digest_rules_are_not_paged_but_listed_once_a_day() -> None:
    book = AlertBook(Notify(), [])
    ipv6 = DEFAULT_RULES["ipv6_lost"]
    assert ipv6.digest == "daily"
    day = 20_000 * 86_400.0
    b = Breach("v6", "ipv6_lost", ipv6, {"probe": "p-1", "check": "tcp"}, 0.0, 1.0)
    assert book.digest(day, hour_utc=1) is None  # the first start: from the next 01:00 on
    alert, notify = book.change("fire", b, day + 600)
    assert (notify, alert.suppressed) == (False, "digest")
    assert book.digest(day + 1800, hour_utc=1) is None  # before 01:00 UTC
    doc = book.digest(day + 3600, hour_utc=1)
    assert doc is not None
    assert (doc["event"], len(doc["alerts"])) == ("digest", 1)
    assert book.digest(day + 7200, hour_utc=1) is None  # once a day
    assert not book.change("resolve", b, day + 9000)[1]  # its firing was not paged
    doc = book.digest(day + 86_400 + 3600, hour_utc=1)  # the next day: listed as resolved
    assert doc is not None
    assert [a["event"] for a in doc["alerts"]] == ["resolved"]
    assert book.digest(day + 2 * 86_400 + 3600, hour_utc=1) is None  # nothing left
    # An override makes a rule a digest for one probe (e.g. not on the data network).
    alerts = AlertsFile(overrides=[Override(rule="service_down", probe="p-1", digest="daily")])
    assert alerts.rule_for("service_down", probe="p-1", commune=None).digest == "daily"
    assert alerts.rule_for("service_down", probe="p-2", commune=None).digest == ""


def _commune_row(probe: str, online: bool, commune: str = "Phú Lâm") -> FleetRow:
    state = "online" if online else "offline"
    return FleetRow(probe, commune, None, None, state, 1.0, online, {}, online, None, None,  # type: ignore[arg-type]
                    True, None)  # fmt: skip


def _offline_engine(tmp_path: Path, **notify: Any) -> tuple[AlertEngine, StateDB, Outbox]:
    rules = dict(DEFAULT_RULES)
    rules["probe_offline"] = msgspec.structs.replace(rules["probe_offline"], for_s=0.0)
    db, outbox = StateDB(tmp_path), Outbox(tmp_path)
    engine = AlertEngine(
        AlertsFile(rules=rules, notify=Notify(**notify)),
        Enrichment(load_inventory(ROOT / "config/inventory.sample.toml"), TARGETS),
        db=db, outbox=outbox, emit=lambda _topic, _lines: None, channels=["hook"],
    )  # fmt: skip
    return engine, db, outbox


def test_commune_incidents_window_restart_and_late_joiners(tmp_path: Path) -> None:
    engine, db, outbox = _offline_engine(
        tmp_path, group_wait_s=60.0, group_window_s=600.0, renotify_min_s=0.0
    )
    up = {p: True for p in ("a", "b", "c")}

    def tick(now: float, **state: bool) -> None:
        up.update(state)
        engine.tick([_commune_row(p, on) for p, on in up.items()], now)

    def sent() -> list[tuple[str, str, tuple[str, ...]]]:
        pending = outbox.due("hook", float("inf"), limit=100)
        for p in pending:
            outbox.done(p)
        docs = [p.doc for p in pending]
        return [(d["event"], d["rule"], tuple(d.get("probes", [d["labels"].get("probe")])))
                for d in docs]  # fmt: skip

    try:
        tick(1000.0, a=False)
        tick(1030.0, b=False)  # within group_wait_s: the same first notification
        assert sent() == []
        tick(1060.0)
        assert sent() == [("firing", "incident", ("a", "b"))]
        tick(1300.0, c=False)  # joins later (same severity): listed at the resolution only
        assert sent() == []
        db.close()
        outbox.close()
        # A restart keeps the open incident.
        engine, db, outbox = _offline_engine(
            tmp_path, group_wait_s=60.0, group_window_s=600.0, renotify_min_s=0.0
        )
        tick(1400.0, a=True, b=True)
        assert sent() == []  # c is still offline
        tick(1500.0, c=True)
        assert sent() == [("resolved", "incident", ("a", "b", "c"))]
        # Past group_window_s of an open incident, a new alert opens a new incident.
        tick(2000.0, a=False)
        tick(2100.0)
        tick(2700.0, b=False)
        tick(2800.0)
        assert sent() == [("firing", "probe_offline", ("a",)), ("firing", "probe_offline", ("b",))]
        assert len(engine.book.incidents.open) == 2
    finally:
        db.close()
        outbox.close()


def test_a_silenced_incident_is_recorded_only_and_summaries_fill_their_placeholders(
    tmp_path: Path,
) -> None:
    from probefleet.collector.alerts.lifecycle import render_summary

    db, outbox = StateDB(tmp_path), Outbox(tmp_path)
    rules = dict(DEFAULT_RULES)
    rules["probe_offline"] = msgspec.structs.replace(rules["probe_offline"], for_s=0.0)
    silence = Silence(start="1970-01-01T00:00:00Z", end="2100-01-01T00:00:00Z",
                      commune="Phú Lâm")  # fmt: skip
    try:
        engine = AlertEngine(
            AlertsFile(rules=rules, silences=[silence], notify=Notify(group_wait_s=0.0)),
            Enrichment(load_inventory(ROOT / "config/inventory.sample.toml"), TARGETS),
            db=db, outbox=outbox, emit=lambda _topic, _lines: None, channels=["hook"],
        )  # fmt: skip
        engine.tick([_commune_row("a", False), _commune_row("b", False)], 1000.0)
        engine.tick([_commune_row("a", True), _commune_row("b", True)], 1100.0)
        assert outbox.due("hook", float("inf"), limit=10) == []
        assert not engine.book.incidents.open
    finally:
        db.close()
        outbox.close()
    values = {"commune": "Phú Lâm", "operator": "Viettel"}
    assert render_summary("lost at {commune} ({operator})", values) == "lost at Phú Lâm (Viettel)"
    assert render_summary("{probe} {x} {", values) == "? {x} {"  # other braces are text
