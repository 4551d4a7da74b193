"""Every dashboard panel, variable and alert-rule query, executed against a real InfluxDB that
the real collector filled from agent-built results (tests/grafana/fleet.py), and the numbers
they return compared with a computation made directly from the published values."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.inventory import load_targets
from grafana import alerts
from grafana.build import OUT, load_yaml_json
from grafana.panel_queries import AWAITING, PANEL_QUERIES
from tests.grafana import fleet
from tests.harness import InfluxDB, InfluxTarget

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
TARGETS = load_targets(ROOT / "config" / "targets.sample.toml")
TARGET_MBPS = {"fixed": TARGETS.fixed.download_mbps, "mobile": TARGETS.mobile.download_mbps}
DASHBOARDS = sorted((OUT / "dashboards" / "json").glob("*.json"))


@pytest.fixture(scope="module")
def province(
    influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[InfluxTarget, fleet.Published, dt.datetime]]:
    if not influxdb.running:
        influxdb.restart()
    name = "t_grafana_province"
    influxdb.create_database(name)
    target = InfluxTarget(influxdb, name)
    now = dt.datetime.now(dt.UTC)
    try:
        published = fleet.fill(tmp_path_factory.mktemp("province"), target, now)
        yield target, published, now
    finally:
        influxdb.drop_database(name)


def grafana_fill(text: str, values: dict[str, str] | None = None) -> str:
    """What Grafana sends for a panel with the time picker on the last 2 days and every
    variable on All (``.*``) unless ``values`` says otherwise."""
    values = values or {}
    text = text.replace("$timeFilter", "time >= now() - 2d and time <= now()")
    text = text.replace("$__interval", "1h")

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
        found = rows(target, grafana_fill(t["query"]))
        ran += 1
        if query.measurement in AWAITING:
            continue  # written by the presence/self-metrics work, not by this tree's collector
        assert found, f"{board} / {title}: no rows for {t['query']}"
        # Every column the catalogue documents comes back (some may be null by design: a
        # 10th percentile of one test, an upload target the plan does not set).
        for column in query.columns:
            assert all(column in r for r in found), (board, title, column)
        assert any(r.get(c) is not None for r in found for c in query.columns), (board, title)
    assert ran >= 35


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
    }
    for path in DASHBOARDS:
        for var in fleet_json(path)["templating"]["list"]:
            if var["type"] != "query":
                continue
            series = target.server.query(grafana_fill(var["query"]), db=target.db)
            values = {v[1] for s in series for v in s["values"]}
            assert values == expected[var["name"]], (path.stem, var["name"])
    # A chained variable narrows: communes of one district.
    commune = fleet_json(OUT / "dashboards/json/commune.json")["templating"]["list"][1]
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
    for key, row in got.items():
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


def _rule_values(target: InfluxTarget, query: str, window_s: int) -> dict[tuple[str, ...], Any]:
    text = query.replace("$timeFilter", f"time >= now() - {window_s}s and time <= now()")
    assert "$" not in text, text
    out: dict[tuple[str, ...], Any] = {}
    for serie in target.server.query(text, db=target.db):
        labels = tuple(sorted(serie.get("tags", {}).items()))
        values = [v[1] for v in serie["values"] if v[1] is not None]
        out[labels] = values[-1] if values else None  # reducer "last", mode dropNN
    return out


def test_alert_rules_fire_exactly_where_the_data_is_below_target(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    target = province[0]
    doc = alerts.unescape_all(load_yaml_json((OUT / "alerting/rules.yaml").read_text()))
    rules = {r["uid"]: r for r in doc["groups"][0]["rules"]}
    fired: dict[str, set[str]] = {}
    for uid, rule in rules.items():
        if uid == "probefleet-probe-offline":
            continue
        data = {d["refId"]: d for d in rule["data"]}
        window = data["V"]["relativeTimeRange"]["from"]
        values = _rule_values(target, data["V"]["model"]["query"], window)
        counts = _rule_values(target, data["N"]["model"]["query"], window)
        m = re.fullmatch(
            r"\$VALUE ([<>]) ([0-9.]+) && \$COUNT >= (\d+)", data["ALERT"]["model"]["expression"]
        )
        assert m, data["ALERT"]["model"]["expression"]
        op, threshold, minimum = m.group(1), float(m.group(2)), int(m.group(3))
        firing = set()
        for labels, value in values.items():
            below = value < threshold if op == "<" else value > threshold
            if below and counts[labels] >= minimum:
                firing.add(dict(labels)["commune"])
        fired[uid] = firing
    # Direct computation: communes whose median is below the target, with >= 3 tests.
    for access in ("fixed", "mobile"):
        want = {
            c for (c, a), m in fleet.medians().items() if a == access and m < TARGET_MBPS[access]
        }
        assert fired[f"probefleet-download-{access}"] == want, access
    assert fired["probefleet-download-fixed"] == {"Biên Hòa"}  # Long Khánh: exactly 150
    assert fired["probefleet-download-mobile"] == {"Long Khánh"}


def test_offline_rule_names_the_silent_probe(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    target, published, _now = province
    doc = alerts.unescape_all(load_yaml_json((OUT / "alerting/rules.yaml").read_text()))
    rule = next(r for r in doc["groups"][0]["rules"] if r["uid"] == "probefleet-probe-offline")
    data = {d["refId"]: d for d in rule["data"]}
    query = data["V"]["model"]["query"]
    bucket_s = 15 * 60
    assert f"time({bucket_s // 60}m)" in query
    at = dt.datetime.now(dt.UTC)
    values = _rule_values(target, query, data["V"]["relativeTimeRange"]["from"])
    threshold = data["ALERT"]["model"]["conditions"][0]["evaluator"]["params"][0]
    firing = {dict(k)["probe"] for k, v in values.items() if v < threshold}
    # Oracle: silent = no report since the current bucket began (a probe that reported
    # seconds before a bucket boundary blips for a minute: the rule's `for` absorbs that).
    bucket_start = int(at.timestamp()) // bucket_s * bucket_s
    want = {p for p, last in published.last_health.items() if last.timestamp() < bucket_start}
    assert firing == want
    assert fleet.SILENT in firing


def test_rule_queries_match_the_collectors_points(
    province: tuple[InfluxTarget, fleet.Published, dt.datetime],
) -> None:
    """The rules' medians equal the dashboards' (same points, same filters)."""
    target = province[0]
    for access in ("fixed", "mobile"):
        value, _count = alerts._throughput("download_mbps", access)
        got = _rule_values(target, value, 6 * 3600)
        per_probe: dict[str, list[float]] = {}
        for (probe, _i, a), vs in fleet.DOWNLOADS.items():
            if a == access:
                per_probe.setdefault(probe, []).extend(vs)
        assert {dict(k)["probe"]: v for k, v in got.items()} == pytest.approx(
            {p: statistics.median(v) for p, v in per_probe.items()}
        )


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
    got = {(r["resolver"], r["rrtype"]): r for r in dns}
    runs = 3 * len(fleet.ALL_PROBES)
    for query in fleet._data("dns")["queries"]:
        row = got[(query["resolver"], query["rrtype"])]
        assert row["queries"] == runs
        # InfluxDB answers null, not 0, for a count over no values next to other columns.
        assert (row["answered"] or 0) == (runs if "time_ms" in query else 0)
        assert row["time_median_ms"] == query.get("time_ms")
