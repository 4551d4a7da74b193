"""Grafana-managed alert rules, generated from the collector's own rules file, plus contact
points and the notification policy.

One source of truth: every rule comes from ``collector.alerts.rules.load_alerts`` (the file
the collector's alert engine reads, ``files.alerts``; sample ``config/alerts.sample.toml``)
and every threshold from ``threshold_of`` with the targets file
(``collector.inventory.load_targets``), exactly as the engine computes it. A target-based
rule becomes one Grafana rule per access type that has the target; ``[[overrides]]`` become
rules of their own for their probe / commune (the base rule leaves those out).

How Grafana's evaluation approximates the collector's (collector/alerts/evaluate.py):

- ``consecutive`` (the last ``count`` values all breach): the newest ``count`` values of the
  series (``ORDER BY time DESC LIMIT count``), their max (``below``) or min (``above``)
  compared with the threshold, only for series with ``count`` values.
- ``median`` (the median of the last ``window`` values breaches): the median of the newest
  ``window`` values, only for series with ``window`` values.
- ``for_s`` becomes the rule's ``for`` (pending period, checked every evaluation interval).
- Series are the rule's ``group_by`` tags plus commune and district (the alert's labels);
  an empty ``group_by`` (the default) is every tag of the measurement but the
  ``ATTRIBUTE_TAGS``, as in the engine (``series_tags``): IPv4 and IPv6 rows stay apart.
- Values older than the engine's MAX_AGE_S (a day) are outside the query's range: a backlog
  pages nobody, in either place.
- Values the engine derives from a point (collector/alerts/derived.py: the radio reads'
  ``in_service_01``, ``below_4g_01``) are read from the newest read's ``registered`` field
  and technology tag (DERIVED_SQL), for rules on the newest read (count = 1).
- ``group = "commune"`` (the engine's commune incidents): the rule's alerts carry the label
  ``incident=commune``, which the notification policy routes to one notification per
  commune, every such rule together.
- Texts (title, summary, description) in the deployment's language (``Words``; the
  Vietnamese summaries are the rules' `summary_vi` (collector/alerts/texts.py), the English
  ones their `summary`).
- Not expressed: hysteresis and ``clear_count`` (Grafana resolves on the first evaluation
  where the condition no longer holds), the engine's arrival order (Grafana reads the
  newest values by timestamp), silences (Grafana has its own), ``inhibits`` (use a
  Grafana mute timing or inhibition in Alertmanager) and ``digest`` (Grafana pages
  those rules at its repeat interval).

Rules Grafana cannot or need not express are skipped with one of the SKIP_* reasons (listed
in the generated file's header and in deploy/central/README.md).
"""

# Texts from constants, rule fields checked by the rules file's schema ([a-z0-9_] names,
# numbers) and probe/commune names from overrides (escaped): S608 does not apply.
# ruff: noqa: S608
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from probefleet.collector.alerts.engine import MAX_AGE_S
from probefleet.collector.alerts.rules import ATTRIBUTE_TAGS, AlertsFile, Rule, threshold_of
from probefleet.collector.alerts.texts import SUMMARIES_VI
from probefleet.collector.inventory import TargetsFile
from probefleet.collector.points import COMMON_TAGS
from probefleet.collector.queries import quote_string, regex_literal

from grafana.i18n import Words
from grafana.model import DATASOURCE, DS_UID

JSON = dict[str, Any]
FOLDER: Final = "probefleet"
RECEIVER: Final = "probefleet-noc"
# The fields the engine feeds presence rules with (AlertEngine.tick): a presence rule on any
# other field never fires in the collector, so it must not in Grafana either.
PRESENCE_FIELDS: Final = frozenset({"online_01", "line_up_01", "last_test_ok_01"})
SKIP_DISABLED: Final = "disabled"
SKIP_NO_TARGET: Final = "the targets file sets no {target} for fixed or mobile"
SKIP_PRESENCE_FIELD: Final = (
    "the collector evaluates presence rules only on online_01, line_up_01, last_test_ok_01"
)
SKIP_DERIVED: Final = (
    "{field} is computed by the collector from the point (collector/alerts/derived.py): "
    "Grafana reads it only for a rule on the newest read (count = 1, consecutive)"
)
# A derived value (collector/alerts/derived.py) as InfluxQL, for a rule on the newest read:
# (the reads it is computed from, the breach of the newest of them, the value then). The
# newest read's technology tag is selected beside last("registered") and tested in the
# outer query; no row when the newest read does not breach, so the alert resolves. Not
# expressed: a read registered without any technology (in_service_01 is 0 in the
# collector; InfluxQL cannot test a missing tag's null there) — rare, a modem reports one.
DERIVED_SQL: Final[dict[str, tuple[str, str, str]]] = {
    "in_service_01": (
        "\"status\" = 'ok'",
        '"registered" = false OR "technology" = \'\'',
        'count("registered") - 1',  # 0: not in service
    ),
    "below_4g_01": (
        "\"status\" = 'ok' AND \"radio_technology\" != ''",
        '"technology" =~ /^(gsm|umts)$/',
        'count("registered")',  # 1: on 2G/3G
    ),
}
# The labels every alert carries (the engine adds them to the rule's group_by).
PLACE: Final = ("commune", "district")
# The tags each measurement has besides COMMON_TAGS (collector/README.md, data model): a
# rule's group_by names tags "those the point has", so a query groups only by these.
ROW_TAGS: Final[dict[str, frozenset[str]]] = {
    "throughput": frozenset({"method", "ip_version", "server"}),
    "ookla": frozenset({"method", "ip_version", "server"}),
    "latency": frozenset({"target", "method", "ip_version", "port"}),
    "dns": frozenset({"resolver", "name", "rrtype"}),
    "ipv6": frozenset({"check", "target"}),
    "service": frozenset({"service", "protocol"}),
    "health": frozenset(),
    # radio_technology and radio_operator are attribute tags: never a series' identity.
    "radio": frozenset({"radio_technology", "radio_operator"}),
}
# presence has only probe and the place tags; the collector's own points only its id.
PRESENCE_TAGS: Final = frozenset({"probe", "commune", "district", "province", "inventory"})
COLLECTOR_TAGS: Final = frozenset({"collector"})


@dataclass(frozen=True)
class Scope:
    """Which subjects one Grafana rule covers: the base rule, or an override's probe /
    commune (the base then leaves them out), as InfluxQL conditions."""

    probe: str | None
    commune: str | None
    conditions: tuple[str, ...]

    @property
    def label(self) -> str:
        parts = [f"probe {self.probe}" if self.probe else "", self.commune or ""]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class GrafanaRule:
    """One generated rule: ``query`` returns one value per series (``value``), compared with
    ``threshold`` by ``op`` (``lt`` / ``gt``)."""

    uid: str
    name: str  # the collector's rule name
    title: str
    access: str | None  # target-based rules: the access type
    scope: Scope
    rule: Rule  # with the scope's overrides applied
    threshold: float
    query: str

    @property
    def op(self) -> str:
        return "lt" if self.rule.op == "below" else "gt"


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


def _alternatives(values: list[str]) -> str:
    return "/^(" + "|".join(regex_literal(v) for v in values) + ")$/"


def scopes(alerts: AlertsFile, name: str) -> list[Scope]:
    """The base scope and one per override subject; together they cover every subject once.
    A probe override is crossed with the commune overrides (the probe may be in one of
    them: ``rule_for`` then applies both), so no inventory is needed."""
    probes = sorted({o.probe for o in alerts.overrides if o.rule == name and o.probe})
    communes = sorted({o.commune for o in alerts.overrides if o.rule == name and o.commune})
    not_probes = (f'"probe" !~ {_alternatives(probes)}',) if probes else ()
    not_communes = (f'"commune" !~ {_alternatives(communes)}',) if communes else ()
    out: list[Scope] = []
    for p in probes:
        is_p = f'"probe" = {quote_string(p)}'
        for c in communes:
            out.append(Scope(p, c, (is_p, f'"commune" = {quote_string(c)}')))
        out.append(Scope(p, None, (is_p, *not_communes)))
    for c in communes:
        out.append(Scope(None, c, (f'"commune" = {quote_string(c)}', *not_probes)))
    out.append(Scope(None, None, (*not_probes, *not_communes)))
    return out


def _tags_of(measurement: str) -> frozenset[str]:
    if measurement == "presence":
        return PRESENCE_TAGS
    if measurement == "collector":
        return COLLECTOR_TAGS
    if measurement in ROW_TAGS:
        return frozenset(COMMON_TAGS) | ROW_TAGS[measurement]
    # A measurement added to the rules file's schema: say where to add its tags.
    raise ValueError(f"grafana/alerts.py ROW_TAGS: no tags listed for {measurement!r}")


def group_tags(rule: Rule) -> list[str]:
    """The rule's group_by and the place, those the measurement has (the alert's labels)."""
    has = _tags_of(rule.measurement)
    group = rule.group_by or sorted(has - ATTRIBUTE_TAGS)
    return [t for t in dict.fromkeys([*group, *PLACE]) if t in has]


def _derived_ok(rule: Rule) -> bool:
    return rule.field in DERIVED_SQL and rule.mode == "consecutive" and rule.count == 1


def _derived_query(rule: Rule, scope: Scope) -> str:
    """The newest read of each series, its derived value if it breaches (DERIVED_SQL)."""
    reads, breach, value = DERIVED_SQL[rule.field]
    where = " AND ".join(["$timeFilter", *scope.conditions, reads])
    group = "GROUP BY " + ", ".join(f'"{t}"' for t in label_tags(rule))
    newest = (
        'SELECT last("registered") AS "registered", "radio_technology" AS "technology" '
        f'FROM "{rule.measurement}" WHERE {where} {group}'
    )
    return f'SELECT {value} AS "value" FROM ({newest}) WHERE {breach} {group}'


# What a rule's summary may name (the collector's lifecycle._PLACEHOLDER): a Grafana
# summary reads them from the alert's labels, so the query groups by those the
# measurement has too (operator: the inventory's, one per probe interface, so no series
# splits; the collector falls back to the modem's operator name without one).
SUMMARY_TAGS: Final = ("probe", "interface", "commune", "district", "operator")


def label_tags(rule: Rule) -> list[str]:
    """group_tags and the tags the rule's summary names (its alert's labels in Grafana)."""
    named = re.findall(r"\{(\w+)\}", rule.summary)
    has = _tags_of(rule.measurement)
    extra = [t for t in named if t in SUMMARY_TAGS and t in has]
    return list(dict.fromkeys([*group_tags(rule), *extra]))


def query_for(rule: Rule, access: str | None, scope: Scope) -> str:
    """One row per series: the value the collector would compare, if the series has enough
    values (see the module docstring)."""
    if _derived(rule):
        if not _derived_ok(rule):  # an override made it a rule Grafana cannot read
            raise ValueError(f"{rule.field}: {SKIP_DERIVED.format(field=rule.field)}")
        return _derived_query(rule, scope)
    n = rule.count if rule.mode == "consecutive" else rule.window
    # Consecutive: all of the last n breach <=> the one nearest the threshold does.
    nearest = "max" if rule.op == "below" else "min"
    reduce = "median" if rule.mode == "median" else nearest
    where = ["$timeFilter", *scope.conditions]
    if access is not None:
        where.append(f'"access" = {quote_string(access)}')
    if rule.measurement == "presence":
        where.append("\"state\" != 'never seen'")  # the engine ignores those probes
    group = "GROUP BY " + ", ".join(f'"{t}"' for t in label_tags(rule)) + " ORDER BY time DESC"
    newest = (
        f'SELECT "{rule.field}" AS "v" FROM "{rule.measurement}" WHERE {" AND ".join(where)} '
        f"{group} LIMIT {n}"
    )
    reduced = f'SELECT {reduce}("v") AS "value", count("v") AS "values" FROM ({newest}) {group}'
    return f'SELECT "value" FROM ({reduced}) WHERE "values" >= {n} {group}'


def _uid(*parts: str) -> str:
    uid = "pf-" + "-".join(p for p in parts if p).replace("_", "-").lower()
    uid = re.sub(r"[^a-z0-9-]+", "-", uid)
    if len(uid) > 40:
        uid = uid[:31] + "-" + hashlib.sha1(uid.encode()).hexdigest()[:8]  # noqa: S324
    return uid


def generate(alerts: AlertsFile, targets: TargetsFile) -> tuple[list[GrafanaRule], list[Skipped]]:
    """Every collector rule as Grafana rules (in the file's order), and those skipped."""
    out: list[GrafanaRule] = []
    skipped: list[Skipped] = []
    for name, base in alerts.rules.items():
        if base.measurement == "presence" and base.field not in PRESENCE_FIELDS:
            skipped.append(Skipped(name, SKIP_PRESENCE_FIELD))
            continue
        if _derived(base) and not _derived_ok(base):
            skipped.append(Skipped(name, SKIP_DERIVED.format(field=base.field)))
            continue
        made = 0
        for i, scope in enumerate(scopes(alerts, name)):
            rule = alerts.rule_for(name, probe=scope.probe, commune=scope.commune)
            if not rule.enabled:
                continue
            accesses: tuple[str | None, ...] = (None,) if rule.target is None else (
                "fixed", "mobile")  # fmt: skip
            for access in accesses:
                threshold = threshold_of(rule, targets, access)
                if threshold is None:
                    continue
                title = " ".join(
                    [
                        name,
                        *([access] if access else []),
                        *([f"({scope.label})"] if scope.label else []),
                    ]
                )
                out.append(
                    GrafanaRule(
                        uid=_uid(name, access or "", str(i) if scope.label else ""),
                        name=name,
                        title=title,
                        access=access,
                        scope=scope,
                        rule=rule,
                        threshold=threshold,
                        query=query_for(rule, access, scope),
                    )
                )
                made += 1
        if made == 0:
            if not base.enabled and not any(o.rule == name and o.enabled for o in alerts.overrides):
                skipped.append(Skipped(name, SKIP_DISABLED))
            elif base.target is not None:
                skipped.append(Skipped(name, SKIP_NO_TARGET.format(target=base.target)))
            else:
                skipped.append(Skipped(name, SKIP_DISABLED))
    return out, skipped


def _derived(rule: Rule) -> bool:
    """A rule on a value the collector computes (H2's collector/alerts/derived.py)."""
    try:
        from probefleet.collector.alerts.derived import DERIVED
    except ImportError:  # a collector without derived values
        return False
    return (rule.measurement, rule.field) in DERIVED


def _labels_template(text: str) -> str:
    """The collector's "{commune}" placeholders as Grafana's label templates."""
    return re.sub(r"\{(\w+)\}", r"{{ $labels.\1 }}", text)


def duration(seconds: float) -> str:
    """Grafana's duration text: whole seconds, rounded up, in the largest exact unit."""
    s = math.ceil(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def _escape(text: str) -> str:
    """Grafana expands $NAME in provisioning files from the environment; $$ is a literal $."""
    return text.replace("$", "$$")


def _influxql(ref: str, query: str, window_s: int) -> JSON:
    return {
        "refId": ref,
        "relativeTimeRange": {"from": window_s, "to": 0},
        "datasourceUid": DS_UID,
        "model": {
            "refId": ref,
            "datasource": DATASOURCE,
            "rawQuery": True,
            "query": query,
            "resultFormat": "time_series",
            "intervalMs": 60000,
            "maxDataPoints": 43200,
        },
    }


def _expr(ref: str, model: JSON) -> JSON:
    return {
        "refId": ref,
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": "__expr__",
        "model": {"refId": ref, "datasource": {"type": "__expr__", "uid": "__expr__"}, **model},
    }


def rule_json(g: GrafanaRule, w: Words) -> JSON:
    """One Grafana rule, its texts in ``w``'s language (title, summary, description)."""
    r = g.rule
    op = {"below": w("dưới", "below"), "above": w("trên", "above")}[r.op]
    how = (
        w(
            f"{r.count} giá trị gần nhất đều {op} {w.num(g.threshold)}",
            f"the last {r.count} values all {r.op} {g.threshold:g}",
        )
        if r.mode == "consecutive"
        else w(
            f"trung vị của {r.window} giá trị gần nhất {op} {w.num(g.threshold)}",
            f"the median of the last {r.window} values {r.op} {g.threshold:g}",
        )
    )
    labels = {"team": "noc", "severity": r.severity, "source": "probefleet", "rule": g.name}
    if g.access:
        labels["access"] = g.access
    if r.group == "commune":
        # One notification per commune incident (the collector's group = "commune"): the
        # notification policy's route for this label groups by commune only.
        labels["incident"] = "commune"
    access = {"fixed": w("cố định", "fixed"), "mobile": w("di động", "mobile")}
    scope = ""
    if g.scope.label:
        probe = f"{w('thiết bị đo', 'probe')} {g.scope.probe}" if g.scope.probe else ""
        scope = "(" + ", ".join(p for p in (probe, g.scope.commune or "") if p) + ")"
    title = " ".join(
        [g.name, *([access[g.access]] if g.access else []), *([scope] if scope else [])]
    )
    # The rule's own Vietnamese text (the rules file's `summary_vi`, for the built-in rules
    # collector/alerts/texts.py), as the collector's notifications say it.
    vi = r.summary_vi or SUMMARIES_VI.get(g.name, "")
    summary = (vi if w.lang == "vi" else "") or r.summary or g.name
    return {
        "uid": g.uid,
        "title": title,
        "condition": "ALERT",
        "data": [
            _influxql("V", g.query, int(MAX_AGE_S)),
            _expr(
                "VALUE",
                {
                    "type": "reduce",
                    "expression": "V",
                    "reducer": "last",
                    "settings": {"mode": "dropNN"},
                },
            ),
            _expr(
                "ALERT",
                {
                    "type": "threshold",
                    "expression": "VALUE",
                    "conditions": [{"evaluator": {"type": g.op, "params": [g.threshold]}}],
                },
            ),
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        "for": duration(r.for_s),
        "isPaused": False,
        "labels": labels,
        "annotations": {
            "summary": _labels_template(summary),
            "description": "{{ $labels.commune }} ({{ $labels.probe }}): "
            f"{how} ({{{{ $values.VALUE }}}}).",
            "threshold": f"{g.threshold:g}",
        },
    }


def escape_all(value: Any) -> Any:
    """Every string in ``value`` with $ doubled: queries ($timeFilter), math ($VALUE) and
    templates ({{ $labels.x }}) must reach Grafana as written, not as environment lookups."""
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, dict):
        return {k: escape_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_all(v) for v in value]
    return value


def unescape_all(value: Any) -> Any:
    """What Grafana reads after its environment expansion (for tests and tools)."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {k: unescape_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unescape_all(v) for v in value]
    return value


def rules_file(alerts: AlertsFile, targets: TargetsFile, w: Words | None = None) -> JSON:
    """The provisioning file, $ escaped (see escape_all); texts in ``w``'s language
    (default Vietnamese, the province's)."""
    w = w or Words("vi")
    rules, _skipped = generate(alerts, targets)
    doc: JSON = escape_all(
        {
            "apiVersion": 1,
            "groups": [
                {
                    "orgId": 1,
                    "name": "probefleet",
                    "folder": FOLDER,
                    "interval": "1m",
                    "rules": [rule_json(r, w) for r in rules],
                }
            ],
        }
    )
    return doc


def contact_points_file(alerts: AlertsFile) -> JSON:
    """E-mail and a generic webhook; addresses and URL from the environment (compose.yaml).
    The repeat interval is the collector's ``notify.renotify_min_s``: one storm guard."""
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": RECEIVER,
                "receivers": [
                    {
                        "uid": "probefleet-email",
                        "type": "email",
                        "settings": {
                            "addresses": "${PROBEFLEET_ALERT_EMAILS}",
                            "singleEmail": True,
                        },
                    },
                    {
                        "uid": "probefleet-webhook",
                        "type": "webhook",
                        "settings": {
                            "url": "${PROBEFLEET_ALERT_WEBHOOK_URL}",
                            "httpMethod": "POST",
                        },
                    },
                ],
            }
        ],
        "policies": [
            {
                "orgId": 1,
                "receiver": RECEIVER,
                # One notification per commune and rule, however many probes/series breach.
                "group_by": ["grafana_folder", "alertname", "commune"],
                "group_wait": "1m",
                "group_interval": "10m",
                "repeat_interval": duration(alerts.notify.renotify_min_s),
                # The collector's commune incidents (group = "commune"): every such rule's
                # alerts at one commune in one notification, as the collector sends them.
                "routes": [
                    {
                        "receiver": RECEIVER,
                        "object_matchers": [["incident", "=", "commune"]],
                        "group_by": ["grafana_folder", "commune"],
                        # The collector's wait for the incident's other alerts (at least
                        # Grafana's 1 s).
                        "group_wait": duration(max(1.0, alerts.notify.group_wait_s)),
                    }
                ],
            }
        ],
    }
