"""Presence (pure): online / offline / silent / never seen, line up and last test apart."""

from __future__ import annotations

import datetime as dt
from typing import Any

from probefleet.collector.fleet import fleet_rows, format_json, format_table
from probefleet.collector.inventory import load_inventory
from probefleet.collector.presence import Presence, ProbePresence
from probefleet.core import wire

from tests.collector.helpers import ROOT, encode, result, status_payload

NOW = 1_800_000_000.0


def _status(probe: str, state: str, at: float | None = None) -> wire.ProbeStatus:
    when = dt.datetime.fromtimestamp(at, dt.UTC) if at is not None else None
    return wire.decode(status_payload(probe, state, at=when), wire.ProbeStatus)


def _result(kind: str = "latency", **changes: Any) -> wire.Result:
    return wire.decode_result(encode(result(kind, **changes)))


def test_status_and_last_will_drive_presence() -> None:
    book = Presence()
    book.on_status("probe-a", _status("probe-a", "online", NOW - 5), NOW - 5, replayed=False)
    p = book.states["probe-a"]
    assert p.state(NOW, 900) == "online"
    book.on_status("probe-a", _status("probe-a", "offline"), NOW, replayed=False)
    assert p.state(NOW + 1, 900) == "offline"
    # A result after the Last Will: the probe is back (its online status may come later).
    book.on_result("probe-a", _result(), 1, NOW + 2)
    assert p.state(NOW + 3, 900) == "online"
    # Nothing heard for offline_after_s: silent.
    assert p.state(NOW + 2 + 901, 900) == "silent"
    assert ProbePresence().state(NOW, 900) == "never seen"


def test_a_replayed_retained_status_is_no_sign_of_life() -> None:
    book = Presence()
    book.on_status("probe-a", _status("probe-a", "online", NOW - 3600), NOW, replayed=True)
    p = book.states["probe-a"]
    assert p.last_seen_s == NOW - 3600
    assert p.state(NOW, 900) == "silent"
    # A replayed Last Will does not overwrite a state we know.
    book.on_status("probe-a", _status("probe-a", "offline"), NOW, replayed=True)
    assert p.status == "online"


def test_a_retained_status_from_the_future_is_not_believed() -> None:
    book = Presence(max_future_s=300.0)
    book.on_status("probe-a", _status("probe-a", "online", NOW - 5), NOW - 5, replayed=False)
    future = dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp()
    book.on_status("probe-a", _status("probe-a", "online", future), NOW, replayed=True)
    assert book.get("probe-a").status_s == NOW - 5
    # ... so the probe still goes silent when it stops, and the offline alert can fire.
    assert book.get("probe-a").state(NOW + 3600, 900) == "silent"
    # Within the allowed skew a replayed status is taken as it is.
    book.on_status("probe-a", _status("probe-a", "online", NOW + 60), NOW, replayed=True)
    assert book.get("probe-a").status_s == NOW + 60


def test_line_up_and_last_test_are_kept_apart_and_follow_measurement_time() -> None:
    book = Presence()
    ok = _result("latency", seq=1)
    lost = result("latency", seq=2)
    for target in lost["data"]["targets"]:
        target.update(received=0, loss_pct=100.0)
        for key in [k for k in target if k.startswith("rtt_") or k == "jitter_ms"]:
            del target[key]
    down = wire.decode_result(encode(lost))
    book.on_result("probe-a", ok, 10, NOW)
    book.on_result("probe-a", down, 20, NOW)
    p = book.states["probe-a"]
    assert p.line_up() is False
    # The line is down but the test itself ran fine.
    assert p.last_test is not None
    assert p.last_test.ok
    # An older result delivered late changes nothing.
    book.on_result("probe-a", ok, 5, NOW)
    assert p.line_up() is False
    failed = _result("dns", seq=3, status="failed", reason="no resolver", data=None)
    book.on_result("probe-a", failed, 30, NOW)
    # A fresh name: mypy would keep p.last_test.ok narrowed to True across on_result().
    last_test = p.last_test
    assert last_test is not None
    assert not last_test.ok
    assert last_test.kind == "dns"
    health = _result("health", seq=4)
    book.on_result("probe-a", health, 40, NOW)
    assert p.spool_depth == result("health")["data"].get("spool_depth")
    assert ProbePresence.from_json(p.to_json()) == p


def test_fleet_table_lists_never_seen_inventory_probes() -> None:
    inventory = load_inventory(ROOT / "config/inventory.sample.toml")
    book = Presence()
    book.on_result("dongnai-tanphu-01", _result(probe="dongnai-tanphu-01"), 1, NOW - 10)
    book.on_status("stray-1", _status("stray-1", "offline"), NOW - 10, replayed=False)
    rows = fleet_rows(inventory, book.states, NOW, 900)
    by = {r.probe: r for r in rows}
    assert by["dongnai-tanphu-01"].state == "online"
    assert by["dongnai-tanphu-01"].commune == "Tân Phú"
    assert by["dongnai-bienhoa-01"].state == "never seen"
    assert by["stray-1"].state == "offline"
    assert not by["stray-1"].in_inventory
    table = format_table(rows, NOW)
    assert "never seen" in table
    assert "1 of 3 probes online" in table
    assert '"state": "never seen"' in format_json(rows)


def test_a_quiet_the_collectors_lag_explains_is_no_silence_a_last_will_is_offline() -> None:
    book = Presence()
    book.on_result("probe-a", _result(probe="probe-a"), 1, NOW)
    p = book.states["probe-a"]
    assert p.state(NOW + 901, 900) == "silent"
    # 200 s behind: its later results may be waiting in the broker's queue for us.
    assert p.state(NOW + 901, 900, lag_s=200) == "online"
    assert p.state(NOW + 1101, 900, lag_s=200) == "silent"
    book.on_status("probe-a", _status("probe-a", "offline"), NOW + 10, replayed=False)
    assert p.state(NOW + 11, 900, lag_s=10_000) == "offline"
    inventory = load_inventory(ROOT / "config/inventory.sample.toml")
    rows = {r.probe: r for r in fleet_rows(inventory, book.states, NOW + 11, 900, lag_s=5)}
    assert rows["probe-a"].state == "offline"
