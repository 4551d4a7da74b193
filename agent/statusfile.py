"""``status.json`` in the state dir: what the running daemon shows `probe-agent status`.

The daemon rewrites it every few seconds (temp file + rename: a reader never sees half of
it; no fsync: it is a window, not a record, and an SD card wears). `probe-agent status`
reads it while the daemon runs, says when it is stale, and whether the pid is alive.

A full disk has no room for the temp file. So the file is padded with spaces (JSON allows
them) to whole 4 KiB blocks with room to spare, and when the rename way fails it is
rewritten in place, over blocks it already owns: the status stays current, and tells of
the results held in memory, while the disk is full. An in-place write is not atomic: a
reader that catches one half-done reads again (:func:`read`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

STATUS_FILE = "status.json"
STALE_AFTER_S = 30.0
_BLOCK = 4096
_SLACK = 2048  # room for the document to grow and still be rewritten in place
_READ_TRIES = 5


def write(state_dir: Path, doc: dict[str, Any]) -> Literal["replaced", "in place"]:
    """Write ``doc``; how. OSError when neither way works."""
    path = state_dir / STATUS_FILE
    text = json.dumps(doc, indent=1, sort_keys=True).encode()
    size = -(-(len(text) + _SLACK) // _BLOCK) * _BLOCK
    data = text + b" " * (size - len(text) - 1) + b"\n"
    try:
        fd, temp = tempfile.mkstemp(dir=state_dir, prefix=".status.", suffix=".tmp")
    except OSError:
        if _in_place(path, text):
            return "in place"
        raise
    try:
        os.fchmod(fd, 0o640)  # the group may read it (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if _in_place(path, text):
            return "in place"
        raise
    return "replaced"


def _in_place(path: Path, text: bytes) -> bool:
    """Overwrite ``path`` with ``text`` padded to its present size; False if it does not
    fit (or the file is not there)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        if len(text) + 1 > size:
            return False
        os.pwrite(fd, text + b" " * (size - len(text) - 1) + b"\n", 0)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def read(state_dir: Path) -> dict[str, Any]:
    """The document; reads again when it catches an in-place rewrite half-done."""
    for attempt in range(_READ_TRIES):
        try:
            doc: dict[str, Any] = json.loads((state_dir / STATUS_FILE).read_text("utf-8"))
        except ValueError:
            if attempt == _READ_TRIES - 1:
                raise
            time.sleep(0.05)
            continue
        return doc
    raise AssertionError("unreachable")


def with_losses(doc: dict[str, Any], book: dict[str, int]) -> dict[str, Any]:
    """``doc`` with the loss book's counts where they are higher: the book is written at
    every loss, status.json only every few seconds (``book``: agent.losses.read)."""
    spool = dict(doc.get("spool") or {})
    by_reason = dict(spool.get("dropped_by_reason") or {})
    for reason in ("disk_full", "unspoolable"):
        by_reason[reason] = max(int(by_reason.get(reason, 0)), int(book.get(reason, 0)))
    spool["dropped_by_reason"] = by_reason
    spool["dropped"] = sum(by_reason.values())
    return {**doc, "spool": spool}


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
        f"next seq {spool.get('next_seq')}"
    )
    by_reason = spool.get("dropped_by_reason") or {}
    dropped = int(spool.get("dropped", 0))
    lines.append(
        f"lost        {dropped} results ever"
        + (
            " ("
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(by_reason.items()))
            + ")"
            if dropped
            else ""
        )
    )
    if spool.get("renumbered"):
        lines.append(
            f"            RENUMBERED {spool['renumbered']} results above the collector's "
            "watermark of this probe's previous life (see the log)"
        )
    lines.extend(_storage_lines(doc.get("storage") or {}, spool))
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
    radio = doc.get("radio") or {}
    if not radio.get("attach", True):
        lines.append("radio       not attached to results ([radio] attach = false)")
    for iface, why in sorted((radio.get("interfaces") or {}).items()):
        lines.append(f"radio       {iface} " + ("ok" if why == "ok" else f"absent: {why}"))
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


_STORAGE_WORDS = {"disk_full": "DISK FULL", "failing": "FAILING"}


def _storage_lines(storage: dict[str, Any], spool: dict[str, Any]) -> list[str]:
    state = storage.get("state", "ok")
    held = int(spool.get("held_in_memory", 0))
    memory = (
        f"{held} results ({_mb(int(spool.get('held_bytes', 0)))}) held in memory, of "
        f"{_mb(int(spool.get('memory_max_bytes', 0)))}"
    )
    if state == "ok":
        text = "storage     ok" + ("" if storage.get("reserve") else " (no disk reserve)")
        lines = [text + (f"; {memory}" if held else "")]
    else:
        since = storage.get("since")
        when = (
            dt.datetime.fromtimestamp(since, dt.UTC).strftime(" since %Y-%m-%d %H:%M:%SZ")
            if since
            else ""
        )
        lines = [
            f"storage     {_STORAGE_WORDS.get(state, state.upper())}{when}: the disk refuses "
            f"results; {memory}",
            f"            {storage.get('error')}",
        ]
    if storage.get("counters_unsaved"):
        lines.append("            the lost-results counters are not written yet (held in memory)")
    return lines
