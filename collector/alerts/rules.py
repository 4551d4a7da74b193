"""The alert rules file (TOML): rules as data, overrides, silences, notifiers.

Loaded with :func:`load_alerts` (errors name the key and the file, all at once, like every
config here). Sample: ``config/alerts.sample.toml``. A rule watches one **field of one
InfluxDB measurement** exactly as the collector writes it (collector/README.md), so the
Grafana alert rules can be generated from the same file: ``measurement``, ``field``, ``op``
and the threshold — a number, or ``target = "<key>"``, read from the targets file for the
result's access type (fixed / mobile). One source of truth for both.

Usage::

    alerts = load_alerts(path)
    rule = alerts.rule_for("download_below_target", probe="p-1", commune="Tân Phú")
    threshold = threshold_of(rule, targets, access="fixed")   # None: no threshold applies
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from probefleet.collector.alerts.derived import RADIO_FIELDS
from probefleet.collector.alerts.texts import SUMMARIES_VI, Language
from probefleet.collector.inventory import TargetsFile
from probefleet.collector.points import COMMON_TAGS
from probefleet.core import configkit, wire
from probefleet.core.configkit import Section

Measurement = Literal[
    "throughput", "ookla", "latency", "dns", "ipv6", "service", "health", "presence",
    "collector", "radio",
]  # fmt: skip
TargetKey = Literal["download_mbps", "upload_mbps", "latency_ms", "loss_pct"]
Count = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Secs = Annotated[float, msgspec.Meta(ge=0, le=30 * 86_400)]
FieldName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,64}\Z")]
_RFC3339: Final = r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)\Z"
# Tags of the data model (collector.points.COMMON_TAGS) that describe a probe or a result
# but never tell two series of one measurement apart: an alert's subject is every *other*
# tag its point has (probe, interface and the kind's row tags: target, method, ip_version,
# port, service, check ...), so the IPv4 and IPv6 rows of one target are two subjects.
# `server` too: a throughput/ookla run picks its server each time (the series of one link
# would otherwise never reach `count` values).
# The radio context's tags too (issue 21): a mobile link's technology and operator change
# under one series (LTE -> 3G is the same link falling back, not a new subject).
ATTRIBUTE_TAGS: Final = (frozenset(COMMON_TAGS) - {"probe", "interface"}) | {
    "server",
    "radio_technology",
    "radio_operator",
}
# Empty group_by = every series tag of the point (see series_tags).
DEFAULT_GROUP_BY: Final[tuple[str, ...]] = ()
Digest = Literal["", "daily"]
# "commune": the rule's alerts at one commune that fire within notify.group_window_s of
# each other are one incident, one notification (collector.alerts.incidents).
Group = Literal["", "commune"]
# Not rule names: what notifications of incidents and digests say in their `rule`.
RESERVED_NAMES: Final = frozenset({"incident", "digest"})


class Rule(Section, frozen=True, kw_only=True):
    """One rule; every key but ``measurement`` and ``field`` has a default."""

    measurement: Measurement
    field: FieldName
    op: Literal["below", "above"]
    # The threshold: a number, or a key of the targets file's [fixed]/[mobile] table (the
    # rule then applies only to points whose access type has that target).
    threshold: float | None = None
    target: TargetKey | None = None
    # A target-based threshold is the target times this (0.8: fire below 80 % of it).
    target_factor: Annotated[float, msgspec.Meta(gt=0, le=10)] = 1.0
    # "consecutive": the last `count` values all breach. "median": the median of the last
    # `window` values breaches (robust to one bad test either way).
    mode: Literal["consecutive", "median"] = "consecutive"
    count: Count = 3
    window: Count = 5
    # Hysteresis: to resolve, values must be this far (%) on the good side of the threshold,
    # `clear_count` times in a row (consecutive) / for the median (median mode).
    hysteresis_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0
    clear_count: Count = 3
    # The breach must also have lasted this long (presence: "offline longer than T").
    for_s: Secs = 0.0
    severity: Literal["info", "warning", "critical"] = "warning"
    enabled: bool = True
    group_by: list[FieldName] = msgspec.field(default_factory=lambda: list(DEFAULT_GROUP_BY))
    summary: Annotated[str, msgspec.Meta(max_length=300)] = ""
    # The same in Vietnamese, used when notify.language = "vi" (empty: `summary`).
    summary_vi: Annotated[str, msgspec.Meta(max_length=300)] = ""
    # While this rule fires for a probe, that probe's other rules are not evaluated on
    # values measured meanwhile (probe_offline: one outage, one page).
    inhibits: bool = False
    # "daily": a permanent condition: its firings and resolutions are not notified one by
    # one but listed in one digest a day (notify.digest_hour_utc).
    digest: Digest = ""
    group: Group = ""


class Override(Section, frozen=True, kw_only=True):
    """Changes to one rule for one commune or one probe (a probe's beats its commune's)."""

    rule: FieldName
    probe: wire.ProbeId | None = None
    commune: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    enabled: bool | None = None
    threshold: float | None = None
    target_factor: Annotated[float, msgspec.Meta(gt=0, le=10)] | None = None
    count: Count | None = None
    window: Count | None = None
    hysteresis_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    clear_count: Count | None = None
    for_s: Secs | None = None
    severity: Literal["info", "warning", "critical"] | None = None
    digest: Digest | None = None
    group: Group | None = None


class Silence(Section, frozen=True, kw_only=True):
    """A maintenance window: matching alerts still fire and are recorded, nobody is paged.
    Empty matchers match everything."""

    # RFC 3339 with a zone, quoted: "2025-11-08T01:00:00Z".
    start: Annotated[str, msgspec.Meta(pattern=_RFC3339)]
    end: Annotated[str, msgspec.Meta(pattern=_RFC3339)]
    probe: wire.ProbeId | None = None
    commune: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    rule: FieldName | None = None
    comment: Annotated[str, msgspec.Meta(max_length=300)] = ""

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.start)

    @property
    def end_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.end)

    def matches(self, rule: str, probe: str | None, commune: str | None, at: dt.datetime) -> bool:
        return (
            self.start_at <= at < self.end_at
            and (self.probe is None or self.probe == probe)
            and (self.commune is None or self.commune == commune)
            and (self.rule is None or self.rule == rule)
        )


class Webhook(Section, frozen=True, kw_only=True):
    # Empty: off. Secret (a chat bot's URL holds its token): env PROBEFLEET_WEBHOOK_URL wins.
    url: str = ""
    url_file: str = ""
    # "json": our own document; "telegram": Bot API sendMessage; "slack": {"text": ...}.
    template: Literal["json", "telegram", "slack"] = "json"
    chat_id: str = ""  # telegram only
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0


class Email(Section, frozen=True, kw_only=True):
    host: str = ""  # empty: off
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    starttls: bool = True
    ca_file: str = ""  # empty: the system's CA store
    username: str = ""
    # Secret: env PROBEFLEET_SMTP_PASSWORD or PROBEFLEET_SMTP_PASSWORD_FILE win.
    password: str = ""
    password_file: str = ""
    sender: str = "probefleet@localhost"
    to: list[str] = []
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 20.0


class MqttAlerts(Section, frozen=True, kw_only=True):
    # Active alerts, retained, on <root>/_alerts/<probe>/<rule>[/<row>]; cleared on resolve.
    enabled: bool = True


class Notify(Section, frozen=True, kw_only=True):
    # A subject that fired and was notified is not notified again for this long (a storm
    # guard on top of the count and hysteresis): its new firings are recorded only.
    renotify_min_s: Secs = 3600.0
    # Fleet-wide cap on notifications per hour; beyond it they are recorded, not sent.
    max_per_hour: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 60
    # Delivery: retried with back-off up to retry_max_s apart, for at most give_up_after_s.
    retry_max_s: Annotated[float, msgspec.Meta(ge=1, le=86_400)] = 300.0
    give_up_after_s: Annotated[float, msgspec.Meta(ge=10, le=30 * 86_400)] = 86_400.0
    # When the daily digest of `digest = "daily"` rules goes out (01 UTC = 08:00 in Vietnam).
    digest_hour_utc: Annotated[int, msgspec.Meta(ge=0, le=23)] = 1
    # Commune incidents (`group = "commune"`): the first alert's notification waits this
    # long for the others of the same incident (the other probes of a line going down);
    # an alert joins its commune's open incident if it fires within group_window_s of the
    # incident's first.
    group_wait_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 120.0
    group_window_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 3600.0
    # The notifications' language (summaries and their frame): Vietnamese for the
    # province's own deployment; "en" for engineers who do not read it.
    language: Language = "vi"
    webhook: Webhook = msgspec.field(default_factory=Webhook)
    email: Email = msgspec.field(default_factory=Email)
    mqtt: MqttAlerts = msgspec.field(default_factory=MqttAlerts)


def _r(**kw: Any) -> Rule:
    return Rule(**kw)


_RULES: Final[dict[str, Rule]] = {
    "download_below_target": _r(measurement="throughput", field="download_mbps", op="below",
                                target="download_mbps", hysteresis_pct=5.0, group="commune",
                                summary="download below the plan's target"),
    "upload_below_target": _r(measurement="throughput", field="upload_mbps", op="below",
                              target="upload_mbps", hysteresis_pct=5.0, group="commune",
                              summary="upload below the plan's target"),
    "latency_high": _r(measurement="latency", field="rtt_median_ms", op="above", threshold=100.0,
                       mode="median", window=5, hysteresis_pct=10.0, group="commune",
                       summary="median round-trip time too high"),
    "jitter_high": _r(measurement="latency", field="jitter_ms", op="above", threshold=30.0,
                      mode="median", window=5, hysteresis_pct=10.0, group="commune",
                      summary="jitter too high"),
    "loss_high": _r(measurement="latency", field="loss_pct", op="above", threshold=5.0,
                    mode="median", window=5, group="commune", summary="packet loss too high"),
    "ipv6_lost": _r(measurement="ipv6", field="works_01", op="below", threshold=1.0,
                    digest="daily", summary="IPv6 does not work end to end"),
    "service_down": _r(measurement="service", field="up_01", op="below", threshold=1.0,
                       severity="critical", group="commune",
                       summary="service unreachable (e.g. the provincial data network)"),
    "probe_offline": _r(measurement="presence", field="online_01", op="below", threshold=1.0,
                        count=1, clear_count=1, for_s=900.0, severity="critical",
                        group_by=["probe"], inhibits=True, group="commune",
                        summary="probe offline"),
    # Issue 21, from the `radio` kind (collector.alerts.derived): for_s is the N minutes.
    "mobile_service_lost": _r(measurement="radio", field="in_service_01", op="below",
                              threshold=1.0, count=1, clear_count=1, for_s=600.0,
                              severity="critical", group="commune",
                              summary="mobile service lost at {commune} ({operator})"),
    "radio_fallback": _r(measurement="radio", field="below_4g_01", op="above", threshold=0.5,
                         count=1, clear_count=1, for_s=1800.0, group="commune",
                         summary="mobile fallback below 4G (2G/3G) at {commune} ({operator})"),
    # The collector itself behind the broker's queue (collector.lag): while it breaches,
    # probe_offline is not fed the probes' silence (their results wait in that queue).
    "collector_lag": _r(measurement="collector", field="lag_s", op="above", threshold=120.0,
                        count=1, clear_count=1, hysteresis_pct=50.0, for_s=30.0,
                        group_by=["collector"],
                        summary="the collector is behind: results and presence wait in the "
                                "broker's queue"),
    "spool_growing": _r(measurement="health", field="spool_depth", op="above", threshold=500.0,
                        summary="results piling up on the probe"),
    "disk_full": _r(measurement="health", field="disk_full_01", op="above", threshold=0.5,
                    count=1, clear_count=1, severity="critical",
                    summary="the probe's disk is full: results wait in memory"),
    "data_budget_nearly_spent": _r(measurement="health", field="budget_used_pct", op="above",
                                   threshold=90.0, count=1, clear_count=1,
                                   summary="monthly data budget nearly spent"),
    "temperature_high": _r(measurement="health", field="temperature_c", op="above",
                           threshold=75.0, hysteresis_pct=5.0, summary="board too hot"),
}  # fmt: skip
# Every built-in rule's Vietnamese summary, from the one table (texts.py).
DEFAULT_RULES: Final[dict[str, Rule]] = {
    name: msgspec.structs.replace(rule, summary_vi=SUMMARIES_VI.get(name, ""))
    for name, rule in _RULES.items()
}


class AlertsFile(Section, frozen=True, kw_only=True):
    # Listing [rules.*] replaces this whole built-in set (the sample lists it).
    rules: dict[FieldName, Rule] = msgspec.field(default_factory=lambda: dict(DEFAULT_RULES))
    overrides: list[Override] = []
    silences: list[Silence] = []
    notify: Notify = msgspec.field(default_factory=Notify)

    def resolve(self, env: dict[str, str], problems: list[str], base: Path) -> AlertsFile:
        for name, rule in self.rules.items():
            if (rule.threshold is None) == (rule.target is None):
                problems.append(f"rules.{name}: give either threshold or target")
        for name, rule in self.rules.items():
            if name in RESERVED_NAMES:
                problems.append(
                    f"rules.{name}: a reserved name (the notifications of commune incidents "
                    "and of the daily digest are called so): choose another"
                )
            if rule.measurement == "radio" and rule.field not in RADIO_FIELDS:
                known = ", ".join(sorted(RADIO_FIELDS))
                problems.append(
                    f"rules.{name}.field: the radio measurement has no number {rule.field!r}"
                    f" (one of: {known})"
                )
        for i, o in enumerate(self.overrides):
            if o.rule not in self.rules:
                problems.append(f"overrides[{i}].rule: no rule named {o.rule!r}")
            if (o.probe is None) == (o.commune is None):
                problems.append(f"overrides[{i}]: give either probe or commune")
        for i, s in enumerate(self.silences):
            try:
                if s.end_at <= s.start_at:
                    problems.append(f"silences[{i}]: end is not after start")
            except ValueError as exc:
                problems.append(f"silences[{i}]: {exc}")
        url = configkit.read_secret(
            key="notify.webhook.url",
            value=self.notify.webhook.url,
            file_value=self.notify.webhook.url_file,
            env_name="PROBEFLEET_WEBHOOK_URL",
            env=env,
            base=base,
            problems=problems,
        )
        if url and not url.startswith(("http://", "https://")):
            problems.append("notify.webhook.url: must start with http:// or https://")
        password = configkit.read_secret(
            key="notify.email.password",
            value=self.notify.email.password,
            file_value=self.notify.email.password_file,
            env_name="PROBEFLEET_SMTP_PASSWORD",
            env=env,
            base=base,
            problems=problems,
        )
        if self.notify.email.host and not self.notify.email.to:
            problems.append("notify.email.to: give at least one address when host is set")
        notify = msgspec.structs.replace(
            self.notify,
            webhook=msgspec.structs.replace(self.notify.webhook, url=url),
            email=msgspec.structs.replace(self.notify.email, password=password),
        )
        return msgspec.structs.replace(self, notify=notify)

    def rule_for(self, name: str, *, probe: str | None, commune: str | None) -> Rule:
        """The rule with the commune's, then the probe's overrides applied."""
        rule = self.rules[name]
        for level in ("commune", "probe"):
            for o in self.overrides:
                if o.rule != name:
                    continue
                if (level == "commune" and o.commune is not None and o.commune == commune) or (
                    level == "probe" and o.probe is not None and o.probe == probe
                ):
                    changes = {
                        k: v
                        for k in ("enabled", "threshold", "target_factor", "count", "window",
                                  "hysteresis_pct", "clear_count", "for_s", "severity",
                                  "digest", "group")
                        if (v := getattr(o, k)) is not None
                    }  # fmt: skip
                    if "threshold" in changes:
                        changes["target"] = None
                    rule = msgspec.structs.replace(rule, **changes)
        return rule


def series_tags(rule: Rule, tags: dict[str, str]) -> list[str]:
    """The tags that make a point's alert subject: the rule's group_by, or (empty) every
    tag of the point but the ATTRIBUTE_TAGS, in name order."""
    if rule.group_by:
        return list(rule.group_by)
    return sorted(k for k in tags if k not in ATTRIBUTE_TAGS)


def threshold_of(rule: Rule, targets: TargetsFile | None, access: str | None) -> float | None:
    """The number a value is compared with; None when the rule's target does not apply."""
    if rule.threshold is not None:
        return rule.threshold
    if rule.target is None or targets is None:
        return None
    table = targets.for_access(access)
    value = getattr(table, rule.target, None) if table is not None else None
    return None if value is None else float(value) * rule.target_factor


def load_alerts(path: Path, env: dict[str, str] | None = None) -> AlertsFile:
    """Read and check an alerts file; ConfigError lists every problem with its key."""
    return configkit.load(path, AlertsFile, env=env)
