"""The cardinality guard: one probe flooding new tag values or field keys is refused (dead
letters, counted), never InfluxDB; everyone else's new values and results still go in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from probefleet.collector.cardinality import CardinalityGuard, CardinalitySection
from probefleet.collector.errors import Rejected
from probefleet.collector.inventory import Enrichment
from probefleet.collector.points import parse, points_from
from probefleet.collector.statedb import StateDB
from probefleet.core import wire

from tests.collector.helpers import count, encode, result, topic_of
from tests.collector.test_service import collector, probe
from tests.harness import InfluxTarget, Mosquitto, eventually

TOPICS = wire.Topics()
CAPS = CardinalitySection(tag_values_per_probe=5, tag_values=12, field_keys=40)


def _targets(doc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    first = doc["data"]["targets"][0]
    doc["data"]["targets"] = [dict(first, target=n) for n in names]
    return doc


def _points(doc: dict[str, Any]) -> list[Any]:
    parsed = parse(topic_of(doc), encode(doc), TOPICS)
    return points_from(parsed.result, parsed.probe, Enrichment())


def test_a_probe_may_bring_so_many_new_values_and_the_fleet_so_many() -> None:
    guard = CardinalityGuard([], CAPS)
    for i in range(5):  # probe-a brings 5 targets, one result each
        guard.admit("probe-a", _points(_targets(result(probe="probe-a", seq=i + 1), [f"a{i}"])))
    with pytest.raises(Rejected, match="tag_values_per_probe is 5") as refused:
        guard.admit("probe-a", _points(_targets(result(probe="probe-a", seq=9), ["a-new"])))
    assert refused.value.field == "tags.target"
    # Known values cost nothing, for any probe.
    guard.admit("probe-b", _points(_targets(result(probe="probe-b"), ["a0", "a1", "a2"])))
    guard.admit("probe-b", _points(_targets(result(probe="probe-b", seq=2), ["b0", "b1"])))
    guard.admit("probe-c", _points(_targets(result(probe="probe-c"), ["c0", "c1", "c2"])))
    # The fleet's cap: 5 + 2 + 3 = 10 of 12; probe-d's 3 new ones would make 13.
    with pytest.raises(Rejected, match=r"cardinality\.tag_values is 12"):
        guard.admit("probe-d", _points(_targets(result(probe="probe-d"), ["d0", "d1", "d2"])))
    # A refused result leaves nothing behind: the same values stay unknown.
    assert all(e[3] not in {"d0", "d1", "d2"} for e in guard.take_new())


def test_failed_results_cannot_grow_the_field_keys_without_bound() -> None:
    guard = CardinalityGuard([], CAPS)
    refused = 0
    for i in range(60):
        doc = result("throughput", seq=i + 1, status="failed", reason="busy",
                     detail={f"k{i}_{j}": 1.0 for j in range(16)})  # fmt: skip
        doc.pop("data")
        try:
            guard.admit("probe-a", _points(doc))
        except Rejected as exc:
            refused += "cardinality.field_keys is 40" in exc.reason
    assert refused == 58  # seq, clock_synced, ... + 16 detail keys: two fit in 40


def test_what_was_admitted_survives_a_restart(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    guard = CardinalityGuard(db.load_cardinality(), CAPS)
    guard.admit("probe-a", _points(_targets(result(probe="probe-a"), ["a0", "a1", "a2", "a3"])))
    with db.transaction():
        db.save_cardinality(guard.take_new())
    db.close()
    db = StateDB(tmp_path)
    again = CardinalityGuard(db.load_cardinality(), CAPS)
    again.admit("probe-a", _points(_targets(result(probe="probe-a", seq=2), ["a4"])))
    with pytest.raises(Rejected, match="has brought 5 values"):  # the budget stayed spent
        again.admit("probe-a", _points(_targets(result(probe="probe-a", seq=3), ["a5"])))
    db.close()


def test_a_flood_of_new_targets_is_refused_by_the_collector_not_by_influxdb(
    tmp_path: Path, mosquitto: Mosquitto, influx_db: InfluxTarget
) -> None:
    caps = {"tag_values_per_probe": 20, "tag_values": 1000, "field_keys": 200}
    with (
        collector(tmp_path, mosquitto, influx_db, cardinality=caps) as service,
        probe(mosquitto, "probe-a") as attacker,
        probe(mosquitto, "probe-b") as good,
    ):
        for seq in range(1, 201):  # 200 results, 5 new targets each: 1,000 values
            names = [f"flood-{seq}-{i}.invalid" for i in range(5)]
            attacker.publish(_targets(result(probe="probe-a", seq=seq), names))
        for seq in range(1, 11):  # an honest probe with its own new targets, meanwhile
            good.publish(_targets(result(probe="probe-b", seq=seq), [f"ns{seq}.dongnai.vn"]))
        eventually(lambda: attacker.stored_through() == 200 and good.stored_through() == 10,
                   timeout_s=60, message="not every result acknowledged")  # fmt: skip
        assert service.stats["cardinality_refused"] == 196  # 4 results = 20 targets went in
        assert count(influx_db, "latency", "probe = 'probe-a'") == 20
        assert count(influx_db, "latency", "probe = 'probe-b'") == 10
        assert service.stats["points_rejected"] == 0  # InfluxDB never had to refuse
        assert service.deadletters.count() == 196
