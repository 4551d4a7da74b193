"""The Radio board's queries (issue 21) against a real InfluxDB holding points with the
radio context's names (/tmp/shared/radio-spec.md): the scatter's pairs are the tests',
the technology shares are the reads' counts, the signal means are the reads', and the
technology and operator variables filter."""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from grafana.build import OUT
from grafana.panel_queries import PANEL_QUERIES
from tests.grafana import radio_points as rp
from tests.harness import InfluxTarget

pytestmark = pytest.mark.integration

PROBES = (
    rp.Probe("p-a", "Xuân Lộc", "Xuân Lộc", "Viettel", "45204"),
    rp.Probe("p-b", "Phú Lâm", "Tân Phú", "MobiFone", "45201"),
    rp.Probe("p-c", "Phú Lâm", "Tân Phú", "VinaPhone", "45202"),
)
GENERATION = {"nr5g_nsa": "5g", "nr5g_sa": "5g", "lte": "4g", "umts": "3g", "gsm": "2g", "": "none"}


def _fill(text: str, values: dict[str, str] | None = None, interval: str = "1s") -> str:
    import re

    text = text.replace("$timeFilter", "time >= now() - 1d and time <= now()")
    text = text.replace("$__interval", interval)
    return re.sub(r"\$([A-Za-z_]\w*)", lambda m: (values or {}).get(m.group(1), ".*"), text)


@pytest.fixture
def radio_db(influx_db: InfluxTarget) -> tuple[InfluxTarget, rp.Reads]:
    reads = rp.Reads()
    rng = random.Random(5)  # noqa: S311 - synthetic data
    start = int((dt.datetime.now(dt.UTC) - dt.timedelta(hours=10)).timestamp()) * 10**9
    lines: list[str] = []
    for probe in PROBES:
        lines += rp.radio_reads(probe, start, 120, 300, rng=rng, reads=reads)
        lines += rp.mobile_tests(probe, start + 60 * 10**9, 20, 1800, rng=rng, reads=reads)
    influx_db.server.write_lines(influx_db.db, lines)
    return influx_db, reads


def _rows(target: InfluxTarget, text: str) -> list[dict[str, Any]]:
    return target.server.query_points(text, db=target.db, epoch="ns")


def test_the_board_shows_these_queries() -> None:
    for lang in ("vi", "en"):
        board = json.loads((OUT / "dashboards" / "json" / lang / "radio.json").read_text())
        used = [t["probefleetQuery"] for p in board["panels"] for t in p.get("targets", [])]
        assert used == [
            "radio_download",
            "radio_download",
            "radio_technology_share",
            "radio_signal",
        ]
        kinds = [p["type"] for p in board["panels"] if p["type"] != "row"]
        assert kinds == ["xychart", "xychart", "table", "timeseries"]
        names = [v["name"] for v in board["templating"]["list"]]
        assert names == ["district", "commune", "probe", "technology", "mobile_operator"]


def test_scatter_pairs_each_tests_download_with_its_signal(
    radio_db: tuple[InfluxTarget, rp.Reads],
) -> None:
    target, reads = radio_db
    text = _fill(PANEL_QUERIES["radio_download"].grafana())
    got = {(r["probe"], r["radio_technology"], r["time"]): r for r in _rows(target, text)}
    assert len(got) == len(reads.tests) == 60  # one point per test at a short range
    for probe, tech, rsrp, snr, down, t in reads.tests:
        row = got[(probe, tech, t)]
        assert (row["download_mbps"], row["radio_rsrp_dbm"], row["radio_snr_db"]) == (
            down,
            rsrp,
            snr,
        )
        assert row["tests"] == 1
    # Downloads grow with the signal in this data: the scatter has that shape.
    pairs = sorted((rsrp, down) for _p, _t, rsrp, _s, down, _tt in reads.tests)
    assert statistics.correlation([a for a, _b in pairs], [b for _a, b in pairs]) > 0.5
    # The technology variable (Grafana sends a selection as an alternation).
    lte = _rows(target, _fill(PANEL_QUERIES["radio_download"].grafana(), {"technology": "(lte)"}))
    assert len(lte) == sum(1 for _p, tech, *_r in reads.tests if tech == "lte") > 0
    assert {r["radio_technology"] for r in lte} == {"lte"}


def test_technology_shares_are_the_reads_counts(radio_db: tuple[InfluxTarget, rp.Reads]) -> None:
    target, reads = radio_db
    got = {
        (r["commune"], r["radio_operator"]): r
        for r in _rows(target, _fill(PANEL_QUERIES["radio_technology_share"].grafana()))
    }
    assert set(got) == set(reads.technology) == {
        ("Xuân Lộc", "45204"), ("Phú Lâm", "45201"), ("Phú Lâm", "45202"),
    }  # fmt: skip
    for key, per_tech in reads.technology.items():
        total = sum(per_tech.values())
        row = got[key]
        assert row["reads"] == total == 120
        want: dict[str, int] = {}
        for tech, n in per_tech.items():
            want[GENERATION[tech]] = want.get(GENERATION[tech], 0) + n
        for generation in ("5g", "4g", "3g", "2g", "none"):
            share = row[f"share_{generation}"]
            if generation in want:
                assert share == pytest.approx(want[generation] / total), (key, generation)
            else:
                assert share is None, (key, generation)  # the table shows 0 %
        assert sum(
            row[f"share_{g}"] or 0 for g in ("5g", "4g", "3g", "2g", "none")
        ) == pytest.approx(1)
    # The operator variable narrows to one serving network.
    one = _rows(
        target,
        _fill(PANEL_QUERIES["radio_technology_share"].grafana(), {"mobile_operator": "(45201)"}),
    )
    assert [(r["commune"], r["radio_operator"]) for r in one] == [("Phú Lâm", "45201")]


def test_signal_over_time_is_the_reads_mean(radio_db: tuple[InfluxTarget, rp.Reads]) -> None:
    target, reads = radio_db
    text = _fill(PANEL_QUERIES["radio_signal"].grafana(), interval="1d")
    by_probe: dict[str, list[dict[str, Any]]] = {}
    for r in _rows(target, text):
        by_probe.setdefault(r["probe"], []).append(r)
    assert set(by_probe) == {p.probe for p in PROBES}
    for probe, values in reads.rsrp.items():
        # One or two day buckets: the mean over them, weighted by reads, is the reads'.
        got = by_probe[probe]
        assert min(r["radio_rsrp_min_dbm"] for r in got) == min(values)
        if len(got) == 1:
            assert got[0]["radio_rsrp_dbm"] == pytest.approx(statistics.mean(values))
    # Reads without service carry no signal: they add no value (never a 0 dBm).
    assert all(r["radio_rsrp_dbm"] < -60 for rows in by_probe.values() for r in rows)


RADIO_RULES = """
[rules.mobile_service_lost]
measurement = "radio"
field = "in_service_01"
op = "below"
threshold = 1.0
count = 1
clear_count = 1
for_s = 600.0
severity = "critical"
summary = "mobile service lost at {commune} ({operator})"

[rules.radio_fallback]
measurement = "radio"
field = "below_4g_01"
op = "above"
threshold = 0.5
count = 1
clear_count = 1
for_s = 1800.0
summary = "mobile fallback below 4G (2G/3G) at {commune} ({operator})"
"""


def test_radio_alert_rules_flag_what_the_collectors_derived_values_say(
    influx_db: InfluxTarget, tmp_path: Path
) -> None:
    """H2's radio rules (collector/alerts/derived.py values) as Grafana rules: on probes
    whose newest read is 4G, 3G, 2G, not registered, or back on 4G after a fallback, the
    rules flag exactly the probes the collector's derived values breach on."""
    from probefleet.collector.alerts import derived
    from probefleet.collector.alerts.rules import load_alerts, threshold_of
    from probefleet.collector.inventory import load_targets

    from grafana import alerts
    from tests.grafana.test_live_queries import _rule_values

    assert {"gsm", "umts"} == derived.FALLBACK_TECHNOLOGIES  # DERIVED_SQL's regex
    now = int(dt.datetime.now(dt.UTC).timestamp())
    history = {  # probe -> its reads' (technology, registered), oldest first
        "p-4g": [("lte", True), ("lte", True)],
        "p-3g": [("lte", True), ("umts", True)],
        "p-2g": [("gsm", True)],
        "p-lost": [("lte", True), ("", False)],
        "p-back": [("umts", True), ("lte", True)],
        "p-lost-then-3g": [("", False), ("umts", True)],
    }
    lines = []
    for probe, reads in history.items():
        place = rp.Probe(probe, "Phú Lâm", "Tân Phú", "Viettel", "45204")
        for i, (tech, registered) in enumerate(reads):
            tags = ",".join(
                f"{k}={v.replace(' ', chr(92) + ' ')}"
                for k, v in sorted(place.tags(radio_technology=tech).items())
            )
            t = (now - 600 + 60 * i) * 10**9
            lines.append(f"radio,{tags} seq={i + 1}i,registered={str(registered).lower()} {t}")
    influx_db.server.write_lines(influx_db.db, lines)
    path = tmp_path / "alerts.toml"
    path.write_text(RADIO_RULES)
    rules_file = load_alerts(path, env={})
    targets = load_targets(Path(__file__).resolve().parents[2] / "config/targets.sample.toml")
    generated, skipped = alerts.generate(rules_file, targets)
    assert skipped == []
    assert {g.name for g in generated} == {"mobile_service_lost", "radio_fallback"}
    for g in generated:
        flagged = set()
        for labels, value in _rule_values(influx_db, g.query, 86_400).items():
            if value is not None and (value < g.threshold if g.op == "lt" else value > g.threshold):
                flagged.add(dict(labels)["probe"])
                # The summary names {operator}: the alert has the label (the inventory's).
                assert dict(labels)["operator"] == "Viettel", labels
        # The collector: the derived value of each probe's newest read that has one.
        want = set()
        for probe, reads in history.items():
            values = [
                derived.DERIVED[("radio", g.rule.field)](
                    {"radio_technology": tech} if tech else {}, {"registered": registered}
                )
                for tech, registered in reads
            ]
            newest = [v for v in values if v is not None][-1]
            threshold = threshold_of(g.rule, targets, None)
            assert threshold is not None
            if newest < threshold if g.rule.op == "below" else newest > threshold:
                want.add(probe)
        assert flagged == want, g.name
        assert want  # each rule flags someone here
    # Vietnamese texts with the alert's labels.
    doc = alerts.unescape_all(alerts.rules_file(rules_file, targets))
    summaries = {
        r["labels"]["rule"]: r["annotations"]["summary"] for r in doc["groups"][0]["rules"]
    }
    assert summaries["mobile_service_lost"] == (
        "mất sóng di động tại {{ $labels.commune }} ({{ $labels.operator }})"
    )
