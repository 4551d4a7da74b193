"""Grafana-managed alert rules, contact points and the notification policy.

Thresholds come from the targets file (``collector.inventory.load_targets``): the same file,
through the same loader, that gives every throughput point its ``target_download_mbps`` — so
the dashboards, the collector and these rules cannot disagree. A target the file leaves out
(upload, latency, loss, IPv6) produces no rule.

One bad test must not page anyone: a rule looks at the median of a window, needs a minimum
number of tests in it, and must hold for a while (``for``) before it fires.
"""

# Texts from constants and numbers only: S608 does not apply.
# ruff: noqa: S608
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from collector.inventory import TargetsFile
from grafana.model import DATASOURCE, DS_UID

JSON = dict[str, Any]
FOLDER: Final = "probefleet"
RECEIVER: Final = "probefleet-noc"
WINDOW_S: Final = 6 * 3600  # the median is taken over this window
MIN_TESTS: Final = 3  # ... of at least this many tests
HOLD: Final = "2h"  # ... and must stay below target this long
OFFLINE_AFTER: Final = "15m"  # a probe silent this long (no health report) is offline
_OK_TRUSTED: Final = "\"status\" = 'ok' AND \"time_source\" != 'estimated'"


@dataclass(frozen=True)
class Rule:
    """One threshold rule: ``value_query`` reduced to its last value, compared with
    ``threshold`` by ``op`` (``lt``/``gt``), for series having ``MIN_TESTS`` in ``count_query``."""

    uid: str
    title: str
    value_query: str
    count_query: str
    op: str
    threshold: float
    summary: str
    hold: str = HOLD
    window_s: int = WINDOW_S


def _throughput(field: str, access: str) -> tuple[str, str]:
    where = f"WHERE $timeFilter AND {_OK_TRUSTED} AND \"access\" = '{access}'"
    group = ' GROUP BY "commune", "operator", "probe"'
    value = f'SELECT median("{field}") AS "median_mbps" FROM "throughput" {where}{group}'
    count = f'SELECT count("{field}") AS "tests" FROM "throughput" {where}{group}'
    return value, count


def threshold_rules(targets: TargetsFile) -> list[Rule]:
    """Every rule whose threshold the targets file sets, in a stable order."""
    rules: list[Rule] = []
    for access in ("fixed", "mobile"):
        t = targets.for_access(access)
        assert t is not None
        value, count = _throughput("download_mbps", access)
        rules.append(
            Rule(
                f"probefleet-download-{access}",
                f"Download below the {access} target",
                value,
                count,
                "lt",
                t.download_mbps,
                f"Median {access} download over 6 h below the plan's {t.download_mbps:g} Mbit/s",
            )
        )
        if t.upload_mbps is not None:
            value, count = _throughput("upload_mbps", access)
            rules.append(
                Rule(
                    f"probefleet-upload-{access}",
                    f"Upload below the {access} target",
                    value,
                    count,
                    "lt",
                    t.upload_mbps,
                    f"Median {access} upload over 6 h below {t.upload_mbps:g} Mbit/s",
                )
            )
        where = f"WHERE $timeFilter AND {_OK_TRUSTED} AND \"access\" = '{access}'"
        group = ' GROUP BY "commune", "operator", "probe", "target"'
        count = f'SELECT count("sent") AS "runs" FROM "latency" {where}{group}'
        if t.latency_ms is not None:
            rules.append(
                Rule(
                    f"probefleet-latency-{access}",
                    f"Latency above the {access} limit",
                    'SELECT median("rtt_median_ms") AS "rtt_median_ms" '
                    f'FROM "latency" {where}{group}',
                    count,
                    "gt",
                    t.latency_ms,
                    f"Median {access} round-trip time over 6 h above {t.latency_ms:g} ms",
                )
            )
        if t.loss_pct is not None:
            rules.append(
                Rule(
                    f"probefleet-loss-{access}",
                    f"Packet loss above the {access} limit",
                    'SELECT 100 * (1 - sum("received") / sum("sent")) AS "loss_pct" '
                    f'FROM "latency" {where}{group}',
                    count,
                    "gt",
                    t.loss_pct,
                    f"{access} packet loss over 6 h above {t.loss_pct:g} %",
                )
            )
    if targets.ipv6.works_pct is not None:
        where = "WHERE $timeFilter AND \"status\" = 'ok' AND \"check\" = ''"
        group = ' GROUP BY "commune", "operator", "probe"'
        rules.append(
            Rule(
                "probefleet-ipv6-works",
                "IPv6 lost",
                f'SELECT 100 * mean("works_01") AS "works_pct" FROM "ipv6" {where}{group}',
                f'SELECT count("works_01") AS "runs" FROM "ipv6" {where}{group}',
                "lt",
                targets.ipv6.works_pct,
                f"IPv6 works in less than {targets.ipv6.works_pct:g} % of runs over 6 h",
            )
        )
    return rules


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


def _reduce(ref: str, of: str) -> JSON:
    return _expr(
        ref, {"type": "reduce", "expression": of, "reducer": "last", "settings": {"mode": "dropNN"}}
    )


def _rule_json(rule: Rule) -> JSON:
    sign = "<" if rule.op == "lt" else ">"
    condition = f"$VALUE {sign} {rule.threshold!r} && $COUNT >= {MIN_TESTS}"
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "ALERT",
        "data": [
            _influxql("V", rule.value_query, rule.window_s),
            _influxql("N", rule.count_query, rule.window_s),
            _reduce("VALUE", "V"),
            _reduce("COUNT", "N"),
            _expr("ALERT", {"type": "math", "expression": condition}),
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        "for": rule.hold,
        "isPaused": False,
        "labels": {"team": "noc", "severity": "warning", "source": "probefleet"},
        "annotations": {
            "summary": rule.summary,
            "description": "{{ $labels.commune }} ({{ $labels.operator }}, probe "
            "{{ $labels.probe }}): {{ $values.VALUE }} for at least "
            f"{rule.hold}, threshold {rule.threshold:g}.",
            "threshold": f"{rule.threshold:g}",
        },
    }


def offline_rule() -> JSON:
    """A probe that has reported in the last day but not in the last OFFLINE_AFTER."""
    query = (
        'SELECT count("uptime_s") AS "reports" FROM "health" '
        "WHERE $timeFilter AND \"interface\" = '' "
        f'GROUP BY time({OFFLINE_AFTER}), "probe", "commune" fill(0)'
    )
    return {
        "uid": "probefleet-probe-offline",
        "title": "Probe silent",
        "condition": "ALERT",
        "data": [
            _influxql("V", query, 86400),
            _reduce("VALUE", "V"),
            _expr(
                "ALERT",
                {
                    "type": "threshold",
                    "expression": "VALUE",
                    "conditions": [{"evaluator": {"type": "lt", "params": [1]}}],
                },
            ),
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        # The current bucket can be empty for a minute after it starts: hold it longer.
        "for": "10m",
        "isPaused": False,
        "labels": {"team": "noc", "severity": "critical", "source": "probefleet"},
        "annotations": {
            "summary": f"No health report from the probe for {OFFLINE_AFTER}",
            "description": "{{ $labels.commune }}: probe {{ $labels.probe }} is silent "
            "(power, line or agent down).",
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


def rules_file(targets: TargetsFile) -> JSON:
    """The provisioning file, $ escaped (see escape_all)."""
    doc: JSON = escape_all(
        {
            "apiVersion": 1,
            "groups": [
                {
                    "orgId": 1,
                    "name": "probefleet",
                    "folder": FOLDER,
                    "interval": "1m",
                    "rules": [*(_rule_json(r) for r in threshold_rules(targets)), offline_rule()],
                }
            ],
        }
    )
    return doc


def contact_points_file() -> JSON:
    """E-mail and a generic webhook; addresses and URL from the environment (compose.yaml)."""
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
                "repeat_interval": "12h",
            }
        ],
    }
