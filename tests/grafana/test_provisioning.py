"""grafana/provisioning without Grafana: generated files up to date, stable unique uids, one data
source, every variable defined, every measurement/field/tag one the collector writes (its
README data model), alert thresholds equal to the targets file, compose wiring."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.inventory import load_targets
from grafana import alerts, build, dashboards
from grafana.model import DS_UID
from grafana.panel_queries import AWAITING, DASHBOARD_ONLY, PANEL_QUERIES

ROOT = Path(__file__).resolve().parents[2]
OUT = build.OUT
SAMPLE_TARGETS = ROOT / "config" / "targets.sample.toml"
COMPOSE = ROOT / "deploy" / "central" / "compose.yaml"
# Grafana's own placeholders: the time range, the bucket, and alias patterns.
BUILTINS = {"timeFilter", "__interval", "__all", "col"}


def boards() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((OUT / "dashboards" / "json").glob("*.json")):
        out[path.stem] = json.loads(path.read_text())
    return out


def targets_of(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield from panel.get("targets", [])


def test_committed_files_are_what_build_writes(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--check"]) == 0, capsys.readouterr().out
    assert len(boards()) == 5


def test_check_notices_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--out", str(tmp_path), "--check"]) == 0
    path = tmp_path / "dashboards" / "json" / "commune.json"
    path.write_text(path.read_text().replace("Download", "Dowload", 1))
    assert build.main(["--out", str(tmp_path), "--check"]) == 1
    assert "stale: grafana/provisioning/dashboards/json/commune.json" in capsys.readouterr().out


def test_uids_are_stable_and_unique() -> None:
    found = {board["uid"]: stem for stem, board in boards().items()}
    # Links and bookmarks use these: changing one is a breaking change.
    assert set(found) == {
        "probefleet-fleet-overview",
        "probefleet-commune",
        "probefleet-compliance",
        "probefleet-ipv6",
        "probefleet-fleet-health",
    }
    assert set(found) == set(dashboards.UIDS.values())
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


# --- the collector's data model (collector/README.md) ---------------------------------------


def data_model() -> dict[str, set[str]]:
    """measurement -> the tags and fields the README's data model lists (common ones too)."""
    text = (ROOT / "collector" / "README.md").read_text()
    model_text = text.split("## Data model", 1)[1].split("\n## ", 1)[0]
    common: set[str] = set()
    model: dict[str, set[str]] = {}
    for section in re.split(r"\n### ", model_text)[1:]:
        heading, _, body = section.partition("\n")
        keys = set(re.findall(r"^\| `([a-z0-9_<>]+)` \|", body, flags=re.M))
        names = re.findall(r"`([a-z0-9_]+)`", heading)
        if heading.startswith("Common"):
            common = keys
        for name in names:
            model[name] = keys
    assert {"throughput", "latency", "dns", "ipv6", "service", "health"} <= set(model)
    return {m: keys | common for m, keys in model.items()}


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
    assert len(texts) > 40
    checked = 0
    for text in texts:
        names, identifiers = referenced(text)
        assert names, text
        for name in names:
            # A measurement still being added elsewhere (AWAITING) is checked as soon as the
            # README documents it; until then it is the only kind allowed to be missing.
            if name not in model and name in AWAITING:
                continue
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


# --- alert thresholds = the targets file ----------------------------------------------------


def thresholds(rules: dict[str, Any]) -> dict[str, float]:
    out = {}
    for rule in alerts.unescape_all(rules)["groups"][0]["rules"]:
        for d in rule["data"]:
            m = re.search(r"\$VALUE [<>] ([0-9.]+)", d["model"].get("expression", ""))
            if m:
                out[rule["uid"]] = float(m.group(1))
    return out


def test_alert_thresholds_are_the_targets_files() -> None:
    targets = load_targets(SAMPLE_TARGETS)
    committed = build.load_yaml_json((OUT / "alerting/rules.yaml").read_text())
    assert thresholds(committed) == {
        "probefleet-download-fixed": targets.fixed.download_mbps,
        "probefleet-download-mobile": targets.mobile.download_mbps,
    }
    # Every $ reaches Grafana escaped: its provisioning would expand $timeFilter, $VALUE ...
    raw = (OUT / "alerting/rules.yaml").read_text()
    assert "$timeFilter" in raw
    assert not re.search(r"(?<!\$)\$(?!\$)", raw.replace("$$", "")), "an unescaped $"


def test_every_target_the_file_sets_makes_a_rule(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(
        "year = 2026\n[fixed]\ndownload_mbps = 300.0\nupload_mbps = 100.0\nlatency_ms = 20.0\n"
        "loss_pct = 1.0\n[mobile]\ndownload_mbps = 80.0\n[ipv6]\nworks_pct = 90.0\n"
    )
    targets = load_targets(path)
    got = thresholds(alerts.rules_file(targets))
    assert got == {
        "probefleet-download-fixed": 300.0,
        "probefleet-upload-fixed": 100.0,
        "probefleet-latency-fixed": 20.0,
        "probefleet-loss-fixed": 1.0,
        "probefleet-download-mobile": 80.0,
        "probefleet-ipv6-works": 90.0,
    }
    # Dashboards say the targets too, from the same file.
    overview = json.dumps(dashboards.fleet_overview(targets), ensure_ascii=False)
    assert "300 Mbit/s fixed" in overview
    assert "80/300 Mbit/s" in overview


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
    assert (
        provider["providers"][0]["options"]["path"] == "/etc/grafana/provisioning/dashboards/json"
    )


def test_peak_hours_are_shaded_as_the_report_counts_them() -> None:
    from collector import queries

    for stem in ("compliance", "commune"):
        regions = [
            a["target"]["timeRegion"]
            for a in boards()[stem]["annotations"]["list"]
            if a["target"].get("queryType") == "timeRegions"
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


PANEL_TYPES = {"timeseries", "stat", "table", "geomap", "bargauge", "row"}


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
        names.append(layer["config"]["style"]["color"]["field"])
        names.append(layer["config"]["style"]["text"]["field"])
    return names


def test_panels_refer_only_to_columns_their_queries_return() -> None:
    checked = 0
    for board in boards().values():
        for panel in board["panels"]:
            assert panel["type"] in PANEL_TYPES, panel["type"]
            if panel["type"] == "row":
                continue
            columns = {"Time", "Time 1", "Time 2"}
            for t in panel["targets"]:
                query = PANEL_QUERIES[t["probefleetQuery"]]
                columns |= set(query.columns) | set(t["probefleetGroupBy"])
                columns |= set(query.fixed_group_by)
                # A table of several queries: Grafana suffixes clashing names after a join.
                columns |= {f"{c} {i}" for c in query.columns for i in (1, 2)}
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
