"""Alert state from before issue 19's subject keys: at start, an old-key row is moved to
its key today or closed with a note, so `probe-collector alerts` lists no ghost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from probefleet.collector import statedb
from probefleet.collector.alerts.engine import AlertEngine
from probefleet.collector.alerts.lifecycle import alerts_from_rows
from probefleet.collector.alerts.outbox import Outbox
from probefleet.collector.alerts.rules import AlertsFile
from probefleet.collector.fleet import FleetRow
from probefleet.collector.inventory import Enrichment, load_inventory, load_targets
from probefleet.collector.lineproto import Point
from probefleet.collector.statedb import StateDB

from tests.collector.helpers import ROOT

T0 = 1_780_000_000.0
PLACE = {"commune": "Tân Phú", "district": "Tân Phú"}


def _old_row(key: str, labels: dict[str, str], what: tuple[str, str, str, float, float],
             breaches: int = 3) -> str:  # fmt: skip
    """A row exactly as the collector before issue 19 wrote it: its Alert and Subject
    dataclasses as JSON (no breach_s, inhibits, digest, incident or note)."""
    measurement, field, op, threshold, value = what
    rule = key.split("|", maxsplit=1)[0]
    alert = {"key": key, "rule": rule, "labels": labels, "severity": "warning",
             "summary": rule, "measurement": measurement, "field": field, "op": op,
             "threshold": threshold, "value": value, "state": "firing", "started_s": T0,
             "resolved_s": None, "notified": True, "silenced": False, "suppressed": ""}  # fmt: skip
    subject = {"firing": True, "breaches": breaches, "goods": 0, "breach_since": T0 - 600,
               "last_at": T0, "values": []}  # fmt: skip
    return json.dumps({"last_notified": T0, "subject": subject, "alert": alert})


OLD_LATENCY = "latency_high|probe=p-1|interface=eth0|target=dns.google"
OLD_SPOOL = "spool_growing|probe=p-1|interface=eth0"
NEW_SPOOL = "spool_growing|interface=eth0|probe=p-1"
OFFLINE = "probe_offline|probe=p-2"  # explicit group_by ["probe"]: the same key then and now
OLD_ROWS = {
    OLD_LATENCY: _old_row(OLD_LATENCY,
                          {"probe": "p-1", "interface": "eth0", "target": "dns.google", **PLACE},
                          ("latency", "rtt_median_ms", "above", 100.0, 130.0)),
    OLD_SPOOL: _old_row(OLD_SPOOL, {"probe": "p-1", "interface": "eth0", **PLACE},
                        ("health", "spool_depth", "above", 500.0, 900.0)),
    OFFLINE: _old_row(OFFLINE, {"probe": "p-2", **PLACE},
                      ("presence", "online_01", "below", 1.0, 0.0), breaches=1),
    # The rule of this one was removed from the alerts file since.
    "old_rule|probe=p-3|interface=eth0": _old_row(
        "old_rule|probe=p-3|interface=eth0", {"probe": "p-3", "interface": "eth0"},
        ("health", "x", "above", 1.0, 2.0)),
}  # fmt: skip


def _engine(tmp: Path, lines: list[str]) -> tuple[AlertEngine, StateDB, Outbox]:
    db, outbox = StateDB(tmp), Outbox(tmp)
    engine = AlertEngine(
        AlertsFile(),
        Enrichment(load_inventory(ROOT / "config/inventory.sample.toml"),
                   load_targets(ROOT / "config/targets.sample.toml")),
        db=db, outbox=outbox, emit=lambda _topic, new: lines.extend(new), channels=["hook"],
    )  # fmt: skip
    return engine, db, outbox


def _listed(tmp: Path) -> set[str]:
    """What `probe-collector alerts` lists (it reads the state file read-only)."""
    return {a.key for a in alerts_from_rows(statedb.load_alert_rows_readonly(tmp))}


def test_old_key_rows_are_moved_or_closed_with_a_note_at_start(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    db.save_alert_rows(OLD_ROWS)
    db.close()
    assert _listed(tmp_path) == set(OLD_ROWS)  # the ghosts, before the upgrade's first start

    lines: list[str] = []
    engine, db, outbox = _engine(tmp_path, lines)
    try:
        active = {a.key: a for a in engine.active()}
        # Moved: the health subject was one subject then and now; state and alert came along.
        assert set(active) == {NEW_SPOOL, OFFLINE}
        assert _listed(tmp_path) == {NEW_SPOOL, OFFLINE}
        rows = db.load_alert_rows()
        assert json.loads(rows[OLD_SPOOL]) == {"moved_to": NEW_SPOOL}
        # Closed: the latency subject merged IPv4 and IPv6; the removed rule's too.
        closed = json.loads(rows[OLD_LATENCY])["alert"]
        assert closed["state"] == "resolved"
        assert closed["resolved_s"] is not None
        assert "older version" in closed["note"]
        gone = json.loads(rows["old_rule|probe=p-3|interface=eth0"])["alert"]
        assert "no longer in the alerts file" in gone["note"]
        # Recorded in InfluxDB as resolved, nobody paged for a closure.
        resolved = [ln for ln in lines if 'state="resolved"' in ln]
        assert len(resolved) == 2
        assert any("rule=latency_high" in ln for ln in resolved)
        assert outbox.due("hook", float("inf"), limit=10) == []
        # The moved subject goes on where it was: three good values resolve it.
        health = {"probe": "p-1", "interface": "eth0", **PLACE}
        engine.evaluate(
            [(Point.build("health", dict(health), {"spool_depth": 10.0}, int((T0 + i) * 1e9)),
              T0 + i) for i in range(1, 4)],
            T0 + 4,
        )  # fmt: skip
        assert {a.key for a in engine.active()} == {OFFLINE}
        docs: list[dict[str, Any]] = [p.doc for p in outbox.due("hook", float("inf"), limit=10)]
        assert [(d["rule"], d["event"]) for d in docs] == [("spool_growing", "resolved")]
        # The old offline alert (paged alone, before commune incidents) resolves alone too.
        row = FleetRow("p-2", "Tân Phú", None, None, "online", 1.0, True, {}, True, None, None,
                       True, None)  # fmt: skip
        engine.tick([row], T0 + 5)
        docs = [p.doc for p in outbox.due("hook", float("inf"), limit=10)]
        assert [(d["rule"], d["event"]) for d in docs][1:] == [("probe_offline", "resolved")]
        assert engine.active() == []
    finally:
        db.close()
        outbox.close()

    # A second start finds nothing to migrate and changes nothing.
    before = dict(StateDB(tmp_path).load_alert_rows())
    engine, db, outbox = _engine(tmp_path, lines := [])
    try:
        assert db.load_alert_rows() == before
        assert not lines
        assert engine.active() == []
    finally:
        db.close()
        outbox.close()
