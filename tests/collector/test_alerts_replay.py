"""A simulated week replayed through the alert engine: notifications per incident, with the
rules as they were (one subject for a target's IPv4 and IPv6 rows, no inhibition, no
digest), as they were before commune incidents, and as they are. Run with ``-s`` to see the
counts."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from probefleet.collector.alerts.engine import AlertEngine
from probefleet.collector.alerts.outbox import Outbox
from probefleet.collector.alerts.rules import DEFAULT_RULES, AlertsFile, Notify, Rule
from probefleet.collector.alerts.texts import Language
from probefleet.collector.fleet import FleetRow
from probefleet.collector.inventory import Enrichment, load_inventory, load_targets
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.collector.presence import State
from probefleet.collector.statedb import StateDB

from tests.collector.helpers import ROOT

START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp()  # a Monday, 00:00 UTC
DAYS = 7
TICK_S = 300.0  # presence
RUN_S = 900.0  # latency, ipv6 and service results
OUTAGE = (START + 2 * 86_400 + 10 * 3600, START + 2 * 86_400 + 16 * 3600)  # p-line, day 3
# Phú Lâm's upstream line (day 5, 4 h): its three probes go down together.
COMMUNE_OUTAGE = (START + 4 * 86_400 + 9 * 3600, START + 4 * 86_400 + 13 * 3600)
PHU_LAM = ("p-pl-1", "p-pl-2", "p-pl-3")
TARGETS = ("vnexpress.net", "dns.google")
# Before issue 19: the old DEFAULT_GROUP_BY (no ip_version), no inhibition, no digest.
OLD_GROUP_BY = ["probe", "interface", "target", "service", "check"]


def before_rules() -> dict[str, Rule]:
    return {
        name: msgspec.structs.replace(
            r, group_by=r.group_by or OLD_GROUP_BY, inhibits=False, digest="", group=""
        )
        for name, r in DEFAULT_RULES.items()
    }


def before_incidents() -> dict[str, Rule]:
    """Issue 19's first part only: no commune incidents."""
    return {name: msgspec.structs.replace(r, group="") for name, r in DEFAULT_RULES.items()}


def _commune(probe: str) -> str:
    return "Phú Lâm" if probe in PHU_LAM else "Tân Phú"


def _down(probe: str, at_s: float) -> bool:
    if probe in PHU_LAM:
        return COMMUNE_OUTAGE[0] <= at_s < COMMUNE_OUTAGE[1]
    return probe == "p-line" and OUTAGE[0] <= at_s < OUTAGE[1]


def _point(kind: str, probe: str, at_s: float, tags: dict[str, str], **fields: Any) -> Point:
    base = {"probe": probe, "interface": "eth0", "access": "fixed", "commune": _commune(probe)}
    values: dict[str, FieldValue | None] = dict(fields)
    return Point.build(kind, {**base, **tags}, values, int(at_s * 1e9))


def _results(probe: str, at_s: float) -> list[Point]:
    """One run of latency, ipv6 and service on ``probe``, measured at ``at_s``."""
    down = _down(probe, at_s)
    hour = (at_s - START) % 86_400 / 3600
    out = []
    # p-v6dead's CPE drops IPv6: it works for an hour after each renewal, every 6 hours.
    v6_works = not down and (probe != "p-v6dead" or hour % 6 < 1)
    versions = ("4",) if probe == "p-v6dead" else ("4", "6")  # no AAAA used without IPv6
    for target in TARGETS:
        for ipv in versions:
            # p-longv6: its IPv6 route to one target is long (a steady 130 ms, v4 20 ms).
            rtt = 130.0 if (probe == "p-longv6" and ipv == "6" and target == TARGETS[1]) else 20.0
            tags = {"target": target, "method": "icmp", "ip_version": ipv}
            if down:
                out.append(_point("latency", probe, at_s, tags, loss_pct=100.0))
            else:
                out.append(_point("latency", probe, at_s, tags, loss_pct=0.0, rtt_median_ms=rtt,
                                  jitter_ms=2.0))  # fmt: skip
    for check in ("global_address", "default_route", "tcp"):
        out.append(_point("ipv6", probe, at_s, {"check": check}, works_01=int(v6_works)))
    out.append(_point("service", probe, at_s, {"service": "data_network", "protocol": "https"},
                      up_01=int(not down)))  # fmt: skip
    return out


def _row(probe: str, online: bool) -> FleetRow:
    state: State = "online" if online else "offline"
    return FleetRow(probe, _commune(probe), None, None, state, 0.0, online, {}, online, None, None,
                    True, None)  # fmt: skip


PROBES = ("p-line", "p-longv6", "p-v6dead", "p-quiet", *PHU_LAM)


def _week() -> Iterator[tuple[float, list[FleetRow], list[tuple[Point, float]]]]:
    """(now, presence rows, points arriving now): results arrive when measured, except
    those measured during an outage, which each probe spools and sends when its line is
    back."""
    spooled: dict[str, list[tuple[Point, float]]] = {}
    t = START
    while t < START + DAYS * 86_400:
        arriving: list[tuple[Point, float]] = []
        if (t - START) % RUN_S == 0:
            for probe in PROBES:
                points = [(p, t) for p in _results(probe, t)]
                if _down(probe, t):
                    spooled.setdefault(probe, []).extend(points)
                else:
                    arriving.extend(points)
        for probe in PROBES:
            if not _down(probe, t) and spooled.get(probe):
                arriving = spooled.pop(probe) + arriving
        rows = [_row(p, not _down(p, t)) for p in PROBES]
        yield t, rows, arriving
        t += TICK_S


def replay(rules: dict[str, Rule], tmp: Path) -> Counter[tuple[str, str]]:
    """Notifications per (rule, probe) over the week: ("digest", "*") for digests,
    ("incident", <commune>) for commune incidents of several alerts."""
    tmp.mkdir()
    db, outbox = StateDB(tmp), Outbox(tmp)
    try:
        engine = AlertEngine(
            AlertsFile(rules=rules),
            Enrichment(load_inventory(ROOT / "config/inventory.sample.toml"),
                       load_targets(ROOT / "config/targets.sample.toml")),
            db=db,
            outbox=outbox,
            emit=lambda _topic, _lines: None,
            channels=["replay"],
        )  # fmt: skip
        for now, rows, points in _week():
            engine.tick(rows, now)  # presence first: the line is back, then its backlog
            engine.evaluate(points, now)
        docs = [p.doc for p in outbox.due("replay", float("inf"), limit=1_000_000)]
    finally:
        db.close()
        outbox.close()
    return Counter(
        (d["rule"], d["labels"].get("probe") or d["labels"].get("commune", "*")) for d in docs
    )


def _show(title: str, counts: Counter[tuple[str, str]]) -> None:
    print(f"\n{title}: {sum(counts.values())} notifications in {DAYS} days")
    for (rule, probe), n in sorted(counts.items()):
        print(f"  {rule:<16} {probe:<10} {n}")


@pytest.mark.slow  # three simulated weeks: ~15 s
def test_one_incident_one_notification_over_a_simulated_week(tmp_path: Path) -> None:
    before = replay(before_rules(), tmp_path / "before")
    communes = replay(before_incidents(), tmp_path / "communes")
    after = replay(dict(DEFAULT_RULES), tmp_path / "after")
    _show("before (group_by without ip_version, no inhibition, no digest)", before)
    _show('before commune incidents (group = "")', communes)
    _show("after", after)
    # The line outage: the offline alert fires once and resolves once; the loss, IPv6 and
    # service results p-line spooled meanwhile page nobody.
    assert after[("probe_offline", "p-line")] == 2
    assert {k for k in after if k[1] == "p-line"} == {("probe_offline", "p-line")}
    # p-longv6's long IPv6 route: one alert on its IPv6 row, fired once, never flapping.
    assert {k: n for k, n in after.items() if k[1] == "p-longv6"} == {
        ("latency_high", "p-longv6"): 1
    }
    # p-v6dead's dead IPv6: one digest a day, no pages (none on day 1: at 01:00 nothing
    # has fired yet, its IPv6 works for the first hour).
    assert not [k for k in after if k[1] == "p-v6dead"]
    assert after[("digest", "*")] == DAYS - 1
    assert not [k for k in after if k[1] == "p-quiet"]
    # Phú Lâm's line: one incident naming the commune, fired once and resolved once, where
    # each of its three probes paged twice on its own before.
    assert {k: n for k, n in after.items() if k[1] in {"Phú Lâm", *PHU_LAM}} == {
        ("incident", "Phú Lâm"): 2
    }
    assert {k: n for k, n in communes.items() if k[1] in {"Phú Lâm", *PHU_LAM}} == {
        ("probe_offline", p): 2 for p in PHU_LAM
    }
    assert sum(after.values()) == 2 + 1 + (DAYS - 1) + 2
    assert sum(communes.values()) == sum(after.values()) - 2 + 6
    # What the old grouping did with the same week (the complaint).
    assert before[("latency_high", "p-longv6")] > 50
    assert before[("ipv6_lost", "p-v6dead")] >= 4 * DAYS
    assert {r for r, p in before if p == "p-line"} >= {"probe_offline", "loss_high"}
    assert sum(n for (_r, p), n in before.items() if p in PHU_LAM) > 6


@pytest.mark.parametrize("language", ["en", "vi"])
def test_a_commune_incident_names_the_commune_and_lists_its_alerts(
    tmp_path: Path, language: Language
) -> None:
    """The incident's two notifications as sent: the commune, its probes, each alert, in the
    deployment's language (notify.language; Vietnamese by default)."""
    db, outbox = StateDB(tmp_path), Outbox(tmp_path)
    try:
        engine = AlertEngine(
            AlertsFile(rules=dict(DEFAULT_RULES), notify=Notify(language=language)),
            Enrichment(load_inventory(ROOT / "config/inventory.sample.toml"),
                       load_targets(ROOT / "config/targets.sample.toml")),
            db=db, outbox=outbox, emit=lambda _topic, _lines: None, channels=["hook", "mqtt"],
        )  # fmt: skip
        t0, t1 = COMMUNE_OUTAGE
        for now in (t0, t0 + 1000.0, t0 + 1200.0, t1, t1 + 1.0):  # offline > 900 s, + wait
            engine.tick([_row(p, not _down(p, now)) for p in PHU_LAM], now)
        hook = [p.doc for p in outbox.due("hook", float("inf"), limit=100)]
        mqtt = [p.doc for p in outbox.due("mqtt", float("inf"), limit=100)]
    finally:
        db.close()
        outbox.close()
    assert [(d["rule"], d["event"]) for d in hook] == [("incident", "firing"),
                                                       ("incident", "resolved")]  # fmt: skip
    fired, resolved = hook
    assert fired["labels"] == {"commune": "Phú Lâm"}
    assert fired["probes"] == list(PHU_LAM)
    assert [a["labels"]["probe"] for a in fired["alerts"]] == list(PHU_LAM)
    if language == "en":
        assert fired["text"].startswith(
            "[FIRING] incident at Phú Lâm (critical): 3 of 3 alert(s) firing on 3 probe(s)"
        )
        assert all(f"probe_offline (critical) {p} (Phú Lâm)" in fired["text"] for p in PHU_LAM)
        assert "— probe offline" in fired["text"]
        assert resolved["text"].startswith("[RESOLVED] incident at Phú Lâm (critical): all 3")
    else:
        assert fired["text"].startswith(
            "[CẢNH BÁO] sự cố tại Phú Lâm (nghiêm trọng): 3 trong số 3 cảnh báo đang bật ở 3 "
            "thiết bị đo"
        )
        assert all(f"probe_offline (nghiêm trọng) {p} (Phú Lâm)" in fired["text"]
                   for p in PHU_LAM)  # fmt: skip
        assert "online_01 0 dưới 1 — thiết bị đo mất kết nối" in fired["text"]
        assert resolved["text"].startswith("[ĐÃ HẾT] sự cố tại Phú Lâm (nghiêm trọng): cả 3")
    # MQTT keeps one retained topic per alert: set, then cleared, for each probe.
    assert sorted((d["labels"]["probe"], d["event"]) for d in mqtt) == sorted(
        (p, e) for p in PHU_LAM for e in ("firing", "resolved")
    )
