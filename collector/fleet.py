"""The fleet table: every probe in the inventory or ever heard from, and its presence.

Built from the inventory and :mod:`collector.presence` states, for ``probe-collector fleet``
and for the ``presence`` points the daemon writes. Probes listed in the inventory that
never reported are shown as "never seen".
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

from probefleet.collector.inventory import InventoryFile
from probefleet.collector.presence import ProbePresence, State


@dataclass(frozen=True, slots=True)
class FleetRow:
    probe: str
    commune: str | None
    district: str | None
    province: str | None
    state: State
    last_seen_s: float | None  # collector clock, s
    line_up: bool | None  # None: no line measured yet
    lines: dict[str, bool]  # interface ("" = default) -> up
    last_test_ok: bool | None
    last_test_kind: str | None
    spool_depth: int | None
    in_inventory: bool
    reason: str | None

    @property
    def online(self) -> bool:
        return self.state == "online"


def fleet_rows(
    inventory: InventoryFile,
    states: Mapping[str, ProbePresence],
    now_s: float,
    offline_after_s: float,
    lag_s: float = 0.0,
) -> list[FleetRow]:
    """``lag_s``: the collector's own lag (see ProbePresence.state); the daemon knows it,
    a reader of the state may take ``now_s - through_s`` (meta key ``lag_through_s``)."""
    rows = []
    for probe in sorted(set(inventory.probes) | set(states)):
        info = inventory.probes.get(probe)
        p = states.get(probe) or ProbePresence()
        state = p.state(now_s, offline_after_s, lag_s)
        rows.append(
            FleetRow(
                probe=probe,
                commune=info.commune if info else None,
                district=info.district if info else None,
                province=info.province if info else None,
                state=state,
                last_seen_s=p.last_seen_s,
                line_up=p.line_up(),
                lines={k: m.ok for k, m in sorted(p.lines.items())},
                last_test_ok=p.last_test.ok if p.last_test else None,
                last_test_kind=p.last_test.kind if p.last_test else None,
                spool_depth=p.spool_depth,
                in_inventory=info is not None,
                reason=p.reason if state == "offline" else None,
            )
        )
    return rows


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _ago(seconds: float | None, now_s: float) -> str:
    if seconds is None:
        return ""
    age = max(0, int(now_s - seconds))
    if age < 120:
        return f"{age} s ago"
    if age < 7200:
        return f"{age // 60} min ago"
    if age < 172_800:
        return f"{age // 3600} h ago"
    return f"{age // 86_400} d ago"


def _yes_no(value: bool | None, yes: str = "yes", no: str = "NO") -> str:
    return "-" if value is None else (yes if value else no)


def _lines(row: FleetRow) -> str:
    if not row.lines:
        return "-"
    if list(row.lines) == [""]:
        return _yes_no(row.lines[""], "up", "DOWN")
    return " ".join(f"{k or '?'}:{'up' if ok else 'DOWN'}" for k, ok in row.lines.items())


def format_table(rows: list[FleetRow], now_s: float) -> str:
    header = (
        "probe",
        "commune",
        "district",
        "presence",
        "last seen",
        "line up",
        "last test ok",
        "spool",
    )
    table = [header]
    for r in rows:
        seen = _when(r.last_seen_s)
        if r.last_seen_s is not None:
            seen += f" ({_ago(r.last_seen_s, now_s)})"
        test = _yes_no(r.last_test_ok)
        if r.last_test_kind:
            test += f" ({r.last_test_kind})"
        state = r.state + ("" if r.in_inventory else " (not in inventory)")
        table.append(
            (
                r.probe,
                r.commune or "-",
                r.district or "-",
                state,
                seen,
                _lines(r),
                test,
                "-" if r.spool_depth is None else str(r.spool_depth),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    out = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    online = sum(r.online for r in rows)
    out.append(f"{online} of {len(rows)} probes online")
    return "\n".join(out)


def format_json(rows: list[FleetRow]) -> str:
    docs = []
    for r in rows:
        docs.append(
            {
                "probe": r.probe,
                "commune": r.commune,
                "district": r.district,
                "province": r.province,
                "state": r.state,
                "online": r.online,
                "reason": r.reason,
                "last_seen": None if r.last_seen_s is None else _when(r.last_seen_s),
                "line_up": r.line_up,
                "lines": r.lines,
                "last_test_ok": r.last_test_ok,
                "last_test_kind": r.last_test_kind,
                "spool_depth": r.spool_depth,
                "in_inventory": r.in_inventory,
            }
        )
    return json.dumps(docs, ensure_ascii=False, indent=2)
