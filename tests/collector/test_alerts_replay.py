"""A simulated week replayed through the alert engine: notifications per incident, with the
rules as they were (one subject for a target's IPv4 and IPv6 rows, no inhibition, no
digest) and as they are. Run with ``-s`` to see the counts."""

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
from probefleet.collector.alerts.rules import DEFAULT_RULES, AlertsFile, Rule
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
TARGETS = ("vnexpress.net", "dns.google")
# Before issue 19: the old DEFAULT_GROUP_BY (no ip_version), no inhibition, no digest.
OLD_GROUP_BY = ["probe", "interface", "target", "service", "check"]


def before_rules() -> dict[str, Rule]:
    return {
        name: msgspec.structs.replace(
            r, group_by=r.group_by or OLD_GROUP_BY, inhibits=False, digest=""
        )
        for name, r in DEFAULT_RULES.items()
    }


def _point(kind: str, probe: str, at_s: float, tags: dict[str, str], **fields: Any) -> Point:
    base = {"probe": probe, "interface": "eth0", "access": "fixed", "commune": "Tân Phú"}
    values: dict[str, FieldValue | None] = dict(fields)
    return Point.build(kind, {**base, **tags}, values, int(at_s * 1e9))


def _results(probe: str, at_s: float) -> list[Point]:
    """One run of latency, ipv6 and service on ``probe``, measured at ``at_s``."""
    down = probe == "p-line" and OUTAGE[0] <= at_s < OUTAGE[1]
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
    return FleetRow(probe, "Tân Phú", None, None, state, 0.0, online, {}, online, None, None,
                    True, None)  # fmt: skip


PROBES = ("p-line", "p-longv6", "p-v6dead", "p-quiet")


def _week() -> Iterator[tuple[float, list[FleetRow], list[tuple[Point, float]]]]:
    """(now, presence rows, points arriving now): results arrive when measured, except
    p-line's during its outage, which it spools and sends when the line is back."""
    spooled: list[tuple[Point, float]] = []
    t = START
    while t < START + DAYS * 86_400:
        arriving: list[tuple[Point, float]] = []
        if (t - START) % RUN_S == 0:
            for probe in PROBES:
                points = [(p, t) for p in _results(probe, t)]
                down = probe == "p-line" and OUTAGE[0] <= t < OUTAGE[1]
                (spooled if down else arriving).extend(points)
        line_up = not OUTAGE[0] <= t < OUTAGE[1]
        if line_up and spooled:
            arriving, spooled = spooled + arriving, []
        rows = [_row(p, line_up or p != "p-line") for p in PROBES]
        yield t, rows, arriving
        t += TICK_S


def replay(rules: dict[str, Rule], tmp: Path) -> Counter[tuple[str, str]]:
    """Notifications per (rule, probe) over the week ("digest", "*" for digests)."""
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
    return Counter((d["rule"], d["labels"].get("probe", "*")) for d in docs)


def _show(title: str, counts: Counter[tuple[str, str]]) -> None:
    print(f"\n{title}: {sum(counts.values())} notifications in {DAYS} days")
    for (rule, probe), n in sorted(counts.items()):
        print(f"  {rule:<16} {probe:<10} {n}")


@pytest.mark.slow  # a simulated week: ~4 s
def test_one_incident_one_notification_over_a_simulated_week(tmp_path: Path) -> None:
    before = replay(before_rules(), tmp_path / "before")
    after = replay(dict(DEFAULT_RULES), tmp_path / "after")
    _show("before (group_by without ip_version, no inhibition, no digest)", before)
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
    assert sum(after.values()) == 2 + 1 + DAYS - 1
    # What the old grouping did with the same week (the complaint).
    assert before[("latency_high", "p-longv6")] > 50
    assert before[("ipv6_lost", "p-v6dead")] >= 4 * DAYS
    assert {r for r, p in before if p == "p-line"} >= {"probe_offline", "loss_high"}
