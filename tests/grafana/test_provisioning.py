"""grafana/provisioning without Grafana: generated files up to date, stable unique uids, one data
source, every variable defined, every measurement/field/tag one the collector writes (its
README data model), alert rules and thresholds equal to the collector's (its rules file and
the targets file), compose wiring."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from probefleet import kinds
from probefleet.collector import rollups_spec
from probefleet.collector.alerts.rules import load_alerts, threshold_of
from probefleet.collector.hamlets import HAMLET_COMMUNE_TAG, HAMLET_TAG
from probefleet.collector.inventory import load_targets
from probefleet.collector.rollups_daily import DISTRICT_TAGS

from grafana import alerts, build
from grafana.common import UIDS
from grafana.fleet_boards import fleet_overview
from grafana.i18n import Words
from grafana.model import ALERT_ANNOTATION_QUERY, DS_UID
from grafana.panel_queries import DASHBOARD_ONLY, PANEL_QUERIES

ROOT = Path(__file__).resolve().parents[2]
OUT = build.OUT
SAMPLE_TARGETS = ROOT / "config" / "targets.sample.toml"
SAMPLE_ALERTS = ROOT / "config" / "alerts.sample.toml"
DEPLOY_README = ROOT / "deploy" / "central" / "README.md"
COMPOSE = ROOT / "deploy" / "central" / "compose.yaml"
# Grafana's own placeholders: the time range, the bucket, and alias patterns.
BUILTINS = {"timeFilter", "__interval", "__range_s", "__all", "col"}


def boards() -> dict[str, dict[str, Any]]:
    """ "<lang>/<stem>" -> board, both languages."""
    out = {}
    for path in sorted((OUT / "dashboards" / "json").glob("*/*.json")):
        out[f"{path.parent.name}/{path.stem}"] = json.loads(path.read_text())
    return out


def targets_of(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield from panel.get("targets", [])


def test_committed_files_are_what_build_writes(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--check"]) == 0, capsys.readouterr().out
    assert len(boards()) == 2 * 8


def test_check_notices_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--out", str(tmp_path), "--check"]) == 0
    path = tmp_path / "dashboards" / "json" / "en" / "commune.json"
    path.write_text(path.read_text().replace("Download", "Dowload", 1))
    assert build.main(["--out", str(tmp_path), "--check"]) == 1
    assert "stale: grafana/provisioning/dashboards/json/en/commune.json" in capsys.readouterr().out
    # A file the build no longer makes is refused by --check, and removed by a build.
    old = tmp_path / "dashboards" / "json" / "commune.json"
    old.write_text("{}")
    assert build.main(["--out", str(tmp_path), "--check"]) == 1
    assert build.main(["--out", str(tmp_path)]) == 0
    assert not old.exists()
    assert build.main(["--out", str(tmp_path), "--check"]) == 0


def test_uids_are_stable_and_unique() -> None:
    found = {board["uid"]: stem for stem, board in boards().items()}
    assert len(found) == len(boards())
    # Links and bookmarks use these: changing one is a breaking change. The province's own
    # (Vietnamese) boards keep them; the English ones end in -en.
    stable = {
        "probefleet-fleet-overview",
        "probefleet-commune",
        "probefleet-compliance",
        "probefleet-ipv6",
        "probefleet-fleet-health",
        "probefleet-year",
        "probefleet-radio",
        "probefleet-survey",
    }
    assert {u for u, stem in found.items() if stem.startswith("vi/")} == stable
    assert {u for u, stem in found.items() if stem.startswith("en/")} == {f"{u}-en" for u in stable}
    assert stable == set(UIDS.values())
    rules = build.load_yaml_json((OUT / "alerting/rules.yaml").read_text())
    uids = [r["uid"] for g in rules["groups"] for r in g["rules"]]
    assert len(uids) == len(set(uids))
    assert all(len(u) <= 40 and re.fullmatch(r"[a-z0-9-]+", u) for u in uids)
    for board in boards().values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]
        for p in board["panels"]:
            g = p["gridPos"]
            assert g["x"] >= 0, (board["uid"], p["title"])
            assert g["x"] + g["w"] <= 24, (board["uid"], p["title"])


def test_one_data_source_everywhere() -> None:
    ds = build.load_yaml_json((OUT / "datasources/probefleet.yaml").read_text())["datasources"]
    assert [d["uid"] for d in ds] == [DS_UID]
    assert ds[0]["jsonData"]["version"] == "InfluxQL"
    assert ds[0]["jsonData"]["httpHeaderName1"] == "Authorization"
    assert ds[0]["secureJsonData"]["httpHeaderValue1"] == "Token ${PROBEFLEET_INFLUX_TOKEN}"
    for board in boards().values():
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == DS_UID
        for t in targets_of(board):
            assert t["datasource"]["uid"] == DS_UID
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                assert var["datasource"]["uid"] == DS_UID
    rules = build.load_yaml_json((OUT / "alerting/rules.yaml").read_text())
    for rule in rules["groups"][0]["rules"]:
        for d in rule["data"]:
            assert d["datasourceUid"] in (DS_UID, "__expr__")


def test_every_variable_used_is_defined() -> None:
    for board in boards().values():
        defined: list[str] = []
        for var in board["templating"]["list"]:
            # A chained variable may only use variables defined before it.
            used = set(re.findall(r"\$(\w+)", var.get("query", ""))) - BUILTINS
            assert used <= set(defined), (board["uid"], var["name"], used - set(defined))
            assert var.get("allValue") == ".*", (board["uid"], var["name"])
            defined.append(var["name"])
        for t in targets_of(board):
            used = set(re.findall(r"\$(\w+)", t["query"])) - BUILTINS
            assert used <= set(defined), (board["uid"], t["probefleetQuery"], used)
            # A series alias names only tags the (outer) query groups by.
            group_by = t["query"].rsplit("GROUP BY", 1)[-1] if "GROUP BY" in t["query"] else ""
            for tag in re.findall(r"\$tag_(\w+)", t.get("alias", "")):
                assert f'"{tag}"' in group_by, (t["probefleetQuery"], t["alias"])


def test_every_panel_query_is_the_catalogues_text() -> None:
    used = set()
    for board in boards().values():
        for t in targets_of(board):
            query = PANEL_QUERIES[t["probefleetQuery"]]
            assert t["query"] == query.grafana(t["probefleetGroupBy"])
            used.add(query.name)
    assert set(DASHBOARD_ONLY) <= used, set(DASHBOARD_ONLY) - used  # no dead queries


# --- the data model (collector/README.md and each kind's README.md) -------------------------


def data_model() -> dict[str, set[str]]:
    """measurement -> the tags and fields the data model lists (common ones too)."""
    text = (ROOT / "collector" / "README.md").read_text()
    model_text = text.split("## Data model", 1)[1].split("\n## ", 1)[0]
    for spec in kinds.SPECS.values():
        model_text += "\n" + spec.readme.read_text().split("## Fields", 1)[1]
    common: set[str] = set()
    model: dict[str, set[str]] = {}
    for section in re.split(r"\n### ", model_text)[1:]:
        heading, _, body = section.partition("\n")
        keys = set(re.findall(r"^\| `([a-z0-9_<>]+)` \|", body, flags=re.M))
        names = re.findall(r"`([a-z0-9_]+)`", heading)
        if heading.startswith("Common"):  # every point's, and every mobile point's (radio)
            common |= keys
        for name in names:
            model[name] = keys
    assert {"throughput", "latency", "dns", "ipv6", "service", "health"} <= set(model)
    out = {m: keys | common for m, keys in model.items()}
    # The collector's hamlet tags on survey points (collector/README.md, "The hamlet of a
    # survey point": a section whose heading names no measurement in backticks).
    assert "The hamlet of a survey point" in model_text
    out["survey"] |= {HAMLET_TAG, HAMLET_COMMUNE_TAG}
    # The rollups (collector/rollups_spec.py): the raw series' tags plus time_source.
    for kind in rollups_spec.SPECS:
        tags = out[kind] | {"time_source"}
        out[rollups_spec.rollup_of(kind)] = tags | rollups_spec.field_names(kind)
        out[f"{kind}_1d"] = tags | rollups_spec.field_names(kind, daily=True)
        # The district rollups (rollups_daily.district_points): their own tags.
        district_tags = set(DISTRICT_TAGS.get(kind, ()))
        out[f"{kind}_district_1d"] = district_tags | rollups_spec.district_field_names(kind)
    out["throughput_hours_1d"] = {"province", "access", "hour_utc"} | rollups_spec.HOURS_FIELDS
    return out


def referenced(text: str) -> tuple[set[str], set[str]]:
    """(measurements, identifiers) a query names; aliases it defines are left out."""
    measurements = set(re.findall(r'FROM ((?:"[a-z0-9_]+"(?:, )?)+)', text))
    names = {m for group in measurements for m in re.findall(r'"([a-z0-9_]+)"', group)}
    aliases = set(re.findall(r'AS "([a-z0-9_]+)"', text))
    identifiers = set(re.findall(r'"([A-Za-z0-9_]+)"', text)) - names - aliases
    return names, identifiers


def test_dashboards_and_rules_name_only_what_the_collector_writes() -> None:
    model = data_model()
    texts = [t["query"] for b in boards().values() for t in targets_of(b)]
    texts += [
        v["query"]
        for b in boards().values()
        for v in b["templating"]["list"]
        if v["type"] == "query"
    ]
    rules = alerts.unescape_all(build.load_yaml_json((OUT / "alerting/rules.yaml").read_text()))
    texts += [
        d["model"]["query"]
        for r in rules["groups"][0]["rules"]
        for d in r["data"]
        if "query" in d["model"]
    ]
    texts.append(ALERT_ANNOTATION_QUERY)
    assert len(texts) > 40
    checked = 0
    for text in texts:
        names, identifiers = referenced(text)
        assert names, text
        for name in names:
            assert name in model, f"{name}: not a measurement the collector writes ({text})"
            unknown = identifiers - model[name]
            assert not unknown, f"{name}: {sorted(unknown)} not in the data model ({text})"
            checked += 1
    assert checked > 40


def test_the_reference_check_catches_a_typo() -> None:
    model = data_model()
    names, identifiers = referenced('SELECT mean("dowload_mbps") FROM "throughput" GROUP BY "x"')
    assert names == {"throughput"}
    assert identifiers - model["throughput"] == {"dowload_mbps", "x"}


# --- alert rules = the collector's rules file, thresholds = what its engine computes ---------


def generated(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """uid -> the parts of each rule a test needs: collector rule, access, threshold, op."""
    out = {}
    for rule in alerts.unescape_all(doc)["groups"][0]["rules"]:
        [condition] = {d["refId"]: d for d in rule["data"]}["ALERT"]["model"]["conditions"]
        out[rule["uid"]] = {
            "rule": rule["labels"]["rule"],
            "access": rule["labels"].get("access"),
            "threshold": condition["evaluator"]["params"][0],
            "op": condition["evaluator"]["type"],
            "for": rule["for"],
            "severity": rule["labels"]["severity"],
            "query": {d["refId"]: d for d in rule["data"]}["V"]["model"]["query"],
        }
    return out


def skipped_in(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# skipped: (\w+): (.+)$", text, flags=re.M))


def test_alert_rules_are_the_collectors_with_its_thresholds() -> None:
    """Every committed rule's threshold is what the collector's engine computes for the same
    rule and access type (threshold_of), and every collector rule is there or skipped."""
    rules_file = load_alerts(SAMPLE_ALERTS, env={})
    targets = load_targets(SAMPLE_TARGETS)
    text = (OUT / "alerting/rules.yaml").read_text()
    got = generated(build.load_yaml_json(text))
    for uid, g in got.items():
        rule = rules_file.rule_for(g["rule"], probe=None, commune=None)
        assert g["threshold"] == threshold_of(rule, targets, g["access"]), uid
        assert g["op"] == {"below": "lt", "above": "gt"}[rule.op], uid
        assert g["severity"] == rule.severity, uid
        assert g["for"] == alerts.duration(rule.for_s), uid
        assert f'FROM "{rule.measurement}"' in g["query"], uid
        if rule.field in alerts.DERIVED_SQL:  # a value the collector derives (radio)
            reads, breach, value = alerts.DERIVED_SQL[rule.field]
            assert f'SELECT {value} AS "value"' in g["query"], uid
            assert f"WHERE {breach} GROUP BY" in g["query"], uid
            assert reads in g["query"], uid
            continue
        assert f'SELECT "{rule.field}" AS "v"' in g["query"], uid
        n = rule.count if rule.mode == "consecutive" else rule.window
        assert f"LIMIT {n})" in g["query"], uid
        assert f'"values" >= {n} ' in g["query"], uid
    pairs = {(g["rule"], g["access"]) for g in got.values()}
    assert ("download_below_target", "fixed") in pairs
    assert ("download_below_target", "mobile") in pairs
    named = {g["rule"] for g in got.values()} | set(skipped_in(text))
    assert named == set(rules_file.rules)
    assert {g["threshold"] for g in got.values() if g["rule"] == "download_below_target"} == {
        targets.fixed.download_mbps,
        targets.mobile.download_mbps,
    }
    assert got["pf-probe-offline"]["for"] == "15m"
    # H2's radio rules (issue 21) are there, on the radio reads.
    assert got["pf-mobile-service-lost"]["for"] == "10m"
    assert got["pf-radio-fallback"]["for"] == "30m"
    assert 'FROM "radio"' in got["pf-radio-fallback"]["query"]
    assert 'FROM "presence"' in got["pf-probe-offline"]["query"]
    # Every $ reaches Grafana escaped: its provisioning would expand $timeFilter, $VALUE ...
    raw = (OUT / "alerting/rules.yaml").read_text()
    assert "$$timeFilter" in raw
    assert not re.search(r"(?<!\$)\$(?!\$)", raw.replace("$$", "")), "an unescaped $"


def test_skipped_rules_are_exactly_the_documented_ones() -> None:
    """The committed file's header and deploy/central/README.md list the same rules and
    reasons, and the generator agrees."""
    committed = skipped_in((OUT / "alerting/rules.yaml").read_text())
    readme = DEPLOY_README.read_text()
    section = readme.split("<!-- grafana-skipped -->", 2)[1]
    documented = dict(re.findall(r"^- `(\w+)`: (.+)$", section, flags=re.M))
    assert committed == documented
    _rules, skipped = alerts.generate(
        load_alerts(SAMPLE_ALERTS, env={}), load_targets(SAMPLE_TARGETS)
    )
    assert {s.name: s.reason for s in skipped} == committed
    assert committed == {"upload_below_target": alerts.SKIP_NO_TARGET.format(target="upload_mbps")}


def _alerts_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    return path


def test_a_changed_threshold_changes_the_grafana_rule(tmp_path: Path) -> None:
    sample = SAMPLE_ALERTS.read_text()
    changed = sample.replace("threshold = 100.0", "threshold = 250.0", 1).replace(
        'target = "download_mbps"\n', 'target = "download_mbps"\ntarget_factor = 0.8\n', 1
    )
    assert changed.count("250.0") == 1
    assert "target_factor = 0.8" in changed
    out = tmp_path / "out"
    alerts_path = _alerts_file(tmp_path, changed)
    assert build.main(["--alerts", str(alerts_path), "--out", str(out)]) == 0
    got = generated(build.load_yaml_json((out / "alerting/rules.yaml").read_text()))
    assert got["pf-latency-high"]["threshold"] == 250.0
    assert got["pf-download-below-target-fixed"]["threshold"] == pytest.approx(120.0)
    assert got["pf-download-below-target-mobile"]["threshold"] == pytest.approx(48.0)
    # The committed files (the sample) are now stale for --check against this file.
    assert build.main(["--alerts", str(alerts_path), "--check"]) == 1


def test_overrides_become_rules_of_their_own(tmp_path: Path) -> None:
    text = SAMPLE_ALERTS.read_text() + (
        '\n[[overrides]]\nrule = "latency_high"\ncommune = "Tân Phú"\nthreshold = 300.0\n'
        '\n[[overrides]]\nrule = "latency_high"\nprobe = "p-1"\nwindow = 9\n'
        '\n[[overrides]]\nrule = "temperature_high"\nprobe = "p-2"\nenabled = false\n'
        '\n[[overrides]]\nrule = "probe_offline"\nprobe = "p-3"\nfor_s = 3600.0\n'
    )
    rules_file = load_alerts(_alerts_file(tmp_path, text), env={})
    targets = load_targets(SAMPLE_TARGETS)
    got = generated(alerts.rules_file(rules_file, targets))
    latency = {uid: g for uid, g in got.items() if g["rule"] == "latency_high"}
    # p-1 in Tân Phú, p-1 elsewhere, Tân Phú without p-1, the rest.
    assert sorted((g["threshold"], g["query"].count("LIMIT 9")) for g in latency.values()) == [
        (100.0, 0), (100.0, 1), (300.0, 0), (300.0, 1)
    ]  # fmt: skip
    base = latency["pf-latency-high"]["query"]
    assert '"probe" !~ /^(p-1)$/' in base
    assert '"commune" !~ /^(Tân Phú)$/' in base
    # A disabled override: its probe is left out of the base rule and gets none of its own.
    temperature = [g for g in got.values() if g["rule"] == "temperature_high"]
    assert len(temperature) == 1
    assert '"probe" !~ /^(p-2)$/' in temperature[0]["query"]
    offline = sorted(g["for"] for g in got.values() if g["rule"] == "probe_offline")
    assert offline == ["15m", "1h"]


def test_a_disabled_rule_and_a_presence_field_the_engine_ignores_are_skipped(
    tmp_path: Path,
) -> None:
    text = (
        '[rules.spool]\nmeasurement = "health"\nfield = "spool_depth"\nop = "above"\n'
        "threshold = 5.0\nenabled = false\n"
        '[rules.stale]\nmeasurement = "presence"\nfield = "last_seen_age_s"\nop = "above"\n'
        "threshold = 600.0\n"
        '[rules.upload]\nmeasurement = "throughput"\nfield = "upload_mbps"\nop = "below"\n'
        'target = "upload_mbps"\n'
    )
    rules, skipped = alerts.generate(
        load_alerts(_alerts_file(tmp_path, text), env={}), load_targets(SAMPLE_TARGETS)
    )
    assert rules == []
    assert {s.name: s.reason for s in skipped} == {
        "spool": alerts.SKIP_DISABLED,
        "stale": alerts.SKIP_PRESENCE_FIELD,
        "upload": alerts.SKIP_NO_TARGET.format(target="upload_mbps"),
    }


def test_an_upload_target_in_the_targets_file_makes_upload_rules(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(
        "year = 2026\n[fixed]\ndownload_mbps = 300.0\nupload_mbps = 100.0\n"
        "[mobile]\ndownload_mbps = 80.0\n"
    )
    targets = load_targets(path)
    got = generated(alerts.rules_file(load_alerts(SAMPLE_ALERTS, env={}), targets))
    thresholds = {(g["rule"], g["access"]): g["threshold"] for g in got.values()}
    assert thresholds[("upload_below_target", "fixed")] == 100.0
    assert ("upload_below_target", "mobile") not in thresholds
    assert thresholds[("download_below_target", "fixed")] == 300.0
    assert thresholds[("download_below_target", "mobile")] == 80.0
    # Dashboards say the targets too, from the same file.
    overview = json.dumps(fleet_overview(Words("en"), targets), ensure_ascii=False)
    assert "300 Mbit/s fixed" in overview
    assert "80/300 Mbit/s" in overview
    overview = json.dumps(fleet_overview(Words("vi"), targets), ensure_ascii=False)
    assert "300 Mbit/s cố định" in overview
    assert "80/300 Mbit/s" in overview


def test_repeat_interval_is_the_collectors_renotify_interval(tmp_path: Path) -> None:
    committed = build.load_yaml_json((OUT / "alerting/contact-points.yaml").read_text())
    assert committed["policies"][0]["repeat_interval"] == "1h"  # notify.renotify_min_s = 3600
    text = SAMPLE_ALERTS.read_text().replace("renotify_min_s = 3600.0", "renotify_min_s = 5400.0")
    doc = alerts.contact_points_file(load_alerts(_alerts_file(tmp_path, text), env={}))
    assert doc["policies"][0]["repeat_interval"] == "90m"


def test_compose_provides_what_provisioning_expects() -> None:
    compose = COMPOSE.read_text()
    env_used = set()
    for path in OUT.rglob("*.yaml"):
        env_used |= set(re.findall(r"(?<!\$)\$\{(\w+)\}", path.read_text()))
    assert env_used == {
        "PROBEFLEET_INFLUX_URL",
        "PROBEFLEET_INFLUX_TOKEN",
        "PROBEFLEET_ALERT_EMAILS",
        "PROBEFLEET_ALERT_WEBHOOK_URL",
    }
    for name in env_used:
        assert re.search(rf"\b{name}\b", compose), f"compose.yaml does not set {name}"
    assert "../../grafana/provisioning:/etc/grafana/provisioning:ro" in compose
    provider = build.load_yaml_json((OUT / "dashboards/probefleet.yaml").read_text())
    paths = {p["folder"]: p["options"]["path"] for p in provider["providers"]}
    assert paths == {
        "probefleet": "/etc/grafana/provisioning/dashboards/json/vi",
        "probefleet (English)": "/etc/grafana/provisioning/dashboards/json/en",
    }
    for p in provider["providers"]:  # every provider's folder exists in the mounted tree
        assert list((OUT / p["options"]["path"].removeprefix(f"{build.MOUNTED_AT}/")).glob("*"))


def test_peak_hours_are_shaded_as_the_report_counts_them() -> None:
    from probefleet.collector import queries

    for stem in ("vi/compliance", "vi/commune", "en/compliance", "en/commune"):
        regions = [
            a["target"]["timeRegion"]
            for a in boards()[stem]["annotations"]["list"]
            if a.get("target", {}).get("queryType") == "timeRegions"
        ]
        assert regions == [
            {
                "from": f"{queries.PEAK_START_HOUR:02d}:00",
                "to": f"{queries.PEAK_END_HOUR % 24:02d}:00",
                "timezone": queries.LOCAL_TZ,
            }
        ], stem


def test_a_bad_targets_file_is_refused_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "targets.toml"
    bad.write_text("year = 2026\n[fixed]\ndownload_mbps = -5.0\n[mobile]\ndownload_mbps = 60.0\n")
    assert build.main(["--targets", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "fixed.download_mbps" in err
    assert str(bad) in err
    assert not (tmp_path / "out").exists()  # nothing half-written


PANEL_TYPES = {"timeseries", "stat", "table", "geomap", "bargauge", "xychart", "row"}


def _fields_named(panel: dict[str, Any]) -> list[str]:
    """Field names a panel's options, overrides and transformations refer to by name."""
    names: list[str] = []
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"]["id"] == "byName":
            names.append(override["matcher"]["options"])
    for t in panel.get("transformations", []):
        options = t["options"]
        if t["id"] == "joinByField":
            names.append(options["byField"])
        if t["id"] == "sortBy":
            names += [s["field"] for s in options["sort"]]
    for layer in panel["options"].get("layers", []):
        names += [layer["location"]["latitude"], layer["location"]["longitude"]]
        style = layer["config"]["style"]
        # A layer of one fixed colour, or without labels, names no field there.
        names += [style[k]["field"] for k in ("color", "text") if "field" in style.get(k, {})]
    for series in panel["options"].get("series", []):  # xychart
        names += [series[axis]["matcher"]["options"] for axis in ("x", "y")]
    return names


def test_panels_refer_only_to_columns_their_queries_return() -> None:
    checked = 0
    for board in boards().values():
        for panel in board["panels"]:
            assert panel["type"] in PANEL_TYPES, panel["type"]
            if panel["type"] == "row":
                continue
            frames = range(1, len(panel["targets"]) + 1)
            columns = {"Time"} | {f"Time {i}" for i in frames}
            for t in panel["targets"]:
                query = PANEL_QUERIES[t["probefleetQuery"]]
                names = {*query.columns, *t["probefleetGroupBy"], *query.fixed_group_by}
                columns |= names
                # A table of several queries: Grafana suffixes clashing names after a join.
                columns |= {f"{c} {i}" for c in names for i in frames}
                if panel["type"] in ("table", "geomap"):
                    assert t["resultFormat"] == "table", (board["uid"], panel["title"])
            for name in _fields_named(panel):
                assert name in columns, (board["uid"], panel["title"], name)
                checked += 1
            fields = panel["options"].get("reduceOptions", {}).get("fields", "")
            if fields:
                pattern = re.compile(fields.strip("/"))
                assert any(pattern.search(c) for c in columns), (panel["title"], fields)
                checked += 1
    assert checked > 20


def test_a_bad_alerts_file_is_refused_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _alerts_file(
        tmp_path,
        '[rules.slow]\nmeasurement = "throughput"\nfield = "download_mbps"\nop = "below"\n'
        'threshold = 10.0\ntarget = "download_mbps"\n',
    )
    assert build.main(["--alerts", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "rules.slow" in err
    assert str(bad) in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_commune_incidents_are_one_notification_per_commune() -> None:
    """The collector's group = "commune" rules carry incident=commune, and the policy routes
    those to one notification per commune (every such rule together), after the collector's
    group_wait_s; the other rules stay one notification per commune and rule."""
    rules_file = load_alerts(SAMPLE_ALERTS, env={})
    doc = alerts.unescape_all(build.load_yaml_json((OUT / "alerting/rules.yaml").read_text()))
    commune_rules = {n for n, r in rules_file.rules.items() if r.group == "commune"}
    assert {"download_below_target", "service_down", "probe_offline"} <= commune_rules
    for rule in doc["groups"][0]["rules"]:
        grouped = rule["labels"]["rule"] in commune_rules
        assert (rule["labels"].get("incident") == "commune") == grouped, rule["uid"]
    policy = build.load_yaml_json((OUT / "alerting/contact-points.yaml").read_text())["policies"][0]
    [route] = policy["routes"]
    assert route["object_matchers"] == [["incident", "=", "commune"]]
    assert route["group_by"] == ["grafana_folder", "commune"]
    assert route["group_wait"] == alerts.duration(rules_file.notify.group_wait_s)
    assert policy["group_by"] == ["grafana_folder", "alertname", "commune"]
