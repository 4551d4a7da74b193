"""Issue 19: every panel query of every dashboard, run against a simulated year in a real
InfluxDB at 1 day, 30 days and 1 year with the $__interval Grafana would send, returns at
most ~1,000 points per series; every field a panel's overrides, options and transformations
name exists in what its queries return; and the fleet overview's "communes meeting" panel
reads the daily rollups at a year, with the raw points' verdicts.

The row counts and timings at a year are printed (``-s``) and written to
/tmp/shared/grafana-rowcounts.txt. PROBEFLEET_YEAR_PROBES sets the fleet (default 6; the
issue measured 25)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grafana.build import OUT
from grafana.panel_queries import PANEL_QUERIES
from grafana.survey_queries import MAP_POINTS
from tests.grafana import year_fleet
from tests.harness import InfluxDB, InfluxTarget

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

PROBES = int(os.environ.get("PROBEFLEET_YEAR_PROBES", "6"))
RANGES = {"1 day": 86_400, "30 days": 30 * 86_400, "1 year": 365 * 86_400}
BOUND = 1_000  # points per series (issue 19: "at most ~1,000")
# A survey map's layer is one series of single points, the newest MAP_POINTS of the range
# (LIMIT, no GROUP BY): markers, not a line to draw (grafana/survey_queries.py).
MAP_QUERIES = {"survey_map_broadband": MAP_POINTS, "survey_map_other": MAP_POINTS}
REPORT = Path("/tmp/shared/grafana-rowcounts.txt")
DATASOURCE_MIN_MS = 60_000  # the data source's timeInterval, 1m (grafana/build.py)
# Grafana's rangeutil.roundInterval: (below this many ms, the step it takes).
_ROUND = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
    (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000),
    (1050000, 900000), (1500000, 1200000), (2700000, 1800000), (5400000, 3600000),
    (9000000, 7200000), (16200000, 10800000), (32400000, 21600000), (86400000, 43200000),
    (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000),
)  # fmt: skip


def grafana_interval_ms(range_s: int, max_data_points: int) -> int:
    """$__interval as Grafana computes it: range / maxDataPoints, rounded, at least the
    data source's minimum."""
    raw = range_s * 1000 / max_data_points
    step = next((s for below, s in _ROUND if raw < below), 31_536_000_000)
    return max(DATASOURCE_MIN_MS, step)


def fill(text: str, range_s: int, interval_ms: int, range_var: int | None = None) -> str:
    """What Grafana sends: the range ending at the simulated year's end, every variable on
    All. ``range_var``: what $__range_s says, if not the range (to run a gated query)."""
    end_ms = int(year_fleet.END.timestamp() * 1000)
    text = text.replace(
        "$timeFilter", f"time >= {end_ms - range_s * 1000}ms and time <= {end_ms}ms"
    )
    text = text.replace("$__interval", f"{interval_ms}ms")
    text = text.replace("$__range_s", str(range_s if range_var is None else range_var))
    return re.sub(r"\$([A-Za-z_]\w*)", ".*", text)


@pytest.fixture(scope="module")
def year(influxdb: InfluxDB) -> Iterator[tuple[InfluxTarget, year_fleet.Loaded]]:
    if not influxdb.running:
        influxdb.restart()
    name = "t_grafana_year"
    influxdb.create_database(name)
    target = InfluxTarget(influxdb, name)
    try:
        started = time.perf_counter()
        loaded = year_fleet.load(target, PROBES)
        print(
            f"\nloaded a year of {loaded.probes} probes: {loaded.raw_points:,} raw points, "
            f"{loaded.rollup_points:,} daily rollup points in {time.perf_counter() - started:.0f} s"
        )
        yield target, loaded
    finally:
        influxdb.drop_database(name)


def boards() -> dict[str, dict[str, Any]]:
    # The English boards (for the closing note's table): the Vietnamese ones run the same
    # queries (test_i18n.py).
    return {
        p.stem: json.loads(p.read_text())
        for p in sorted((OUT / "dashboards" / "json" / "en").glob("*.json"))
    }


def panels() -> Iterator[tuple[str, dict[str, Any]]]:
    for stem, board in boards().items():
        for panel in board["panels"]:
            if panel["type"] != "row":
                yield stem, panel


def series_of(target: InfluxTarget, text: str) -> list[dict[str, Any]]:
    return target.server.query(text, db=target.db, epoch="ms")


def test_no_series_has_more_than_1000_points_at_any_range(
    year: tuple[InfluxTarget, year_fleet.Loaded],
) -> None:
    target, loaded = year
    lines = [
        f"Panel row counts on a simulated year of {loaded.probes} probes "
        f"({loaded.raw_points:,} raw points, {loaded.rollup_points:,} daily rollup points; "
        "tests/grafana/test_row_counts.py): the most points in one series, series, "
        "time; per range.",
        f"{'board / panel (query)':<110} " + "  ".join(f"{r:>21}" for r in RANGES),
    ]
    too_many = []
    ran = with_rows = 0
    for stem, panel in panels():
        for t in panel["targets"]:
            cells = []
            for label, range_s in RANGES.items():
                interval = grafana_interval_ms(range_s, panel["maxDataPoints"])
                text = fill(t["query"], range_s, interval)
                started = time.perf_counter()
                found = series_of(target, text)
                took = time.perf_counter() - started
                worst = max((len(s["values"]) for s in found), default=0)
                if worst > MAP_QUERIES.get(t["probefleetQuery"], BOUND):
                    too_many.append((stem, panel["title"], t["probefleetQuery"], label, worst))
                cells.append(f"{worst:>6} {len(found):>5} {took:>6.2f}s")
                ran += 1
                with_rows += bool(found)
            name = f"{stem} / {panel['title']}"[:85] + f" ({t['probefleetQuery']})"
            lines.append(f"{name:<110} " + "  ".join(f"{c:>21}" for c in cells))
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    assert not too_many, too_many
    assert ran >= 3 * 45
    assert with_rows >= 0.8 * ran  # the fleet feeds (nearly) every panel
    # The fleet is big enough that a raw-row panel fails: the per-test download panel
    # without its GROUP BY time (as it was before issue 19) has a series of 8,760 rows.
    raw = 'SELECT "download_mbps" FROM "throughput" WHERE $timeFilter AND "status" = \'ok\''
    found = series_of(target, fill(raw, RANGES["1 year"], 0))
    assert max(len(s["values"]) for s in found) > 5 * BOUND
    # A year of survey walks holds more than a map layer shows: its LIMIT is what bounds it.
    for name in MAP_QUERIES:
        text = fill(PANEL_QUERIES[name].grafana(), RANGES["1 year"], 0)
        unbounded = series_of(target, text.replace(f" LIMIT {MAP_POINTS}", ""))
        bounded = series_of(target, text)
        if name == "survey_map_broadband":
            assert len(unbounded[0]["values"]) > 5 * MAP_POINTS
            assert len(bounded[0]["values"]) == MAP_POINTS
        else:
            assert len(bounded[0]["values"]) == min(MAP_POINTS, len(unbounded[0]["values"]))


def _names(panel: dict[str, Any], results: list[list[dict[str, Any]]]) -> set[str]:
    """The field names Grafana gives the panel's data: a table's columns (a join suffixes
    the names several queries share with the query's number), a time series' alias
    expanded per series ($col, $tag_x)."""
    names: set[str] = set()
    join = [t["options"]["byField"] for t in panel["transformations"] if t["id"] == "joinByField"]
    frames: list[list[str]] = []
    for t, found in zip(panel["targets"], results, strict=True):
        if not found:
            continue
        if t["resultFormat"] == "table":
            columns = ["Time"]
            for s in found:
                columns += [c for c in (*s.get("tags", {}), *s["columns"][1:]) if c not in columns]
            frames.append(columns)
        else:
            for s in found:
                for column in s["columns"][1:]:
                    alias = t["alias"].replace("$col", column)
                    for tag, value in s.get("tags", {}).items():
                        alias = alias.replace(f"$tag_{tag}", value)
                    names.add(alias)
            names.add("Time")
    for i, columns in enumerate(frames):
        for c in columns:
            shared = sum(c in other for other in frames) > 1
            names.add(f"{c} {i + 1}" if join and shared and c not in join else c)
    return names


def test_every_override_names_a_field_the_result_has(
    year: tuple[InfluxTarget, year_fleet.Loaded],
) -> None:
    """At 30 days (every panel but the rollup half of the communes panel answers): the
    fields each override (byName, byRegexp), stat pattern, transformation, map layer and
    scatter axis names are among the fields the panel's queries return."""
    target = year[0]
    range_s = RANGES["30 days"]
    missing = []
    checked = 0
    for stem, panel in panels():
        interval = grafana_interval_ms(range_s, panel["maxDataPoints"])
        results = [series_of(target, fill(t["query"], range_s, interval)) for t in panel["targets"]]
        if not any(results):
            continue  # nothing at this range (probes reporting "now" on a past year)
        names = _names(panel, results)
        wanted: list[tuple[str, str]] = []
        for o in panel["fieldConfig"]["overrides"]:
            wanted.append((o["matcher"]["id"], o["matcher"]["options"]))
        fields = panel["options"].get("reduceOptions", {}).get("fields")
        if fields:
            wanted.append(("byRegexp", fields.strip("/")))
        for tr in panel["transformations"]:
            if tr["id"] == "joinByField":
                wanted.append(("byName", tr["options"]["byField"]))
            if tr["id"] == "sortBy":
                wanted += [("byName", s["field"]) for s in tr["options"]["sort"]]
        for layer in panel["options"].get("layers", []):
            style = layer["config"]["style"]
            wanted += [
                ("byName", layer["location"]["latitude"]),
                ("byName", layer["location"]["longitude"]),
            ]
            if "field" in style["color"]:  # not a layer of one fixed colour
                wanted.append(("byName", style["color"]["field"]))
            if "filterData" in layer:  # the frame of one of the panel's queries
                wanted.append(("byFrameRefID", layer["filterData"]["options"]))
        for s in panel["options"].get("series", []):
            wanted += [
                ("byName", s["x"]["matcher"]["options"]),
                ("byName", s["y"]["matcher"]["options"]),
            ]
        refs = {t["refId"] for t in panel["targets"]}
        for kind, pattern in wanted:
            if kind == "byFrameRefID":  # one of the panel's queries
                ok = pattern in refs
            elif kind == "byName":
                ok = pattern in names
            else:
                ok = any(re.search(pattern, n) for n in names)
            checked += 1
            if not ok:
                missing.append((stem, panel["title"], kind, pattern, sorted(names)[:12]))
    assert not missing, missing
    assert checked > 250


def test_the_communes_panel_reads_the_rollups_at_a_year(
    year: tuple[InfluxTarget, year_fleet.Loaded],
) -> None:
    """At a year the raw pair answers nothing and the rollup pair answers the raw
    medians' verdicts (at least half the tests at target = the median at target); both
    timed, the raw one forced to run (``$__range_s`` said short)."""
    target, loaded = year
    range_s = RANGES["1 year"]
    timings = {}
    for raw, rolled in (
        ("communes_at_target", "communes_at_target_1d"),
        ("communes_total", "communes_total_1d"),
    ):
        raw_text = PANEL_QUERIES[raw].grafana(("access",))
        rolled_text = PANEL_QUERIES[rolled].grafana(("access",))
        assert series_of(target, fill(raw_text, range_s, 0)) == []
        started = time.perf_counter()
        forced = series_of(target, fill(raw_text, range_s, 0, range_var=0))
        timings[raw] = time.perf_counter() - started
        started = time.perf_counter()
        got = series_of(target, fill(rolled_text, range_s, 0))
        timings[rolled] = time.perf_counter() - started
        want = {s["tags"]["access"]: s["values"][0][1] for s in forced}
        assert {s["tags"]["access"]: s["values"][0][1] for s in got} == want, raw
        assert want  # the fleet has communes of both access types
    line = (
        f"\nCommunes meeting 60/150 at 1 year, {loaded.probes} probes: raw "
        f"{timings['communes_at_target'] + timings['communes_total']:.2f} s, rollups "
        f"{timings['communes_at_target_1d'] + timings['communes_total_1d']:.2f} s "
        "(both queries of the panel, one InfluxDB 1.6 on this machine)\n"
    )
    print(line)
    with REPORT.open("a", encoding="utf-8") as f:
        f.write(line)
