"""Commune incidents: the alerts of one commune that fire together are one notification
(pure, no I/O; kept across restarts with the alert state).

A rule with ``group = "commune"`` still has one alert per subject (recorded, written to
InfluxDB, retained on MQTT), but its notifications go through :class:`Incidents`: an
alert of commune C that fires joins C's open incident if that opened less than
``notify.group_window_s`` ago, else opens one. An incident is notified once,
``notify.group_wait_s`` after it opened (so the three probes of a line that goes down, or
the offline, loss and service alerts one outage causes, are one page), naming the commune
and listing its alerts; again only if a later alert raises its severity (a fallback to 3G,
then the service lost); and resolved, once, when the last of its alerts resolves. An
incident whose alerts all were silenced, digests or storm-guarded is recorded only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from probefleet.collector.alerts.texts import word

if TYPE_CHECKING:
    from probefleet.collector.alerts.lifecycle import Alert

PREFIX: Final = "incident|"
SEVERITY_RANK: Final = {"info": 0, "warning": 1, "critical": 2}


@dataclass(slots=True)
class Incident:
    key: str
    commune: str
    district: str
    opened_s: float
    members: list[str] = field(default_factory=list)  # alert keys, in firing order
    active: list[str] = field(default_factory=list)  # those firing now
    wanted: bool = False  # one of its firings is to be notified (not silenced ...)
    notified_severity: str = ""  # "": not notified (yet)
    closed_s: float | None = None

    @property
    def notified(self) -> bool:
        return bool(self.notified_severity)


def _iso(s: float | None) -> str | None:
    if s is None:
        return None
    return dt.datetime.fromtimestamp(s, dt.UTC).isoformat().replace("+00:00", "Z")


def _severity(alerts: list[Alert]) -> str:
    return max((a.severity for a in alerts), key=lambda s: SEVERITY_RANK.get(s, 0), default="info")


@dataclass(slots=True)
class Incidents:
    group_wait_s: float
    group_window_s: float
    lang: str = "en"  # the notifications' language (notify.language)
    open: dict[str, Incident] = field(default_factory=dict)  # key -> incident
    dirty: dict[str, Incident | None] = field(default_factory=dict)  # None: slot freed

    def _slot(self, commune: str) -> str:
        """A free key for a new incident of ``commune``: closed incidents' rows are reused,
        so the state holds as many incident rows per commune as ever were open at once."""
        n = 1
        while f"{PREFIX}commune={commune}|{n}" in self.open:
            n += 1
        return f"{PREFIX}commune={commune}|{n}"

    def on_fire(
        self, alert: Alert, wanted: bool, now_s: float, alerts: dict[str, Alert]
    ) -> list[dict[str, Any]]:
        """``alert`` fired (``wanted``: its firing would have been notified alone)."""
        commune = alert.labels["commune"]
        newest = max(
            (i for i in self.open.values() if i.commune == commune),
            key=lambda i: i.opened_s,
            default=None,
        )
        if newest is None or now_s - newest.opened_s > self.group_window_s:
            key = self._slot(commune)
            newest = self.open[key] = Incident(
                key, commune, alert.labels.get("district", ""), now_s
            )
        inc = newest
        alert.incident = inc.key
        if alert.key not in inc.members:
            inc.members.append(alert.key)
        if alert.key not in inc.active:
            inc.active.append(alert.key)
        inc.wanted = inc.wanted or wanted
        self.dirty[inc.key] = inc
        if inc.notified and wanted:
            severity = _severity([alerts[k] for k in inc.active if k in alerts])
            if SEVERITY_RANK[severity] > SEVERITY_RANK.get(inc.notified_severity, 0):
                inc.notified_severity = severity  # worse now: page again, once per step
                return [self.document(inc, "firing", alerts, now_s)]
        return []

    def on_resolve(
        self, alert: Alert, now_s: float, alerts: dict[str, Alert]
    ) -> list[dict[str, Any]]:
        inc = self.open.get(alert.incident)
        if inc is None:
            return []
        if alert.key in inc.active:
            inc.active.remove(alert.key)
        self.dirty[inc.key] = inc
        if inc.active:
            return []
        inc.closed_s = now_s
        del self.open[inc.key]
        self.dirty[inc.key] = inc  # closed: its row is kept until the slot is reused
        return [self.document(inc, "resolved", alerts, now_s)] if inc.notified else []

    def due(self, now_s: float, alerts: dict[str, Alert]) -> list[dict[str, Any]]:
        """The incidents whose group_wait_s has passed: their first notification."""
        out = []
        for inc in list(self.open.values()):
            if inc.wanted and not inc.notified and now_s - inc.opened_s >= self.group_wait_s:
                inc.notified_severity = _severity([alerts[k] for k in inc.active if k in alerts])
                self.dirty[inc.key] = inc
                out.append(self.document(inc, "firing", alerts, now_s))
        return out

    def document(
        self, inc: Incident, event: str, alerts: dict[str, Alert], now_s: float
    ) -> dict[str, Any]:
        """What notifiers send: an incident of one alert is that alert's own document."""
        members = [alerts[k] for k in inc.members if k in alerts]
        if len(members) == 1:
            doc = members[0].document()
            doc["incident"] = inc.key
            return doc
        firing = [a for a in members if a.state == "firing"]
        probes = sorted({a.probe for a in members if a.probe})
        severity = _severity(firing or members)
        where = inc.commune + (f" ({inc.district})" if inc.district else "")
        lang = self.lang
        verb = word(lang, "firing" if event == "firing" else "resolved")
        rules = ", ".join(sorted({a.rule for a in members}))
        if event == "firing":
            what = f"{len(firing)} {word(lang, 'of')} {len(members)} {word(lang, 'alerts_firing')}"
        else:
            what = f"{word(lang, 'all')} {len(members)} {word(lang, 'alerts_resolved')}"
        head = (f"[{verb}] {word(lang, 'incident_at')} {where} ({word(lang, severity)}): {what} "
                f"{word(lang, 'on')} {len(probes)} {word(lang, 'probes')} "
                f"({', '.join(probes)}) — {rules}")  # fmt: skip
        labels = {"commune": inc.commune, **({"district": inc.district} if inc.district else {})}
        return {
            "event": event,
            "key": inc.key,
            "rule": "incident",
            "severity": severity,
            "summary": head,
            "labels": labels,
            "probes": probes,
            "alerts": [a.document() for a in members],
            "started_at": _iso(inc.opened_s),
            "resolved_at": _iso(inc.closed_s),
            "text": "\n".join([head, *(f"  {a.text()}" for a in members)]),
        }

    # -- persistence (rows of the alert state, keyed incident|commune=<C>|<slot>) ----------

    def take_dirty(self) -> dict[str, dict[str, Any]]:
        out = {k: {"incident": dataclasses.asdict(i)} for k, i in self.dirty.items() if i}
        self.dirty = {}
        return out

    def restore(self, key: str, doc: dict[str, Any]) -> None:
        inc = Incident(**doc)
        if inc.closed_s is None:
            self.open[key] = inc
