"""The newest GPS fix from gpsd, kept by a small reader; or NoFix and why.

A :class:`GpsReader` watches gpsd in a thread of its own (started at the first
:meth:`GpsReader.fix`, a daemon thread: it never holds the agent up) and keeps only the
newest TPV report and when it came. :meth:`GpsReader.fix` never raises and never waits:
no gpsd, no GPS device, no report yet, no fix (mode 0/1) or a report older than
``stale_s`` all give :class:`NoFix` with a one-line reason. A lost connection is retried
every ``retry_s``.

Usage::

    reader = GpsReader("127.0.0.1", 2947, stale_s=5.0)
    got = reader.fix()            # Fix(mode, lat_deg, ...) or NoFix(reason)
    reader.close()
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

from probefleet.kinds.survey.gpsd import GpsdConnection, GpsdError

log = logging.getLogger(__name__)

FixMode = Literal["none", "2d", "3d"]
_MODES: Final[dict[int, FixMode]] = {2: "2d", 3: "3d"}
MAX_ACCURACY_M: Final = 100_000.0  # beyond it an estimate says nothing: left out
MAX_SPEED_MPS: Final = 350.0  # faster than any car or train a survey rides


@dataclass(frozen=True)
class Fix:
    """A TPV report with a 2D or 3D fix, its figures checked (absent when out of range)."""

    mode: FixMode
    lat_deg: float
    lon_deg: float
    horizontal_accuracy_m: float | None
    speed_mps: float | None
    gps_time: dt.datetime | None
    age_s: float = 0.0  # how long ago it came (set by GpsReader.fix)


@dataclass(frozen=True)
class NoFix:
    """No usable fix now, and why (one line)."""

    reason: str
    mode: FixMode = "none"


def _number(report: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = report.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and low <= value <= high else None


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(dt.UTC) if when.tzinfo is not None else None


def fix_from_tpv(report: dict[str, Any]) -> Fix | NoFix:
    """One TPV report as a Fix; NoFix when it has no fix or no position."""
    raw = report.get("mode")
    mode = _MODES.get(raw) if type(raw) is int else None
    if mode is None:
        return NoFix(f"the GPS has no fix (gpsd mode {report.get('mode')!r})")
    lat = _number(report, "lat", -90.0, 90.0)
    lon = _number(report, "lon", -180.0, 180.0)
    if lat is None or lon is None:
        return NoFix(f"gpsd reported a {mode} fix without a valid position")
    accuracy = _number(report, "eph", 0.0, MAX_ACCURACY_M)
    if accuracy is None:
        # No eph (older gpsd, some receivers): the per-axis 95 % errors, combined.
        epx = _number(report, "epx", 0.0, MAX_ACCURACY_M)
        epy = _number(report, "epy", 0.0, MAX_ACCURACY_M)
        if epx is not None and epy is not None:
            accuracy = min(math.hypot(epx, epy), MAX_ACCURACY_M)
    return Fix(
        mode=mode,
        lat_deg=lat,
        lon_deg=lon,
        horizontal_accuracy_m=accuracy,
        speed_mps=_number(report, "speed", 0.0, MAX_SPEED_MPS),
        gps_time=_time(report.get("time")),
    )


class GpsReader:
    """Watches gpsd at ``host``:``port``; :meth:`fix` is the newest fix, if fresh."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2947,
        *,
        stale_s: float = 5.0,
        timeout_s: float = 2.0,
        retry_s: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.stale_s, self.timeout_s, self.retry_s = stale_s, timeout_s, retry_s
        self._lock = threading.Lock()
        self._newest: tuple[Fix | NoFix, float] | None = None  # (report, monotonic time)
        self._problem = "no report from gpsd yet"
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: GpsdConnection | None = None  # the one being read, for close()
        self._heard = threading.Event()  # a first report came, or a first problem

    def fix(self) -> Fix | NoFix:
        """The newest fix if it came within ``stale_s``; NoFix with the reason otherwise.
        The first call starts watching and waits up to ``timeout_s`` for gpsd's first word,
        so that a run's first point is not "no report yet" for nothing."""
        if self._start():
            self._heard.wait(self.timeout_s)
        with self._lock:
            newest, problem = self._newest, self._problem
        if newest is None:
            return NoFix(problem)
        got, at = newest
        age = time.monotonic() - at
        if age > self.stale_s:
            why = f"the newest GPS report is {age:.0f} s old (stale after {self.stale_s:g} s)"
            return NoFix(f"{why}: {problem}" if problem else why)
        if isinstance(got, NoFix):
            return got
        return Fix(**{**got.__dict__, "age_s": round(age, 3)})

    def close(self) -> None:
        """Stop watching: the thread ends at once (its socket is shut down)."""
        self._closed.set()
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.interrupt()

    def _start(self) -> bool:
        """Start watching, once; whether this call started it."""
        with self._lock:
            if self._thread is not None or self._closed.is_set():
                return False
            self._thread = threading.Thread(
                target=self._watch, name=f"gpsd-{self.host}:{self.port}", daemon=True
            )
            self._thread.start()
            return True

    def _watch(self) -> None:
        while not self._closed.is_set():
            no_device = False
            try:
                with GpsdConnection(self.host, self.port, timeout_s=self.timeout_s) as gpsd:
                    with self._lock:
                        self._conn = gpsd
                    if self._closed.is_set():
                        break
                    self._note_problem("")
                    while not self._closed.is_set():
                        report = gpsd.next_report()
                        kind = report.get("class")
                        if kind == "TPV":
                            self._keep(fix_from_tpv(report))
                            if no_device:  # a receiver came: gpsd saw none at first
                                no_device = False
                                self._note_problem("")
                        elif kind == "DEVICES" and not report.get("devices"):
                            no_device = True  # gpsd runs, but no receiver is plugged in
                            self._note_problem(f"{gpsd.where} sees no GPS device")
            except GpsdError as exc:
                if self._closed.is_set():
                    break  # close() shut the socket: not a problem of gpsd's
                # Silence after "no device" is that, not a broken gpsd.
                self._note_problem(
                    f"gpsd at {self.host}:{self.port} sees no GPS device" if no_device
                    else exc.reason
                )  # fmt: skip
            except Exception as exc:  # a bug here must never end the watching for good
                log.exception("watching gpsd failed")
                self._note_problem(f"watching gpsd failed: {exc!r}"[:300])
            finally:
                with self._lock:
                    self._conn = None
            self._closed.wait(self.retry_s)

    def _keep(self, got: Fix | NoFix) -> None:
        with self._lock:
            self._newest = (got, time.monotonic())
        self._heard.set()

    def _note_problem(self, why: str) -> None:
        with self._lock:
            before, self._problem = self._problem, why
        if why:
            self._heard.set()
        if why and why != before:
            log.warning("GPS: %s", why)
        elif not why and before:
            log.info("GPS: watching gpsd at %s:%d", self.host, self.port)


__all__ = [
    "MAX_ACCURACY_M",
    "MAX_SPEED_MPS",
    "Fix",
    "FixMode",
    "GpsReader",
    "NoFix",
    "fix_from_tpv",
]
