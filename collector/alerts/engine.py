"""The alert engine: rules evaluated on every stored batch and on a timer, alerts recorded,
written to InfluxDB (measurement ``alert``) and handed to the outbox.

Wired by the service: :meth:`AlertEngine.on_batch` is a pipeline observer (it runs after
the batch is durable and acknowledged, so evaluation never delays an ack), :meth:`tick`
runs once a second with the fleet's presence (offline rules) and the collector's own
gauges (``collector`` rules: ``collector_lag``). While the collector is behind (a
``collector`` rule on ``lag_s`` breaches), presence rules are not fed the silence of
probes: one collector_lag alert instead of a probe_offline for every probe. A probe whose
Last Will came ("offline") is still fed, whatever the lag. While probe_offline (a rule
that ``inhibits``) fires for a probe, the probe's other rules skip the values it measured
meanwhile; ``digest`` rules are notified in one daily digest (lifecycle.py); ``group =
"commune"`` rules through their commune's incident (incidents.py), to every channel but
MQTT, whose retained topics stay one per alert.
Notifications only go into the durable outbox here;
:class:`collector.alerts.outbox.Delivery` sends them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from probefleet.collector._batch import Item
from probefleet.collector.alerts.derived import value_of
from probefleet.collector.alerts.email import EmailSender
from probefleet.collector.alerts.evaluate import Change, breaches, step
from probefleet.collector.alerts.lifecycle import Alert, AlertBook, Breach, subject_key
from probefleet.collector.alerts.migrate import migrate
from probefleet.collector.alerts.mqttnotify import MqttAlertSender, Publish
from probefleet.collector.alerts.outbox import Outbox, Sender
from probefleet.collector.alerts.rules import AlertsFile, Rule, series_tags, threshold_of
from probefleet.collector.alerts.webhook import WebhookSender
from probefleet.collector.fleet import FleetRow
from probefleet.collector.inventory import Enrichment
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.collector.statedb import StateDB

log = logging.getLogger(__name__)

# Results measured longer ago than this (a backlog after an outage) are history: they are
# stored, but they do not page anyone.
MAX_AGE_S: Final = 86_400.0
_PLACE: Final = ("commune", "district")


def senders_for(alerts: AlertsFile, topic_root: str, publish: Publish | None) -> dict[str, Sender]:
    notify = alerts.notify
    senders: dict[str, Sender] = {}
    if notify.webhook.url:
        senders["webhook"] = WebhookSender(notify.webhook)
    if notify.email.host:
        senders["email"] = EmailSender(notify.email)
    if notify.mqtt.enabled and publish is not None:
        senders["mqtt"] = MqttAlertSender(topic_root, publish)
    return senders


def alert_point(alert: Alert, at_ns: int) -> Point:
    tags: dict[str, str | None] = {"rule": alert.rule, "severity": alert.severity, **alert.labels}
    fields: dict[str, FieldValue | None] = {
        "state": alert.state,
        "firing_01": int(alert.state == "firing"),
        "value": float(alert.value),
        "threshold": float(alert.threshold),
        "notified_01": int(alert.notified),
        "silenced_01": int(alert.silenced),
        "text": alert.text(),
    }
    return Point.build("alert", tags, fields, at_ns)


class AlertEngine:
    def __init__(
        self,
        alerts: AlertsFile,
        enrichment: Enrichment,
        *,
        db: StateDB,
        outbox: Outbox,
        emit: Callable[[str, list[str]], None],
        channels: Sequence[str],
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.alerts = alerts
        self.enrichment = enrichment
        self.db = db
        self.outbox = outbox
        self.emit = emit
        self.channels = list(channels)
        self.wake = wake
        self.book = AlertBook(alerts.notify, alerts.silences)
        self.book.restore(self._migrated(db))
        self.by_measurement: dict[str, list[str]] = {}
        for name, rule in alerts.rules.items():
            self.by_measurement.setdefault(rule.measurement, []).append(name)

    def _migrated(self, db: StateDB) -> dict[str, str]:
        """The stored rows, those under an older subject key moved or closed (migrate.py)."""
        done = migrate(db.load_alert_rows(), self.alerts, time.time())
        if done.writes:
            db.save_alert_rows(done.writes)
        for old, new in done.moved.items():
            log.info("alert state %s moved to its key today, %s", old, new)
        for doc in done.closed:
            alert = Alert(**doc)
            log.warning("%s (%s)", alert.text(), alert.note)
            self.emit("$collector/alert", [alert_point(alert, time.time_ns()).line()])
        return done.rows

    def active(self) -> list[Alert]:
        return self.book.active()

    # -- evaluation ------------------------------------------------------------------------

    def on_batch(self, items: Sequence[Item]) -> None:
        now_s = time.time()
        for item in items:
            parsed = item.parsed
            if parsed is None or item.when_ns is None or item.letter is not None:
                continue
            names = self.by_measurement.get(parsed.kind)
            if not names or now_s - item.when_ns / 1e9 > MAX_AGE_S:
                continue
            for point in item.points or []:
                self._point(names, point, item.when_ns / 1e9, now_s)
        self._save(now_s)

    def evaluate(self, points: Iterable[tuple[Point, float]], now_s: float) -> None:
        """Stored points with the time each was measured (s): what on_batch does, without
        the batch's parsing (a replay of history)."""
        for point, at_s in points:
            names = self.by_measurement.get(point.measurement)
            if names:
                self._point(names, point, at_s, now_s)
        self._save(now_s)

    def _point(self, names: list[str], point: Point, at_s: float, now_s: float) -> None:
        tags = dict(point.tags)
        fields = dict(point.fields)
        # The link's operator for the text ("mobile service lost at X (Viettel)"): the
        # inventory's name, else what the modem says, else its MCC+MNC.
        name_field = fields.get("radio_operator_name")
        operator = tags.get("operator") or (name_field if isinstance(name_field, str) else "")
        context = {"operator": operator or tags.get("radio_operator", "")}
        for name in names:
            base = self.alerts.rules[name]
            value = value_of(point.measurement, base.field, tags, fields)
            if value is None:
                continue
            rule = self.alerts.rule_for(name, probe=tags.get("probe"), commune=tags.get("commune"))
            self._feed(name, rule, tags, value, (at_s, now_s, tags.get("access")), context=context)

    def tick(
        self,
        rows: list[FleetRow],
        now_s: float,
        *,
        collector: str = "",
        own: Mapping[str, float | None] | None = None,
    ) -> None:
        """Once a second: the collector's own rules on ``own`` (its gauges, e.g. lag_s),
        then presence rules (probe offline longer than T)."""
        behind = self._own(collector, own or {}, now_s)
        self._digest(now_s)
        names = self.by_measurement.get("presence")
        if not names:
            self._save(now_s)
            return
        for row in rows:
            if row.state == "never seen" or (behind and row.state == "silent"):
                continue  # held back while the collector is behind: its lag, not theirs
            tags = {
                "probe": row.probe,
                "commune": row.commune or "",
                "district": row.district or "",
            }
            values = {"online_01": float(row.online), "line_up_01": row.line_up,
                      "last_test_ok_01": row.last_test_ok}  # fmt: skip
            for name in names:
                rule = self.alerts.rule_for(name, probe=row.probe, commune=row.commune)
                value = values.get(rule.field)
                if value is None:
                    continue
                self._feed(name, rule, tags, float(value), (now_s, now_s, None))
        self._save(now_s)

    def _own(self, collector: str, own: Mapping[str, float | None], now_s: float) -> bool:
        """Feed the ``collector`` rules; True while one on ``lag_s`` breaches (behind)."""
        behind = False
        tags = {"collector": collector} if collector else {}
        for name in self.by_measurement.get("collector", []):
            rule = self.alerts.rules[name]
            value = own.get(rule.field)
            if value is None:
                continue
            self._feed(name, rule, tags, float(value), (now_s, now_s, None))
            threshold = threshold_of(rule, self.enrichment.targets, None)
            if rule.enabled and rule.field == "lag_s" and threshold is not None:
                behind = behind or breaches(rule, threshold, float(value))
        return behind

    def _feed(
        self,
        name: str,
        rule: Rule,
        tags: dict[str, str],
        value: float,
        when: tuple[float, float, str | None],
        *,
        context: dict[str, str] | None = None,
    ) -> None:
        """``when``: (the value's time, now, the point's access type) in seconds."""
        at_s, now_s, access = when
        if not rule.enabled:
            return
        threshold = threshold_of(rule, self.enrichment.targets, access)
        if threshold is None:
            return
        if not rule.inhibits and self.book.inhibited(tags.get("probe"), at_s):
            return  # measured while its probe was offline: that alert says it all
        group = series_tags(rule, tags)
        labels = {k: tags[k] for k in group if tags.get(k)}
        labels.update({k: tags[k] for k in _PLACE if tags.get(k)})
        key = subject_key(name, labels, group)
        change = step(rule, threshold, value, at_s, self.book.subject(key))
        if change is not None:
            breach = Breach(key, name, rule, labels, value, threshold, context or {})
            self._change(change, breach, now_s)

    def _change(self, change: Change, breach: Breach, now_s: float) -> None:
        alert, notify = self.book.change(change, breach, now_s)
        why = alert.suppressed or "its firing was not"
        log.warning("%s%s", alert.text(), "" if notify else f" (not notified: {why})")
        self.emit("$collector/alert", [alert_point(alert, time.time_ns()).line()])
        # A resolution goes the way its firing went: an alert that fired before its rule was
        # grouped (or before an upgrade) resolves on its own.
        grouped = (
            breach.rule.group == "commune"
            and bool(alert.labels.get("commune"))
            and (change == "fire" or bool(alert.incident))
        )
        if notify:
            doc: dict[str, Any] = alert.document()
            for channel in self.channels:
                if not grouped or channel == "mqtt":
                    self.outbox.put(channel, doc)
            self.wake()
        if grouped:
            book, incidents = self.book, self.book.incidents
            if change == "fire":
                self._incident(incidents.on_fire(alert, notify, now_s, book.alerts))
            else:
                self._incident(incidents.on_resolve(alert, now_s, book.alerts))

    def _incident(self, docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            log.warning("%s", doc["summary"] if doc["rule"] == "incident" else doc["text"])
            for channel in self.channels:
                if channel != "mqtt":
                    self.outbox.put(channel, doc)
        if docs:
            self.wake()

    def _digest(self, now_s: float) -> None:
        """The daily digest of ``digest`` rules, to every channel but MQTT (whose retained
        topics are the active alerts themselves)."""
        doc = self.book.digest(now_s, self.alerts.notify.digest_hour_utc)
        if doc is None:
            return
        log.warning("%s", doc["summary"])
        for channel in self.channels:
            if channel != "mqtt":
                self.outbox.put(channel, doc)
        self.wake()

    def _save(self, now_s: float) -> None:
        self._incident(self.book.incidents.due(now_s, self.book.alerts))
        dirty = self.book.take_dirty()
        if dirty:
            self.db.save_alert_rows(dirty)
