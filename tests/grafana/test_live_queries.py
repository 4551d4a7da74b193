"""Every dashboard panel, variable, annotation and alert-rule query, executed against a real
InfluxDB that the real collector filled from agent-built results (tests/grafana/fleet.py),
and the numbers they return compared with a computation made directly from the published
values — and the alert rules' verdicts with the collector's own alert engine's."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector.alerts.rules import load_alerts
from probefleet.collector.inventory import load_targets

from grafana import alerts
from grafana.build import OUT, load_yaml_json
from grafana.model import ALERT_ANNOTATION_QUERY
from grafana.panel_queries import PANEL_QUERIES
from grafana.survey_queries import MAP_POINTS
from tests.grafana import fleet, survey_points
from tests.harness import InfluxDB, InfluxTarget

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
TARGETS = load_targets(ROOT / "config" / "targets.sample.toml")
TARGET_MBPS = {"fixed": TARGETS.fixed.download_mbps, "mobile": TARGETS.mobile.download_mbps}
# The Vietnamese boards: the English ones run the same queries (tests/grafana/test_i18n.py).
DASHBOARDS = sorted((OUT / "dashboards" / "json" / "vi").glob("*.json"))
# Queries that answer only past LONG_RANGE_S (the rollup half of a range-switched panel).
LONG_ONLY = {"communes_at_target_1d", "communes_total_1d"}


# The sample rules, with two overrides: the silent probe pages at once (the sample waits
# 15 minutes), and Tân Phú's download must reach 110 % of the target.
ALERT_OVERRIDES = f"""
[[overrides]]
rule = "probe_offline"
probe = "{fleet.SILENT}"
for_s = 0.0

[[overrides]]
rule = "download_below_target"
commune = "Tân Phú"
target_factor = 1.1
"""


@pytest.fixture(scope="module")
def alerts_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alerts") / "alerts.toml"
    path.write_text((ROOT / "config/alerts.sample.toml").read_text() + ALERT_OVERRIDES)
    return path


@pytest.fixture(scope="module")
def province(
    influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory, alerts_path: Path
) -> Iterator[tuple[InfluxTarget, fleet.Published, dt.datetime]]:
    if not influxdb.running:
        influxdb.restart()
    name = "t_grafana_province"
    influxdb.create_database(name)
    target = InfluxTarget(influxdb, name)
    now = dt.datetime.now(dt.UTC)
    try:
        published = fleet.fill(tmp_path_factory.mktemp("province"), target, now, alerts_path)
        fleet.rollups(target, now)
        fleet.radio(target, now)
        fleet.survey(target, now)
        yield target, published, now
    finally:
        influxdb.drop_database(name)


def grafana_fill(
    text: str, values: dict[str, str] | None = None, *, range_s: int = 2 * 86_400
) -> str:
    """What Grafana sends for a panel with the time picker on the last 2 days and every
    variable on All (``.*``) unless ``values`` says otherwise. ``range_s``: what
    ``$__range_s`` says (the range-switched panels' test)."""
    values = values or {}
    text = text.replace("$timeFilter", "time >= now() - 2d and time <= now()")
    text = text.replace("$__interval", "1h").replace("$__range_s", str(range_s))

    def var(match: re.Match[str]) -> str:
        return values.get(match.group(1), ".*")

    return re.sub(r"\$([A-Za-z_]\w*)", var, text)


def panel_targets() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in DASHBOARDS:
        board = fleet_json(path)
        for panel in board["panels"]:
            for t in panel.get("targets", []):
                yield path.stem, panel["title"], t


def fleet_json(path: Path) -> dict[str, Any]:
    import json

    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def rows(target: InfluxTarget, text: str) -> list[dict[str, Any]]:
    return target.server.query_points(text, db=target.db, epoch="s")


def test_every_panel_query_runs_and_finds_data(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    target = province[0]
    ran = 0
    for board, title, t in panel_targets():
        query = PANEL_QUERIES[t["probefleetQuery"]]
        long = query.name in LONG_ONLY
        found = rows(target, grafana_fill(t["query"], range_s=40 * 86_400 if long else 2 * 86_400))
        ran += 1
        assert found, f"{board} / {title}: no rows for {t['query']}"
        # Every column the catalogue documents comes back (some may be null by design: a
        # 10th percentile of one test, an upload target the plan does not set).
        for column in query.columns:
            assert all(column in r for r in found), (board, title, column)
        assert any(r.get(c) is not None for r in found for c in query.columns), (board, title)
    assert ran >= 38


def test_every_variable_query_runs_and_lists_the_province(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    target = province[0]
    expected = {
        "district": {"Định Quán", "Biên Hòa", "Long Khánh"},
        "commune": set(fleet.COMMUNE.values()),
        "probe": set(fleet.ALL_PROBES),
        "operator": {"VNPT", "FPT", "Viettel", "MobiFone"},
        "service": {"dichvucong", "tsl-datacentre"},
        "target": {"ns1.dongnai.gov.vn", "portal.dongnai.gov.vn"},
        "mobile_operator": set(fleet.RADIO_OPERATORS.values()),
        "run_id": set(fleet.survey_runs(province[2])),
        "hamlet_commune": {code.split("-")[0] for code in survey_points.HAMLETS},
        "hamlet": set(survey_points.HAMLETS),
    }
    for path in DASHBOARDS:
        for var in fleet_json(path)["templating"]["list"]:
            if var["type"] != "query":
                continue
            series = target.server.query(grafana_fill(var["query"]), db=target.db)
            values = {v[1] for s in series for v in s["values"]}
            assert values == expected[var["name"]], (path.stem, var["name"])
    # A chained variable narrows: communes of one district.
    commune = fleet_json(OUT / "dashboards/json/vi/commune.json")["templating"]["list"][1]
    series = target.server.query(
        grafana_fill(commune["query"], {"district": "Biên Hòa"}), db=target.db
    )
    assert {v[1] for s in series for v in s["values"]} == {"Biên Hòa"}


def _by(found: list[dict[str, Any]], *tags: str) -> dict[tuple[str, ...], dict[str, Any]]:
    return {tuple(r[t] for t in tags): r for r in found}


def test_compliance_figures_equal_a_direct_computation(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    target = province[0]
    text = PANEL_QUERIES["download_summary"].grafana(("commune", "access"))
    got = _by(rows(target, grafana_fill(text)), "commune", "access")
    want_median = fleet.medians()
    want_share = fleet.shares(TARGET_MBPS)
    assert set(got) == set(want_median)
    for (commune, access), row in got.items():
        key = (commune, access)
        assert row["median_mbps"] == pytest.approx(want_median[key]), key
        assert row["share_at_target"] == pytest.approx(want_share[key]), key
        assert row["tests"] == row["tests_with_target"]
    # The fleet overview's stat: communes whose median meets the target, of those measured.
    at = rows(target, grafana_fill(PANEL_QUERIES["communes_at_target"].grafana(("access",))))
    total = rows(target, grafana_fill(PANEL_QUERIES["communes_total"].grafana(("access",))))
    for access in ("fixed", "mobile"):
        mine = {k: m for k, m in want_median.items() if k[1] == access}
        meeting = sum(m >= TARGET_MBPS[access] for m in mine.values())
        assert _by(at, "access")[(access,)]["communes"] == meeting, access
        assert _by(total, "access")[(access,)]["communes"] == len(mine), access
    # Past 31 days the panel reads the rollups (at least half the tests at target) and the
    # raw pair answers nothing; the verdicts are the medians' (the province has no tie).
    long = 40 * 86_400
    for raw, rolled in (("communes_at_target", "communes_at_target_1d"),
                        ("communes_total", "communes_total_1d")):  # fmt: skip
        short_raw = rows(target, grafana_fill(PANEL_QUERIES[raw].grafana(("access",))))
        assert rows(target, grafana_fill(PANEL_QUERIES[rolled].grafana(("access",)))) == []
        assert (
            rows(target, grafana_fill(PANEL_QUERIES[raw].grafana(("access",)), range_s=long)) == []
        )
        rolled_rows = rows(
            target, grafana_fill(PANEL_QUERIES[rolled].grafana(("access",)), range_s=long)
        )
        assert {r["access"]: r["communes"] for r in rolled_rows} == {
            r["access"]: r["communes"] for r in short_raw
        }, raw
    # Filtering by a variable (one operator, as Grafana sends a multi-value selection).
    one = rows(target, grafana_fill(text, {"operator": "(FPT|Viettel)"}))
    assert {(r["commune"], r["access"]) for r in one} == {
        ("Biên Hòa", "fixed"),
        ("Xuân Lộc", "mobile"),
    }


def test_map_presence_and_ipv6_figures(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    target = province[0]
    located = _by(
        rows(target, grafana_fill(PANEL_QUERIES["probe_location"].grafana(("probe", "commune")))),
        "probe",
    )
    for probe, (lat, lon) in fleet.LOCATION.items():
        assert (located[(probe,)]["lat"], located[(probe,)]["lon"]) == (lat, lon)
        assert located[(probe,)]["commune"] == fleet.COMMUNE[probe]
    reporting = rows(target, grafana_fill(PANEL_QUERIES["probes_reporting"].grafana()))
    known = rows(target, grafana_fill(PANEL_QUERIES["probes_known"].grafana()))
    assert reporting[0]["probes"] == len(fleet.ALL_PROBES) - 1  # the silent one is not
    assert known[0]["probes"] == len(fleet.ALL_PROBES)
    ipv6 = _by(
        rows(target, grafana_fill(PANEL_QUERIES["ipv6_readiness"].grafana(("commune",)))), "commune"
    )
    for probe, works in fleet.IPV6_WORKS.items():
        row = ipv6[(fleet.COMMUNE[probe],)]
        assert row["works_share"] == pytest.approx(sum(works) / len(works)), probe
        assert row["capable_share"] == 1.0
    health = _by(
        rows(target, grafana_fill(PANEL_QUERIES["probe_health"].grafana(("probe",)))), "probe"
    )
    for probe in fleet.ALL_PROBES:
        # The newest report (i = 0) has temperature 50.0 and spool depth 0.
        assert (health[(probe,)]["temperature_c"], health[(probe,)]["spool_depth"]) == (50.0, 0)
    seen = _by(
        rows(target, grafana_fill(PANEL_QUERIES["probe_last_seen"].grafana(("probe",)))), "probe"
    )
    for probe in fleet.ALL_PROBES:
        last_seen = fleet_last_seen(province[1], probe)
        assert seen[(probe,)]["time"] == int(last_seen.timestamp()), probe


def fleet_last_seen(published: fleet.Published, probe: str) -> dt.datetime:
    return published.last_health[probe]


Labels = tuple[tuple[str, str], ...]  # a series' tags, sorted (name, value) pairs


def _rule_values(target: InfluxTarget, query: str, window_s: int) -> dict[Labels, Any]:
    text = query.replace("$timeFilter", f"time >= now() - {window_s}s and time <= now()")
    assert not re.search(r"\$\w", text), text  # no placeholder left ("$/" ends a regex)
    out: dict[Labels, Any] = {}
    for serie in target.server.query(text, db=target.db):
        labels = tuple(sorted(serie.get("tags", {}).items()))
        values = [v[1] for v in serie["values"] if v[1] is not None]
        out[labels] = values[-1] if values else None  # reducer "last", mode dropNN
    return out


def grafana_verdicts(
    target: InfluxTarget, rules_doc: dict[str, Any]
) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """What Grafana would flag now (the pending period aside): (collector rule, labels) for
    every series whose reduced value meets the rule's threshold condition."""
    flagged = set()
    for rule in alerts.unescape_all(rules_doc)["groups"][0]["rules"]:
        data = {d["refId"]: d for d in rule["data"]}
        assert data["VALUE"]["model"]["reducer"] == "last"
        [condition] = data["ALERT"]["model"]["conditions"]
        op, [threshold] = condition["evaluator"]["type"], condition["evaluator"]["params"]
        window = data["V"]["relativeTimeRange"]["from"]
        for labels, value in _rule_values(target, data["V"]["model"]["query"], window).items():
            if value is not None and (value < threshold if op == "lt" else value > threshold):
                subject = frozenset((k, v) for k, v in labels if v)
                flagged.add((rule["labels"]["rule"], subject))
    return flagged


def test_committed_alert_rules_run_on_real_data(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    """The provisioned rules (sample rules, no overrides) run, and Biên Hòa's download and
    every probe's down service are what they flag."""
    target = province[0]
    doc = load_yaml_json((OUT / "alerting/rules.yaml").read_text())
    for rule in alerts.unescape_all(doc)["groups"][0]["rules"]:
        query = {d["refId"]: d for d in rule["data"]}["V"]["model"]["query"]
        _rule_values(target, query, 86400)  # runs (InfluxDB would answer an error)
    flagged = grafana_verdicts(target, doc)
    by_rule: dict[str, set[str]] = {}
    for rule, labels in flagged:
        by_rule.setdefault(rule, set()).add(dict(labels)["commune"])
    # Tân Phú's last three (140, 155, 160) are not all below 150 without its override.
    assert by_rule["download_below_target"] == {"Biên Hòa"}
    assert by_rule["service_down"] == set(fleet.COMMUNE.values())


def test_alert_rules_flag_exactly_what_the_collectors_engine_flags(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime], alerts_path: Path
) -> None:
    """The same rules file (with overrides) through both: the real collector's engine fired
    while it stored the province; the generated Grafana rules, run on what it stored, flag
    the same subjects — no more, no fewer."""
    target, published = province[0], province[1]
    doc = alerts.rules_file(load_alerts(alerts_path, env={}), TARGETS)
    flagged = grafana_verdicts(target, doc)
    assert flagged == published.firing
    rules = {rule for rule, _labels in published.firing}
    assert {"download_below_target", "service_down", "probe_offline"} <= rules
    communes = {
        dict(labels)["commune"] for rule, labels in flagged if rule == "download_below_target"
    }
    assert communes == {"Biên Hòa", "Tân Phú"}  # Tân Phú: by its override (165 Mbit/s)
    offline = {dict(labels)["probe"] for rule, labels in flagged if rule == "probe_offline"}
    assert offline == {fleet.SILENT}


def test_alert_annotations_show_the_collectors_alerts(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    target, published = province[0], province[1]
    for stem in ("commune", "fleet-overview"):
        board = fleet_json(OUT / f"dashboards/json/vi/{stem}.json")
        [annotation] = [
            a for a in board["annotations"]["list"] if a.get("query") == ALERT_ANNOTATION_QUERY
        ]
        assert annotation["textColumn"] == "text"
    found = rows(target, grafana_fill(ALERT_ANNOTATION_QUERY))
    assert len(found) == len(published.firing)  # one "firing" point each, nothing resolved
    assert all(r["state"] == "firing" and r["text"] for r in found)
    assert {r["rule"] for r in found} == {rule for rule, _l in published.firing}
    one = rows(target, grafana_fill(ALERT_ANNOTATION_QUERY, {"commune": "Biên Hòa"}))
    want = [labels for _rule, labels in published.firing if ("commune", "Biên Hòa") in labels]
    assert len(one) == len(want) > 0


def test_presence_and_self_metrics_panels(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    target = province[0]
    now = _by(
        rows(target, grafana_fill(PANEL_QUERIES["presence_now"].grafana(("probe",)))), "probe"
    )
    assert {p: r["state"] for (p,), r in now.items()} == {
        p: ("offline" if p == fleet.SILENT else "online") for p in fleet.ALL_PROBES
    }
    assert now[(fleet.SILENT,)]["online_01"] == 0
    assert all(r["last_seen_age_s"] < 120 for r in now.values())  # seen while it ran
    counts = rows(target, grafana_fill(PANEL_QUERIES["probes_online"].grafana()))
    assert (counts[0]["online"], counts[0]["offline"]) == (len(fleet.ALL_PROBES) - 1, 1)
    flow = rows(target, grafana_fill(PANEL_QUERIES["collector_flow"].grafana().replace(
        "GROUP BY time($__interval) fill(none)", "")))  # fmt: skip
    published = sum(len(v) for v in province[1].results.values())
    # Every result, and the status messages, went through; nothing rejected or doubled.
    assert flow[0]["stored"] >= published
    assert flow[0]["received"] >= flow[0]["stored"]
    assert (flow[0]["rejected"], flow[0]["duplicates"]) == (0, 0)
    dead = rows(target, grafana_fill(PANEL_QUERIES["dead_letters"].grafana()))
    assert (dead[0]["rejected"], dead[0]["points_rejected"]) == (0, 0)


def test_latency_service_and_dns_figures(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    """The golden rows each probe sent three times: loss, availability and DNS as sent."""
    target = province[0]
    golden = fleet._data("latency")["targets"]
    text = PANEL_QUERIES["latency_summary"].grafana(("target",))
    latency = _by(rows(target, grafana_fill(text)), "target")
    for row in golden:
        got = latency[(row["target"],)]
        want_loss = 100 * (1 - row["received"] / row["sent"])
        assert got["loss_pct"] == pytest.approx(want_loss), row["target"]
        assert got["runs"] == 3 * len(fleet.ALL_PROBES)
        assert got["rtt_median_ms"] == row.get("rtt_median_ms")
    services = _by(
        rows(target, grafana_fill(PANEL_QUERIES["service_availability"].grafana())), "service"
    )
    for check in fleet._data("service")["checks"]:
        assert services[(check["name"],)]["availability"] == (1.0 if check["up"] else 0.0)
    dns = rows(target, grafana_fill(PANEL_QUERIES["dns_time"].grafana()))
    by_query = {(r["resolver"], r["rrtype"]): r for r in dns}
    runs = 3 * len(fleet.ALL_PROBES)
    for query in fleet._data("dns")["queries"]:
        row = by_query[(query["resolver"], query["rrtype"])]
        assert row["queries"] == runs
        # InfluxDB answers null, not 0, for a count over no values next to other columns.
        assert (row["answered"] or 0) == (runs if "time_ms" in query else 0)
        assert row["time_median_ms"] == query.get("time_ms")


def test_no_panel_returns_raw_rows(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    """Issue 19: a panel without GROUP BY time returned every test (212 k rows for a year at
    25 probes). With $__interval at a day, no series of any panel may have more rows than
    the days in the range: an aggregated panel cannot, a raw-row one has one per test."""
    target = province[0]
    days = 2  # grafana_fill's range
    for board, title, t in panel_targets():
        query = PANEL_QUERIES[t["probefleetQuery"]]
        if query.name in ("survey_map_broadband", "survey_map_other"):
            # A survey map's markers are raw points on purpose, bounded by their LIMIT
            # (MAP_POINTS; test_row_counts.py checks it on a year).
            assert query.select.endswith(f"LIMIT {MAP_POINTS}"), query.name
            continue
        text = grafana_fill(t["query"]).replace("GROUP BY time(1h)", "GROUP BY time(1d)")
        per_series: dict[tuple[tuple[str, Any], ...], int] = {}
        for r in rows(target, text):
            key = tuple(
                sorted((k, v) for k, v in r.items() if k not in query.columns and k != "time")
            )
            per_series[key] = per_series.get(key, 0) + 1
        worst = max(per_series.values(), default=0)
        assert worst <= days + 1, f"{board} / {title}: {worst} rows in one series ({text})"
