"""The data-model tables (collector/README.md and each kind's README.md) name exactly what
the collector writes, typed."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import msgspec
from probefleet import kinds
from probefleet.collector.alerts.engine import alert_point
from probefleet.collector.alerts.lifecycle import Alert
from probefleet.collector.fleet import FleetRow
from probefleet.collector.inventory import Enrichment, InventoryFile, load_inventory, load_targets
from probefleet.collector.lineproto import Point
from probefleet.collector.points import parse, points_from
from probefleet.collector.selfmetrics import Gauges, collector_point, presence_points
from probefleet.collector.stats import NAMES, Observed
from probefleet.core import wire

from tests.collector.helpers import GOLDEN, ROOT, encode, result

README = ROOT / "collector" / "README.md"
TOPICS = wire.Topics()
KIND_OF = {bool: "boolean", int: "integer", float: "float", str: "string"}


def sections() -> list[tuple[list[str], dict[str, str]]]:
    """(measurements, or ["*"] for the common table; key -> "tag" | field type), per table."""
    out: list[tuple[list[str], dict[str, str]]] = []
    texts = [README.read_text()] + [s.readme.read_text() for s in kinds.SPECS.values()]
    for line in "\n".join(texts).splitlines():
        if line.startswith("### "):
            names = re.findall(r"`([a-z0-9]+)`", line) or (["*"] if "Common" in line else [])
            out.append((names, {}))
        row = re.match(r"^\| `([a-z0-9_<>]+)` \| (tag|float|integer|boolean|string) \|", line)
        if row and out:
            out[-1][1][row[1]] = row[2]
    return [s for s in out if s[0]]


def documented(measurement: str) -> dict[str, str]:
    doc: dict[str, str] = {}
    for names, table in sections():
        if "*" in names or measurement in names:
            doc.update(table)
    return doc


def _key(name: str) -> str:
    return "detail_<name>" if name.startswith("detail_") else name


def written() -> list[Point]:
    """The goldens, plus an unknown probe, a district and an upload target."""
    inventory = load_inventory(ROOT / "config/inventory.sample.toml")
    tanphu = inventory.probes["dongnai-tanphu-01"]
    probes = {
        **inventory.probes,
        "dongnai-tanphu-01": msgspec.structs.replace(tanphu, district="Tân Phú"),
    }
    targets = load_targets(ROOT / "config/targets.sample.toml")
    targets = msgspec.structs.replace(
        targets, fixed=msgspec.structs.replace(targets.fixed, upload_mbps=50.0)
    )
    enrichment = Enrichment(InventoryFile(probes=probes), targets)
    docs = [json.loads(p.read_bytes()) for p in sorted(GOLDEN.glob("result-*.json"))]
    docs.append(result("latency", probe="not-in-inventory"))
    ipv6 = result("ipv6", probe="dongnai-tanphu-01", seq=2)
    ipv6["data"]["checks"][3]["rtt_v6_ms"] = 4.4
    docs.append(ipv6)
    points: list[Point] = []
    for doc in docs:
        parsed = parse(TOPICS.result(doc["probe_id"], doc["kind"]), encode(doc), TOPICS)
        points += points_from(parsed.result, parsed.probe, enrichment)
    return points + own_points()


OWN_MEASUREMENTS = {"presence", "collector", "alert"}


def own_points() -> list[Point]:
    """The collector's own points, with every optional field present."""
    row = FleetRow("p-1", "Tân Phú", "Tân Phú", "Đồng Nai", "online", 99.0, True, {"": True},
                   True, "latency", 3, True, None)  # fmt: skip
    unknown = FleetRow("p-2", None, None, None, "never seen", None, None, {}, None, None, None,
                       False, None)  # fmt: skip
    seen = Observed(2, 3.0, 2.0)
    own = collector_point(
        "c-1",
        dict.fromkeys(NAMES, 1),
        {"lag_s": seen, "write_latency_s": seen},
        Gauges(1, 2, 3, 4, alerts_firing=5, lag_s=0.5, held=6, held_max=7, dropped_redelivered=8),
        now_s=120.0,
        interval_s=60.0,
    )
    labels = {"probe": "p-1", "interface": "eth0", "target": "t", "service": "s", "check": "c",
              "commune": "Tân Phú", "district": "Tân Phú"}  # fmt: skip
    alert = Alert("k", "r", labels, "warning", "s", "latency", "rtt_median_ms", "above", 1.0, 2.0)
    return [
        own,
        *presence_points([row, unknown], now_s=120.0, interval_s=60.0),
        alert_point(alert, 1),
    ]


def test_everything_written_is_documented_with_its_type() -> None:
    for point in written():
        doc = documented(point.measurement)
        for key, _value in point.tags:
            assert doc.get(key) == "tag", (point.measurement, key)
        for key, value in point.fields:
            assert doc.get(_key(key)) == KIND_OF[type(value)], (point.measurement, key)


def test_everything_documented_is_written() -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for point in written():
        seen[point.measurement] |= {k for k, _ in point.tags} | {_key(k) for k, _ in point.fields}
    for names, table in sections():
        wrote = set().union(*(seen[n] for n in (kinds.names() if "*" in names else names)))
        assert set(table) <= wrote, (names, set(table) - wrote)
    documented_kinds = {n for names, _ in sections() for n in names} - {"*"}
    assert documented_kinds == set(kinds.names()) | OWN_MEASUREMENTS
