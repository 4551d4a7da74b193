"""An alert's life: firing -> resolved, one notification each, deduplicated, rate-limited,
silenced in maintenance windows; all of it kept across restarts (pure, no I/O).

:class:`AlertBook` holds every subject's :class:`~collector.alerts.evaluate.Subject` and its
:class:`Alert`. :meth:`AlertBook.change` applies a fire/resolve decision and says whether
to notify. The rules, per subject:

- a firing is notified unless silenced, unless the same subject was notified less than
  ``notify.renotify_min_s`` ago (a flapping subject pages once), and unless the fleet-wide
  ``notify.max_per_hour`` is spent — those are recorded (InfluxDB, ``alerts`` command) only;
- a resolution is notified exactly when its firing was;
- a rule marked ``inhibits`` (probe_offline) that fires for a probe inhibits that probe's
  other rules for values measured from INHIBIT_LEAD_S before its breach began until it
  resolves (:meth:`AlertBook.inhibited`): one outage, one page — the loss, IPv6 and
  service results the probe spooled meanwhile neither fire nor notify;
- a ``digest = "daily"`` rule's transitions are recorded, not notified: once a day
  :meth:`AlertBook.digest` lists those firing and those resolved since the last digest;
- a ``group = "commune"`` rule's notifications go through its commune's incident
  (:mod:`collector.alerts.incidents`, ``AlertBook.incidents``): one page per incident.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec
from probefleet.collector.alerts.evaluate import Change, Subject
from probefleet.collector.alerts.incidents import PREFIX, Incidents
from probefleet.collector.alerts.rules import Notify, Rule, Silence
from probefleet.collector.alerts.texts import word

AlertState = Literal["firing", "resolved"]
# An outage begins before the collector sees the probe offline (the line degrades, the
# status goes silent): values measured this long before the breach are inhibited too.
INHIBIT_LEAD_S: Final = 900.0
DIGEST_KEY: Final = "digest:daily"
# What a rule's summary may name: "mobile service lost at {commune} ({operator})".
_PLACEHOLDER: Final = re.compile(r"\{(probe|interface|commune|district|operator)\}")


def render_summary(template: str, values: dict[str, str]) -> str:
    """The summary with its placeholders filled ("?" for one the alert has no value of);
    any other brace is text."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1)) or "?", template)


@dataclass(slots=True)
class Alert:
    key: str
    rule: str
    labels: dict[str, str]  # the subject: probe, interface, target ... and commune, district
    severity: str
    summary: str
    measurement: str
    field: str
    op: str
    threshold: float
    value: float
    state: AlertState = "firing"
    started_s: float = 0.0
    resolved_s: float | None = None
    notified: bool = False  # its firing was notified (so its resolution will be)
    silenced: bool = False
    suppressed: str = ""  # why a firing was not notified: "silenced", "digest" ...
    breach_s: float | None = None  # when its run of breaches began (value time)
    inhibits: bool = False  # its rule inhibits the probe's other rules while it fires
    digest: str = ""  # its rule goes to the daily digest
    incident: str = ""  # the key of its commune incident (group = "commune")
    note: str = ""  # why it was closed other than by its values (state migration)
    lang: str = "en"  # its text's language (notify.language when it fired)

    @property
    def probe(self) -> str | None:
        return self.labels.get("probe")

    def text(self) -> str:
        where = self.labels.get("probe", "?")
        if self.labels.get("commune"):
            where += f" ({self.labels['commune']})"
        rest = [f"{k}={v}" for k, v in self.labels.items()
                if k not in {"probe", "commune", "district"}]  # fmt: skip
        if rest:
            where += " " + " ".join(rest)
        verb = word(self.lang, "firing" if self.state == "firing" else "resolved")
        return (
            f"[{verb}] {self.rule} ({word(self.lang, self.severity)}) {where}: {self.field} "
            f"{self.value:g} {word(self.lang, self.op)} {self.threshold:g} — {self.summary}"
        )

    def document(self) -> dict[str, Any]:
        """What notifiers send (JSON)."""

        def iso(s: float | None) -> str | None:
            if s is None:
                return None
            return dt.datetime.fromtimestamp(s, dt.UTC).isoformat().replace("+00:00", "Z")

        return {
            "event": self.state,
            "key": self.key,
            "rule": self.rule,
            "severity": self.severity,
            "summary": self.summary,
            "labels": self.labels,
            "measurement": self.measurement,
            "field": self.field,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "started_at": iso(self.started_s),
            "resolved_at": iso(self.resolved_s),
            "text": self.text(),
        }


@dataclass(frozen=True, slots=True)
class Breach:
    """What a fire/resolve decision is about."""

    key: str
    rule_name: str
    rule: Rule
    labels: dict[str, str]
    value: float
    threshold: float
    # What the summary may name beside the labels (the link's operator): not a subject tag.
    context: dict[str, str] = field(default_factory=dict)


def subject_key(rule: str, labels: dict[str, str], group_by: list[str]) -> str:
    parts = [rule, *(f"{k}={labels[k]}" for k in group_by if labels.get(k))]
    return "|".join(parts)


@dataclass(slots=True)
class AlertBook:
    notify: Notify
    silences: list[Silence]
    subjects: dict[str, Subject] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    last_notified: dict[str, float] = field(default_factory=dict)
    sent: deque[float] = field(default_factory=deque)  # notification times, last hour
    dirty: set[str] = field(default_factory=set)
    # probe -> (from, until) in value time: the latest inhibiting alert's span.
    inhibitors: dict[str, tuple[float, float]] = field(default_factory=dict)
    incidents: Incidents = field(init=False)

    def __post_init__(self) -> None:
        self.incidents = Incidents(
            self.notify.group_wait_s, self.notify.group_window_s, self.notify.language
        )

    def inhibited(self, probe: str | None, at_s: float) -> bool:
        """A value of ``probe`` measured at ``at_s`` falls in its inhibiting alert's span."""
        span = self.inhibitors.get(probe) if probe else None
        return span is not None and span[0] <= at_s <= span[1]

    def _inhibit(self, alert: Alert) -> None:
        if alert.inhibits and alert.probe:
            start = alert.breach_s if alert.breach_s is not None else alert.started_s
            end = alert.resolved_s if alert.resolved_s is not None else float("inf")
            self.inhibitors[alert.probe] = (start - INHIBIT_LEAD_S, end)

    def subject(self, key: str) -> Subject:
        s = self.subjects.get(key)
        if s is None:
            s = self.subjects[key] = Subject()
        self.dirty.add(key)
        return s

    def active(self) -> list[Alert]:
        return sorted(
            (a for a in self.alerts.values() if a.state == "firing"), key=lambda a: a.started_s
        )

    def change(self, change: Change, b: Breach, now_s: float) -> tuple[Alert, bool]:
        """Apply a fire/resolve; returns the alert and whether to notify."""
        key, rule_name, labels = b.key, b.rule_name, b.labels
        self.dirty.add(key)
        if change == "resolve":
            alert = self.alerts.get(key)
            if alert is None or alert.state != "firing":  # nothing to resolve: record only
                alert = self._new(b, now_s)
            alert.state, alert.resolved_s, alert.value = "resolved", now_s, b.value
            self._inhibit(alert)
            return alert, alert.notified
        alert = self._new(b, now_s)
        self.alerts[key] = alert
        self._inhibit(alert)
        at = dt.datetime.fromtimestamp(now_s, dt.UTC)
        commune = labels.get("commune")
        if any(s.matches(rule_name, labels.get("probe"), commune, at) for s in self.silences):
            alert.silenced, alert.suppressed = True, "silenced"
        elif b.rule.digest:
            alert.suppressed = "digest"
        elif now_s - self.last_notified.get(key, -1e18) < self.notify.renotify_min_s:
            alert.suppressed = "renotify_min_s"
        else:
            while self.sent and self.sent[0] < now_s - 3600:
                self.sent.popleft()
            if len(self.sent) >= self.notify.max_per_hour:
                alert.suppressed = "max_per_hour"
        if alert.suppressed:
            return alert, False
        alert.notified = True
        self.last_notified[key] = now_s
        self.sent.append(now_s)
        return alert, True

    def _new(self, b: Breach, now_s: float) -> Alert:
        r = b.rule
        subject = self.subjects.get(b.key)
        lang = self.notify.language
        template = (r.summary_vi if lang == "vi" else "") or r.summary
        summary = render_summary(template, {**b.context, **b.labels}) if template else ""
        return Alert(
            b.key, b.rule_name, dict(b.labels), r.severity, summary or b.rule_name,
            r.measurement, r.field, r.op, b.threshold, b.value, started_s=now_s,
            breach_s=subject.breach_since if subject is not None else None,
            inhibits=r.inhibits, digest=r.digest, lang=lang,
        )  # fmt: skip

    def digest(self, now_s: float, hour_utc: int) -> dict[str, Any] | None:
        """The daily digest once ``hour_utc`` of today has passed (else None): the digest
        rules' alerts firing, and those resolved since the last digest; None when empty."""
        slot = now_s - now_s % 86_400 + hour_utc * 3600
        if now_s < slot:
            slot -= 86_400
        last = self.last_notified.get(DIGEST_KEY)
        if last is not None and last >= slot:
            return None
        self.last_notified[DIGEST_KEY] = now_s
        self.dirty.add(DIGEST_KEY)
        if last is None:
            return None  # the first start: the first digest at the next digest hour
        since = last
        listed = sorted(
            (a for a in self.alerts.values() if a.digest and (
                a.state == "firing" or (a.resolved_s or 0) > since)),
            key=lambda a: (a.rule, a.key),
        )  # fmt: skip
        if not listed:
            return None
        firing = sum(a.state == "firing" for a in listed)
        lang = self.notify.language
        head = (f"[{word(lang, 'digest')}] {firing} {word(lang, 'digest_firing')}, "
                f"{len(listed) - firing} {word(lang, 'digest_resolved')}")  # fmt: skip
        return {
            "event": "digest",
            "key": DIGEST_KEY,
            "rule": "digest",
            "severity": "info",
            "summary": head,
            "labels": {},
            "alerts": [a.document() for a in listed],
            "text": "\n".join([head, *(a.text() for a in listed)]),
        }

    # -- persistence (JSON per subject; kept in state.sqlite by collector.statedb) -------------

    def take_dirty(self) -> dict[str, str]:
        out = {}
        for key in self.dirty:
            doc: dict[str, Any] = {"last_notified": self.last_notified.get(key)}
            if key in self.subjects:
                doc["subject"] = self.subjects[key]
            if key in self.alerts:
                doc["alert"] = self.alerts[key]
            # msgspec writes the dataclasses as asdict() + json.dumps did, without the deep
            # copy that was half of alert evaluation's time (every subject, every batch).
            out[key] = msgspec.json.encode(doc).decode()
        self.dirty = set()
        for key, row in self.incidents.take_dirty().items():
            out[key] = msgspec.json.encode(row).decode()
        return out

    def restore(self, rows: dict[str, str]) -> None:
        for key, text in rows.items():
            doc = json.loads(text)
            if key.startswith(PREFIX):
                if doc.get("incident"):
                    self.incidents.restore(key, doc["incident"])
                continue
            if doc.get("subject"):
                self.subjects[key] = Subject(**doc["subject"])
            if doc.get("alert"):
                self.alerts[key] = alert = Alert(**doc["alert"])
                span = self.inhibitors.get(alert.probe or "")
                if span is None or alert.started_s - INHIBIT_LEAD_S > span[0]:
                    self._inhibit(alert)
            if doc.get("last_notified") is not None:
                self.last_notified[key] = float(doc["last_notified"])


def alerts_from_rows(rows: dict[str, str]) -> list[Alert]:
    """For ``probe-collector alerts``: the firing alerts in stored rows."""
    out = []
    for text in rows.values():
        doc = json.loads(text).get("alert")
        if doc and doc["state"] == "firing":
            out.append(Alert(**doc))
    return sorted(out, key=lambda a: a.started_s)
