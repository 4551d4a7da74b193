"""The demo's simulated 4G modem: a ModemManager on a private D-Bus (tests/harness's
python-dbusmock double, the one the radio kind's tests use), its signal moving over time.

The 4G commune's agent reads it exactly as it reads a real modem (``[radio] bus`` = this
bus's address): its results carry radio_technology, radio_rsrp_dbm ..., and its `radio`
measurement gives the signal over time. Nothing here touches the machine's own buses.

The signal follows a slow wave (RSRP -85 .. -111 dBm over WAVE_S) and once every
FALLBACK_EVERY_S the modem falls back to 3G for FALLBACK_S, so the dashboards' "signal over
time" and "time on 4G / 3G" panels show something within minutes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.harness.modemmanager import ModemManagerMock

log = logging.getLogger(__name__)

WAVE_S: Final = 240.0  # one period of the signal's wave
STEP_S: Final = 5.0  # how often the figures change
FALLBACK_EVERY_S: Final = 600.0  # a 3G episode this often ...
FALLBACK_AT_S: Final = 420.0  # ... starting this far into each period ...
FALLBACK_S: Final = 60.0  # ... lasting this long


def lte_signal(elapsed_s: float) -> dict[str, float]:
    """Modem.Signal's Lte figures at ``elapsed_s`` (a wave, as a cell edge comes and goes)."""
    wave = math.sin(2 * math.pi * elapsed_s / WAVE_S)  # -1 .. 1
    return {
        "rsrp": round(-98.0 + 13.0 * wave, 1),
        "rsrq": round(-11.0 + 4.0 * wave, 1),
        "snr": round(9.0 + 8.0 * wave, 1),
        "rssi": round(-68.0 + 10.0 * wave, 1),
    }


def quality_pct(rsrp_dbm: float) -> int:
    """ModemManager's SignalQuality, roughly as modems derive it from RSRP."""
    return max(0, min(100, round((rsrp_dbm + 125.0) * 100 / 50)))


def on_3g(elapsed_s: float) -> bool:
    phase = elapsed_s % FALLBACK_EVERY_S
    return FALLBACK_AT_S <= phase < FALLBACK_AT_S + FALLBACK_S


@dataclass
class SimulatedModem:
    """One modem behind ``interface``; :meth:`start` returns the bus address for the
    agent's ``[radio] bus``."""

    workdir: Path
    interface: str
    mm: ModemManagerMock | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0

    def start(self) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mm = ModemManagerMock(self.workdir)
        self.mm.start()
        self.mm.add_modem(scene="lte", interface=self.interface)
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="demo-modem", daemon=True)
        self._thread.start()
        return self.mm.address

    def _loop(self) -> None:
        technology = "lte"
        while not self._stop.wait(STEP_S):
            elapsed = time.monotonic() - self._started
            try:
                assert self.mm is not None
                wanted = "umts" if on_3g(elapsed) else "lte"
                if wanted != technology:
                    self.mm.scene(wanted)
                    technology = wanted
                if technology == "lte":
                    lte = lte_signal(elapsed)
                    self.mm.update(
                        modem={"SignalQuality": [quality_pct(lte["rsrp"]), True]},
                        signal={"Lte": lte},
                    )
            except Exception as exc:  # the demo goes on with the modem as it last was
                log.warning("simulated modem: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STEP_S + 5)
        if self.mm is not None:
            self.mm.stop()
