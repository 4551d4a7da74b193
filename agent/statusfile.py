"""``status.json`` in the state dir: what the running daemon shows `probe-agent status`.

The daemon rewrites it every few seconds (temp file + rename: a reader never sees half of
it; no fsync: it is a window, not a record, and an SD card wears). `probe-agent status`
reads it while the daemon runs, says when it is stale, and whether the pid is alive.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
STALE_AFTER_S = 30.0


def write(state_dir: Path, doc: dict[str, Any]) -> None:
    path = state_dir / STATUS_FILE
    fd, temp = tempfile.mkstemp(dir=state_dir, prefix=".status.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o640)  # the group may read it (mkstemp makes it 0600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1, sort_keys=True)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read(state_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    return doc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    return True


def _mb(n: int) -> str:
    return f"{n / 1_000_000:,.1f} MB"


def render(doc: dict[str, Any], now: float | None = None) -> tuple[str, bool]:
    """Human text, and whether the daemon looks alive and current."""
    now = time.time() if now is None else now
    age = now - float(doc.get("written_at", 0))
    pid = int(doc.get("pid", 0))
    running = doc.get("state") == "running" and pid > 0 and _pid_alive(pid)
    healthy = running and age <= STALE_AFTER_S
    lines = [f"probe       {doc.get('probe_id')}  (agent {doc.get('agent_version')}, pid {pid})"]
    state = doc.get("state", "?")
    if not running and state == "running":
        state = "not running (last seen running)"
    lines.append(f"daemon      {state}; status written {age:.0f} s ago")
    conn = doc.get("mqtt", {})
    since = conn.get("since")
    since_txt = (
        dt.datetime.fromtimestamp(since, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if since else "-"
    )
    link = "connected" if conn.get("connected") else "DISCONNECTED"
    lines.append(
        f"broker      {conn.get('broker')}: {link}"
        f" since {since_txt}" + (f" ({conn['last_error']})" if conn.get("last_error") else "")
    )
    lines.append(
        f"delivery    {conn.get('published', 0)} published, {conn.get('confirmed', 0)} confirmed "
        f"stored, {conn.get('inflight', 0)} awaiting PUBACK, {conn.get('unconfirmed', 0)} "
        f"awaiting StoredAck, refused {conn.get('refused') or {}}"
    )
    spool = doc.get("spool", {})
    lines.append(
        f"spool       {spool.get('depth', 0)} results ({_mb(int(spool.get('bytes', 0)))} of "
        f"{_mb(int(spool.get('max_bytes', 0)))}), oldest seq {spool.get('oldest_seq')}, "
        f"next seq {spool.get('next_seq')}, dropped {spool.get('dropped', 0)}"
    )
    if spool.get("renumbered"):
        lines.append(
            f"            RENUMBERED {spool['renumbered']} results above the collector's "
            "watermark of this probe's previous life (see the log)"
        )
    if spool.get("held_in_memory") or spool.get("lost_unspoolable"):
        lines.append(
            f"            DISK REFUSES RESULTS: {spool.get('held_in_memory')} held in memory, "
            f"{spool.get('lost_unspoolable')} lost (see the log)"
        )
    clock = doc.get("clock", {})
    since_sync = clock.get("since_sync_s")
    lines.append(
        f"clock       {'synchronised' if clock.get('synced') else 'NOT synchronised'}"
        + (f", last seen in sync {since_sync:.0f} s ago" if since_sync is not None else "")
        + f", uptime {float(clock.get('uptime_s', 0)):.0f} s"
    )
    config = doc.get("config", {})
    lines.append(
        f"config      {config.get('file')}"
        + (f" + remote {config['remote_digest']}" if config.get("remote_digest") else "")
        + (f"; REJECTED: {config['error']}" if config.get("error") else "")
    )
    budgets = doc.get("budgets") or []
    if budgets:
        for b in budgets:
            lines.append(
                f"budget      {b['interface']} {b['month']}: {_mb(b['used_bytes'])} of "
                f"{_mb(b['limit_bytes'])}"
            )
    else:
        lines.append("budget      no metered link")
    lines.append("last results")
    for r in doc.get("last_results") or []:
        where = r.get("interface") or "default"
        tail = f"  ({r['reason']})" if r.get("reason") else ""
        lines.append(
            f"  {r['kind']:<11} {where:<8} {r['status']:<8} seq {r['seq']:<7} "
            f"{r['measured_at']}{tail}"
        )
    if not doc.get("last_results"):
        lines.append("  none yet" + ("" if doc.get("measuring") else " (waiting for the clock)"))
    return "\n".join(lines), healthy
