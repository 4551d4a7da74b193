"""Alert state written under an older subject key, brought to today's rules at start.

Issue 19 made a rule's subject every series tag of its point, keyed in name order
(``rule|interface=eth0|ip_version=6|method=icmp|probe=p|target=t``), where it was a fixed
``probe, interface, target, service, check`` in that order (``rule|probe=p|interface=eth0|
target=t``). A row under an old key is never looked up again: an alert firing there would
stay listed by ``probe-collector alerts`` for ever. :func:`migrate` maps each such row:

- to its key under today's rules when its old subject was exactly one of today's (the
  measurement's rows carry no tag the old grouping dropped: health, ipv6, presence,
  collector): the alert, its evaluation state and its last notification move there;
- else it is closed with a note (its old subject merged what are now several, e.g. the
  IPv4 and IPv6 rows of a latency target): a firing alert is resolved, not notified (the
  condition may well go on: it fires again under its new key if so), its evaluation
  state dropped. The same for a row whose rule is gone from the alerts file.

An old row keeps its key with ``{"moved_to": <new key>}`` or its closed alert (the state
store has no delete; ``AlertBook.restore`` skips both).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from probefleet.collector.alerts.incidents import PREFIX
from probefleet.collector.alerts.lifecycle import DIGEST_KEY, subject_key
from probefleet.collector.alerts.rules import AlertsFile, series_tags

# Measurements whose rows the old default group_by told apart completely.
COMPLETE_UNDER_OLD: Final = frozenset({"health", "ipv6", "presence", "collector"})
_PLACE: Final = frozenset({"commune", "district"})


@dataclass(slots=True)
class Migration:
    rows: dict[str, str]  # what to restore (old rows left out)
    writes: dict[str, str] = field(default_factory=dict)  # what to save back
    moved: dict[str, str] = field(default_factory=dict)  # old key -> new key
    closed: list[dict[str, Any]] = field(default_factory=list)  # closed alerts' docs


def _labels_of(key: str, doc: dict[str, Any]) -> dict[str, str]:
    alert = doc.get("alert")
    if alert:
        return dict(alert["labels"])
    return dict(part.split("=", 1) for part in key.split("|")[1:] if "=" in part)


def current_key(alerts: AlertsFile, rule_name: str, labels: dict[str, str]) -> str:
    """The key today's rules give the subject with these labels (its tags and place)."""
    rule = alerts.rules[rule_name]
    tags = {k: v for k, v in labels.items() if k not in _PLACE}
    return subject_key(rule_name, tags, series_tags(rule, tags))


def migrate(rows: dict[str, str], alerts: AlertsFile, now_s: float) -> Migration:
    """Rows as stored -> rows to restore and the rows to write back (see the module)."""
    out = Migration(rows={})
    for key, text in rows.items():
        doc = json.loads(text)
        if key == DIGEST_KEY or key.startswith(PREFIX) or "moved_to" in doc or doc.get("closed"):
            out.rows[key] = text
            continue
        name = key.split("|", 1)[0]
        gone = name not in alerts.rules
        new = None if gone else current_key(alerts, name, _labels_of(key, doc))
        if new == key:
            out.rows[key] = text
            continue
        measurement = None if gone else alerts.rules[name].measurement
        if new is not None and measurement in COMPLETE_UNDER_OLD and new not in rows:
            if doc.get("alert"):
                doc["alert"]["key"] = new
            moved = json.dumps(doc, ensure_ascii=False)
            out.rows[new] = out.writes[new] = moved
            out.writes[key] = json.dumps({"moved_to": new})
            out.moved[key] = new
            continue
        out.writes[key] = json.dumps(_closed(doc, gone, now_s, out), ensure_ascii=False)
    return out


def _closed(doc: dict[str, Any], gone: bool, now_s: float, out: Migration) -> dict[str, Any]:
    alert = doc.get("alert")
    kept: dict[str, Any] = {"last_notified": doc.get("last_notified"), "closed": True}
    if alert:
        if alert.get("state") == "firing":
            alert["state"], alert["resolved_s"] = "resolved", now_s
            alert["note"] = (
                "closed at start: its rule is no longer in the alerts file"
                if gone
                else "closed at start: recorded under the subject key of an older version, "
                "which merged rows told apart now (IPv4/IPv6, method); it fires again under "
                "its new key if the condition goes on"
            )
            out.closed.append(alert)
        kept["alert"] = alert
    return kept
