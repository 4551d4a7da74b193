"""A real gpsd fed by gpsfake (Debian gpsd + gpsd-clients) replaying an NMEA track that the
test writes: on loopback only (gpsd listens on 127.0.0.1 unless given -G), on a port of its
own, stopped afterwards.

Usage::

    track = Track.walk([(11.285, 107.40), ...], no_fix=range(8, 12))
    with GpsFake(tmp_path, track.nmea()) as gps:
        reader = GpsReader("127.0.0.1", gps.port)
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.harness.ports import free_port
from tests.harness.wait import eventually

KNOTS_PER_MPS = 1.943_844_49


def _checksum(body: str) -> str:
    return f"{functools.reduce(lambda a, c: a ^ ord(c), body, 0):02X}"


def sentence(body: str) -> str:
    """``$<body>*<checksum>`` (NMEA 0183)."""
    return f"${body}*{_checksum(body)}\r\n"


def _angle(value: float, width: int, hemispheres: str) -> tuple[str, str]:
    degrees = int(abs(value))
    minutes = (abs(value) - degrees) * 60
    return f"{degrees:0{width}d}{minutes:07.4f}", hemispheres[0 if value >= 0 else 1]


@dataclass(frozen=True)
class Fix:
    """One second of the track: a position, or none (the receiver lost the sky)."""

    at: dt.datetime
    lat_deg: float | None
    lon_deg: float | None
    speed_mps: float = 0.0
    hdop: float = 1.0


@dataclass(frozen=True)
class Track:
    fixes: tuple[Fix, ...]

    @classmethod
    def walk(
        cls,
        points: Sequence[tuple[float, float]],
        *,
        no_fix: Iterable[int] = (),
        start: dt.datetime = dt.datetime(2026, 12, 3, 8, 0, 0, tzinfo=dt.UTC),
        speed_mps: float = 1.4,
        hdop: float = 1.0,
    ) -> Track:
        """One fix a second through ``points`` (lat, lon); the indexes in ``no_fix`` have
        none."""
        lost = set(no_fix)
        return cls(
            tuple(
                Fix(start + dt.timedelta(seconds=i), None, None)
                if i in lost
                else Fix(start + dt.timedelta(seconds=i), lat, lon, speed_mps, hdop)
                for i, (lat, lon) in enumerate(points)
            )
        )

    def nmea(self) -> str:
        """GGA + GSA + RMC each second: what a plain receiver sends."""
        out = []
        for fix in self.fixes:
            hms = f"{fix.at:%H%M%S}.00"
            dmy = f"{fix.at:%d%m%y}"
            if fix.lat_deg is None or fix.lon_deg is None:
                out.append(sentence(f"GPGGA,{hms},,,,,0,00,,,M,,M,,"))
                out.append(sentence("GPGSA,A,1,,,,,,,,,,,,,,,"))
                out.append(sentence(f"GPRMC,{hms},V,,,,,,,{dmy},,,N"))
                continue
            lat, ns = _angle(fix.lat_deg, 2, "NS")
            lon, ew = _angle(fix.lon_deg, 3, "EW")
            knots = fix.speed_mps * KNOTS_PER_MPS
            out.append(
                sentence(f"GPGGA,{hms},{lat},{ns},{lon},{ew},1,08,{fix.hdop:.1f},12.0,M,-2.0,M,,")
            )
            dops = f"{fix.hdop * 1.6:.1f},{fix.hdop:.1f},1.3"
            out.append(sentence(f"GPGSA,A,3,01,03,06,09,12,17,19,22,,,,,{dops}"))
            out.append(sentence(f"GPRMC,{hms},A,{lat},{ns},{lon},{ew},{knots:.2f},90.0,{dmy},,,A"))
        return "".join(out)


class GpsFake:
    """gpsfake replaying ``nmea`` once, one sentence each ``cycle_s``; gpsd on ``port``."""

    def __init__(self, work: Path, nmea: str, *, cycle_s: float = 0.1) -> None:
        if shutil.which("gpsfake") is None:
            raise RuntimeError("gpsfake not found: install the Debian packages gpsd gpsd-clients")
        work.mkdir(parents=True, exist_ok=True)
        self.log_path = work / "track.nmea"
        self.log_path.write_text(nmea)
        self.port = free_port()
        self.cycle_s = cycle_s
        self.stderr = work / "gpsfake.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        # -1: once, not looping; -n: gpsd reads the log without waiting for a client (the
        # track's clock runs from the start); -q: quiet. gpsd binds 127.0.0.1 (no -G).
        with self.stderr.open("wb") as stderr:
            self._proc = subprocess.Popen(
                ["gpsfake", "-1", "-n", "-q", "-P", str(self.port), "-c", str(self.cycle_s),
                 str(self.log_path)],
                stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )  # fmt: skip
        eventually(self._listening, timeout_s=15, message=self._log)
        return self

    def _listening(self) -> bool:
        import socket

        assert self._proc is not None
        if self._proc.poll() is not None:
            raise RuntimeError(f"gpsfake exited: {self._log()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def _log(self) -> str:
        return self.stderr.read_text(errors="replace")[-2000:] if self.stderr.exists() else ""

    def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)  # gpsfake and the gpsd it started
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()


class BareGpsd:
    """gpsd with no GPS device at all (``-N``, foreground; loopback only, no ``-G``): what a
    survey probe sees with its receiver unplugged."""

    def __init__(self, work: Path) -> None:
        if shutil.which("gpsd") is None:
            raise RuntimeError("gpsd not found: install the Debian package gpsd")
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.control = work / "gpsd.sock"
        self.stderr = work / "gpsd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.stderr.open("wb") as stderr:
            self._proc = subprocess.Popen(
                ["gpsd", "-N", "-S", str(self.port), "-F", str(self.control)],
                stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
            )  # fmt: skip
        eventually(
            lambda: _accepts(self.port, self._proc),
            timeout_s=15,
            message=lambda: self.stderr.read_text(errors="replace")[-2000:],
        )
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()


def _accepts(port: int, proc: subprocess.Popen[bytes] | None) -> bool:
    import socket

    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"gpsd exited with {proc.returncode}")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True
