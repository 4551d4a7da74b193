"""The live terminal view: what InfluxDB holds per commune, against the plan's targets.

A :class:`Snapshot` is read from the real stores every refresh: the latest throughput point
of each probe (written by the collector with its target and verdict), when each probe was
last heard of, the latest `radio` read of a probe with a (simulated) modem, and — where
this checkout's collector has them — `probe-collector fleet` (presence from the retained
status and Last Will) and `probe-collector alerts`. Rendering is plain ANSI (clear +
redraw), or one line per refresh when the output is not a terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from demo.province import Commune
from tests.harness import InfluxDB

GREEN, RED, YELLOW, DIM, BOLD, RESET = (
    "\x1b[32m",
    "\x1b[31m",
    "\x1b[33m",
    "\x1b[2m",
    "\x1b[1m",
    "\x1b[0m",
)
KINDS = ("throughput", "latency", "ipv6", "service", "health")


@dataclass
class Throughput:
    when: dt.datetime
    download_mbps: float | None
    upload_mbps: float | None
    target_mbps: float | None
    met: bool | None


GENERATION = {"gsm": "2G", "umts": "3G", "lte": "4G", "nr5g_nsa": "5G", "nr5g_sa": "5G"}


@dataclass
class Radio:
    """The latest `radio` read: technology (None: not registered) and signal."""

    when: dt.datetime
    technology: str | None
    rsrp_dbm: float | None
    quality_pct: float | None


@dataclass
class Row:
    commune: Commune
    results: int = 0
    last_seen: dt.datetime | None = None
    throughput: Throughput | None = None
    last_problem: str | None = None  # the latest failed/skipped throughput's reason
    presence: str | None = None  # from `probe-collector fleet`, when it exists
    kinds: set[str] = field(default_factory=set)  # measurements with a stored result
    radio: Radio | None = None

    @property
    def complete(self) -> bool:
        """A throughput verdict and a result of every measurement the demo runs."""
        return self.throughput is not None and self.kinds >= set(KINDS)


@dataclass
class Snapshot:
    rows: list[Row]
    alerts: list[dict[str, Any]] | None  # None: no `probe-collector alerts` here
    fleet_source: str  # where presence comes from
    error: str | None = None


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def read_influx(influx: InfluxDB, db: str, communes: tuple[Commune, ...]) -> dict[str, Row]:
    """Per probe: result count, last result time, latest throughput and its verdict."""
    rows = {c.probe: Row(c) for c in communes}
    kinds = ", ".join(f'"{k}"' for k in KINDS)  # constants, not input
    counts = f'SELECT count("seq") FROM {kinds} GROUP BY "probe"'  # noqa: S608
    for point in influx.query_points(counts, db):
        row = rows.get(point.get("probe", ""))
        if row is not None:
            row.results += int(point["count"])
            row.kinds.add(point["_measurement"])
    lasts = f'SELECT last("seq") FROM {kinds} GROUP BY "probe"'  # noqa: S608
    for point in influx.query_points(lasts, db):
        row = rows.get(point.get("probe", ""))
        if row is not None:
            when = _utc(int(point["time"]))
            row.last_seen = max(row.last_seen, when) if row.last_seen else when
    query = (
        'SELECT "download_mbps", "upload_mbps", "target_download_mbps", '
        '"meets_download_target" FROM "throughput" WHERE "status" = \'ok\' '
        'GROUP BY "probe" ORDER BY time DESC LIMIT 1'
    )
    for point in influx.query_points(query, db):
        row = rows.get(point.get("probe", ""))
        if row is not None:
            met = point.get("meets_download_target")
            row.throughput = Throughput(
                _utc(int(point["time"])),
                point.get("download_mbps"),
                point.get("upload_mbps"),
                point.get("target_download_mbps"),
                None if met is None else bool(met),
            )
    query = (
        'SELECT "seq", "reason" FROM "throughput" WHERE "status" != \'ok\' '
        'GROUP BY "probe" ORDER BY time DESC LIMIT 1'
    )
    for point in influx.query_points(query, db):
        row = rows.get(point.get("probe", ""))
        if row is not None and (
            row.throughput is None or _utc(int(point["time"])) > row.throughput.when
        ):
            row.last_problem = str(point.get("reason") or "failed")
    query = (
        'SELECT "radio_rsrp_dbm", "radio_signal_quality_pct", "radio_technology" FROM "radio" '
        'WHERE "status" = \'ok\' GROUP BY "probe" ORDER BY time DESC LIMIT 1'
    )
    for point in influx.query_points(query, db):
        row = rows.get(point.get("probe", ""))
        if row is not None:
            row.radio = Radio(
                _utc(int(point["time"])),
                point.get("radio_technology") or None,
                point.get("radio_rsrp_dbm"),
                point.get("radio_signal_quality_pct"),
            )
    return rows


class CollectorPoller:
    """Polls `probe-collector fleet` / `alerts` in a thread (each call is a Python start:
    too slow for the redraw loop). ``run_cli(args) -> stdout | None``."""

    def __init__(
        self, run_cli: Callable[..., str | None], commands: set[str], every_s: float = 5.0
    ) -> None:
        self.run_cli = run_cli
        self.has_fleet = "fleet" in commands
        self.has_alerts = "alerts" in commands
        self.every_s = every_s
        self.fleet: dict[str, str] = {}
        self.alerts: list[dict[str, Any]] | None = [] if self.has_alerts else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="collector-poller", daemon=True)

    def start(self) -> CollectorPoller:
        if self.has_fleet or self.has_alerts:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=35)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.has_fleet:
                out = self.run_cli("fleet", "--format", "json")
                if out:
                    try:
                        docs = json.loads(out)
                        self.fleet = {d["probe"]: str(d["state"]) for d in docs}
                    except (ValueError, KeyError, TypeError):
                        pass
            if self.has_alerts:
                out = self.run_cli("alerts", "--json")
                if out:
                    with contextlib.suppress(ValueError, TypeError):
                        self.alerts = list(json.loads(out))
            self._stop.wait(self.every_s)


def snapshot(
    influx: InfluxDB, db: str, communes: tuple[Commune, ...], poller: CollectorPoller
) -> Snapshot:
    try:
        rows = read_influx(influx, db, communes)
    except Exception as exc:  # InfluxDB restarting or slow: show it, keep the demo running
        return Snapshot([Row(c) for c in communes], poller.alerts, "", error=str(exc))
    for probe, state in poller.fleet.items():
        if probe in rows:
            rows[probe].presence = state
    source = "probe-collector fleet" if poller.has_fleet else "last result in InfluxDB"
    return Snapshot(list(rows.values()), poller.alerts, source)


def _ago(when: dt.datetime | None, now: dt.datetime) -> str:
    if when is None:
        return "never"
    return f"{max(0, int((now - when).total_seconds()))} s ago"


def _mbps(value: float | None) -> str:
    return f"{'-':>6}" if value is None else f"{value:6.1f}"


def render(
    snap: Snapshot,
    *,
    color: bool,
    header: list[str],
    footer: list[str],
    now: dt.datetime | None = None,
) -> str:
    now = now or dt.datetime.now(dt.UTC)

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if color else text

    out = [paint(line, BOLD) if i == 0 else line for i, line in enumerate(header)]
    out.append("")
    cols = (
        f"{'commune':<11} {'line':<22} {'presence':<9} {'last result':<12} {'n':>4}  "
        f"{'down':>6} {'up':>6} {'target':>6}  verdict"
    )
    out.append(paint(cols, DIM))
    for row in snap.rows:
        c = row.commune
        line = f"{c.operator} {'4G' if c.access == 'mobile' else 'FTTH'} {c.nominal_mbit:g}M"
        if not c.ipv6:
            line += " v4"
        if row.presence is not None:
            presence = row.presence
        elif row.last_seen is None:
            presence = "waiting"
        else:
            age = (now - row.last_seen).total_seconds()
            presence = "online" if age < 60 else "silent"
        presence_cell = paint(
            f"{presence:<9}",
            GREEN if presence == "online" else RED if presence != "waiting" else DIM,
        )
        tp = row.throughput
        if tp is None or tp.met is None:
            verdict = paint(row.last_problem or "waiting for the first test", DIM)
        elif tp.met:
            verdict = paint("met", GREEN)
        else:
            verdict = paint("NOT MET", RED)
        out.append(
            f"{c.commune:<11} {line:<22} {presence_cell} {_ago(row.last_seen, now):<12} "
            f"{row.results:>4}  {_mbps(tp.download_mbps if tp else None)} "
            f"{_mbps(tp.upload_mbps if tp else None)} "
            f"{_mbps(tp.target_mbps if tp else c.target_mbit)}  {verdict}"
        )
    for row in snap.rows:
        if row.radio is not None:
            out.append(radio_line(row.commune, row.radio, now))
    out.append("")
    out.append(
        paint(
            f"presence: {snap.fleet_source or '-'}; speeds in Mbit/s (download target: plan 2025)",
            DIM,
        )
    )
    if snap.error:
        out.append(paint(f"InfluxDB: {snap.error}", YELLOW))
    out.append("")
    if snap.alerts is None:
        out.append(paint("alerts: this checkout has no `probe-collector alerts` yet", DIM))
    elif not snap.alerts:
        out.append("alerts: none active")
    else:
        out.append(paint(f"alerts: {len(snap.alerts)} active", BOLD))
        for alert in snap.alerts[:8]:
            text = alert.get("text") or f"{alert.get('rule')}: {alert.get('summary')}"
            severe = alert.get("severity") == "critical"
            out.append(paint(f"  {text}", RED if severe else YELLOW))
    out.append("")
    out.extend(footer)
    return "\n".join(out)


def radio_line(commune: Commune, radio: Radio, now: dt.datetime) -> str:
    """ "radio Phú Lâm: 4G (lte), RSRP -95 dBm, signal 72 %, 12 s ago" (simulated modem)."""
    tech = radio.technology
    what = f"{GENERATION.get(tech, '?')} ({tech})" if tech else "not registered"
    if radio.rsrp_dbm is not None:
        what += f", RSRP {radio.rsrp_dbm:g} dBm"
    if radio.quality_pct is not None:
        what += f", signal {radio.quality_pct:g} %"
    return f"radio {commune.commune}: {what}, {_ago(radio.when, now)}"


def plain_line(snap: Snapshot, elapsed_s: float) -> str:
    """One line for logs and tests (no terminal): results and verdicts per probe."""
    parts = []
    for row in snap.rows:
        tp = row.throughput
        verdict = "-" if tp is None or tp.met is None else ("met" if tp.met else "not-met")
        down = "-" if tp is None or tp.download_mbps is None else f"{tp.download_mbps:.0f}"
        parts.append(f"{row.commune.probe}:{row.results}:{down}:{verdict}")
    return f"[{elapsed_s:5.0f} s] " + " ".join(parts)


@dataclass
class Screen:
    """Redraws in place on a terminal; prints a line every ``plain_every_s`` otherwise."""

    tty: bool
    plain_every_s: float = 10.0
    _last_plain: float = field(default=-1e9)

    def show(self, snap: Snapshot, text: str, elapsed_s: float) -> None:
        if self.tty:
            print("\x1b[H\x1b[2J" + text, flush=True)
        elif time.monotonic() - self._last_plain >= self.plain_every_s:
            self._last_plain = time.monotonic()
            print(plain_line(snap, elapsed_s), flush=True)
