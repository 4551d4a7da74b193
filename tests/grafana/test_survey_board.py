"""The Survey board's queries (issue 22) against a real InfluxDB holding survey points with
the product's names (tests/grafana/survey_points.py: synthetic walks through three hamlets):
the map shows the newest good-fix points and no other, the runs table counts each run,
the hamlet table's shares and medians are the points', and the variables filter."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector.coverage import MobileCoverageRule
from probefleet.collector.inventory import load_targets

from grafana.build import OUT
from grafana.panel_queries import PANEL_QUERIES
from grafana.survey_queries import BROADBAND, MAP_POINTS
from tests.grafana import survey_points as sp
from tests.harness import InfluxTarget

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LONG_RUN = "20261203-p-s1-1"  # more broadband points than a map layer shows
SHORT_RUN = "20261203-p-s2-1"


def _fill(text: str, values: dict[str, str] | None = None) -> str:
    text = text.replace("$timeFilter", "time >= now() - 1d and time <= now()")
    return re.sub(r"\$([A-Za-z_]\w*)", lambda m: (values or {}).get(m.group(1), ".*"), text)


@pytest.fixture
def survey_db(influx_db: InfluxTarget) -> tuple[InfluxTarget, list[sp.SurveyPoint]]:
    rng = random.Random(22)  # noqa: S311 - synthetic data
    now = int(dt.datetime.now(dt.UTC).timestamp())
    points = sp.walk(LONG_RUN, "p-s1", (now - 8 * 3600) * 10**9, 5000, rng=rng)
    points += sp.walk(
        SHORT_RUN, "p-s2", (now - 3 * 3600 + 2) * 10**9, 300, rng=rng, operator="45201"
    )
    influx_db.server.write_lines(influx_db.db, [p.point().line() for p in points])
    return influx_db, points


def _rows(target: InfluxTarget, text: str) -> list[dict[str, Any]]:
    return target.server.query_points(text, db=target.db, epoch="ns")


def _board(lang: str) -> dict[str, Any]:
    board: dict[str, Any] = json.loads((OUT / "dashboards/json" / lang / "survey.json").read_text())
    return board


def test_the_board_shows_these_queries_with_the_coverage_rules_boundary() -> None:
    rule = load_targets(ROOT / "config" / "targets.sample.toml").coverage.mobile
    assert rule.rsrp_min_dbm == -110.0
    # "On 4G/5G" is the coverage rule's technologies (collector/coverage.py).
    assert set(BROADBAND) == set(MobileCoverageRule().technologies) == set(sp.BROADBAND)
    for lang in ("vi", "en"):
        board = _board(lang)
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert [p["type"] for p in panels] == ["geomap", "table", "table"]
        used = [[t["probefleetQuery"] for t in p["targets"]] for p in panels]
        assert used == [
            ["survey_map_broadband", "survey_map_other"],
            ["survey_runs", "survey_run_first", "survey_run_last"],
            ["survey_hamlets"],
        ]
        names = [v["name"] for v in board["templating"]["list"]]
        assert names == ["run_id", "hamlet_commune", "hamlet", "technology", "mobile_operator"]
        geomap = panels[0]
        steps = geomap["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps == [{"color": "red", "value": None}, {"color": "green", "value": -110.0}]
        layers = geomap["options"]["layers"]
        assert [layer["filterData"]["options"] for layer in layers] == ["A", "B"]
        assert layers[0]["config"]["style"]["color"]["field"] == "radio_rsrp_dbm"
        refs = {t["refId"]: t["probefleetQuery"] for t in geomap["targets"]}
        assert refs == {"A": "survey_map_broadband", "B": "survey_map_other"}
        assert str(MAP_POINTS) in geomap["targets"][0]["query"]


def test_the_map_shows_the_newest_good_fix_points_and_no_other(
    survey_db: tuple[InfluxTarget, list[sp.SurveyPoint]],
) -> None:
    target, points = survey_db
    good = [p for p in points if p.good]
    assert len(good) < len(points)  # the walk has points without a good fix
    for query, broadband in (("survey_map_broadband", True), ("survey_map_other", False)):
        rows = _rows(target, _fill(PANEL_QUERIES[query].grafana()))
        want = sorted(
            (p for p in good if (p.technology in BROADBAND) == broadband),
            key=lambda p: p.time_ns,
            reverse=True,
        )
        if broadband:
            assert len(want) > MAP_POINTS  # the bound bites
            want = want[:MAP_POINTS]
        else:
            assert 0 < len(want) < MAP_POINTS
        assert [r["time"] for r in rows] == [p.time_ns for p in want], query
        for r, p in zip(rows, want, strict=True):
            # The tooltip's columns: the point's own values and tags.
            assert (r["lat_deg"], r["lon_deg"], r["point_n"]) == (p.lat, p.lon, p.point_n)
            assert (r["run_id"], r["probe"], r["hamlet"]) == (p.run_id, p.probe, p.hamlet)
            assert r["hamlet_commune"] == p.hamlet_commune
            assert (r["radio_technology"] or "", r["radio_operator"] or "") == (
                p.technology,
                p.operator,
            )
            assert r["radio_rsrp_dbm"] == p.rsrp
    # The variables narrow the map: one run, one hamlet, one technology.
    text = PANEL_QUERIES["survey_map_broadband"].grafana()
    one = _rows(target, _fill(text, {"run_id": f"({SHORT_RUN})"}))
    assert len(one) == sum(1 for p in good if p.run_id == SHORT_RUN and p.technology in BROADBAND)
    assert {r["run_id"] for r in one} == {SHORT_RUN}
    hamlet = _rows(target, _fill(text, {"hamlet": "(X26101-02)", "technology": "(lte)"}))
    assert hamlet
    assert {(r["hamlet"], r["radio_technology"]) for r in hamlet} == {("X26101-02", "lte")}


def test_the_runs_table_counts_each_run(
    survey_db: tuple[InfluxTarget, list[sp.SurveyPoint]],
) -> None:
    target, points = survey_db
    runs = {r: [p for p in points if p.run_id == r] for r in (LONG_RUN, SHORT_RUN)}
    counts = {
        (r["run_id"], r["probe"]): r
        for r in _rows(target, _fill(PANEL_QUERIES["survey_runs"].grafana()))
    }
    first = {
        r["run_id"]: r for r in _rows(target, _fill(PANEL_QUERIES["survey_run_first"].grafana()))
    }
    last = {
        r["run_id"]: r for r in _rows(target, _fill(PANEL_QUERIES["survey_run_last"].grafana()))
    }
    assert set(counts) == {(LONG_RUN, "p-s1"), (SHORT_RUN, "p-s2")}
    for (run, _probe), row in counts.items():
        mine = runs[run]
        assert row["points"] == len(mine)
        assert row["good_fix_share"] == pytest.approx(sum(p.good for p in mine) / len(mine))
        assert 0.8 < row["good_fix_share"] < 1
        # The join's time columns: the run's first and last point.
        assert (first[run]["time"], first[run]["first_point_n"]) == (mine[0].time_ns, 1)
        assert (last[run]["time"], last[run]["last_point_n"]) == (mine[-1].time_ns, len(mine))
    one = _rows(target, _fill(PANEL_QUERIES["survey_runs"].grafana(), {"run_id": f"({SHORT_RUN})"}))
    assert [r["run_id"] for r in one] == [SHORT_RUN]


def test_the_hamlet_table_is_the_points_shares_and_medians(
    survey_db: tuple[InfluxTarget, list[sp.SurveyPoint]],
) -> None:
    target, points = survey_db
    got = {
        (r["hamlet_commune"], r["hamlet"], r["radio_operator"] or ""): r
        for r in _rows(target, _fill(PANEL_QUERIES["survey_hamlets"].grafana()))
    }
    want: dict[tuple[str, str, str], list[sp.SurveyPoint]] = {}
    for p in points:
        if p.good and p.hamlet:
            want.setdefault((p.hamlet_commune, p.hamlet, p.operator), []).append(p)
    assert set(got) == set(want)
    assert {h for _c, h, _o in got} == set(sp.HAMLETS)
    for key, mine in want.items():
        row = got[key]
        assert row["points"] == len(mine), key
        on = sum(p.technology in BROADBAND for p in mine)
        if key[2] == "":  # without service: never on 4G/5G, the share is null (shown 0 %)
            assert on == 0
            assert row["share_4g5g"] is None
            continue
        assert row["share_4g5g"] == pytest.approx(on / len(mine)), key
        rsrp = [p.rsrp for p in mine if p.rsrp is not None]
        assert row["radio_rsrp_median_dbm"] == pytest.approx(statistics.median(rsrp)), key
    # The weak hamlet's median is below the coverage boundary, the others above.
    weak = [r["radio_rsrp_median_dbm"] for k, r in got.items() if k[1] == "X26101-02" and k[2]]
    strong = [r["radio_rsrp_median_dbm"] for k, r in got.items() if k[1] != "X26101-02" and k[2]]
    assert weak
    assert strong
    assert max(weak) < -110 < min(strong)
    # The operator variable narrows to one serving network.
    one = _rows(
        target, _fill(PANEL_QUERIES["survey_hamlets"].grafana(), {"mobile_operator": "(45201)"})
    )
    assert one
    assert {r["radio_operator"] for r in one} == {"45201"}


def test_the_variables_list_the_runs_and_the_registrys_hamlets(
    survey_db: tuple[InfluxTarget, list[sp.SurveyPoint]],
) -> None:
    target, _points = survey_db
    found: dict[str, set[str]] = {}
    for var in _board("en")["templating"]["list"]:
        if var["type"] != "query":
            continue
        rows = _rows(target, _fill(var["query"], {"run_id": ".*", "hamlet_commune": "X26101"}))
        found[var["name"]] = {r["value"] for r in rows}
    assert found == {
        "run_id": {LONG_RUN, SHORT_RUN},
        "hamlet_commune": {"X26101", "X26102"},
        "hamlet": {"X26101-01", "X26101-02"},
        "mobile_operator": {"45204", "45201"},
    }
