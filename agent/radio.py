"""The radio context of mobile results: a snapshot of the modem at a run's start and end.

Only for links declared ``access = "mobile"`` and only when ``[radio] attach`` is true (a
fleet whose collectors are older than the ``radio`` field must set it false: they refuse
such results). Reading never fails a measurement: no ModemManager or no modem gives no
context, and :meth:`RadioSource.status` (status.json's ``radio``) says why, per interface.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from probefleet.agent.config import RadioSection
from probefleet.core import wire
from probefleet.kinds import Link, Measurement
from probefleet.kinds.radio.mapping import NoRadio, Reading

if TYPE_CHECKING:
    from probefleet.kinds.radio.reader import RadioReader

log = logging.getLogger(__name__)


@dataclass
class Snapshots:
    """What a run's modem said: at its start, and at its end (bandwidth tests)."""

    start: wire.RadioSnapshot | None = None
    end: wire.RadioSnapshot | None = None

    def context(self) -> wire.RadioContext | None:
        """The result's context: none without a start (the modem was never read)."""
        return None if self.start is None else wire.RadioContext(start=self.start, end=self.end)


class RadioSource:
    """Takes snapshots for the runner; one reader (and its Signal.Setup memory) per config."""

    def __init__(self, cfg: RadioSection) -> None:
        self._lock = threading.Lock()
        self._why: dict[str, str | None] = {}  # interface -> why absent now (None: read fine)
        self.configure(cfg)

    def configure(self, cfg: RadioSection) -> None:
        current = getattr(self, "cfg", None)
        if current is None or (current.bus, current.signal_rate_s, current.timeout_s) != (
            cfg.bus, cfg.signal_rate_s, cfg.timeout_s,
        ):  # fmt: skip
            self._reader: RadioReader | None = None  # made at the first read
        self.cfg = cfg

    def read(self, interface: str | None) -> Reading | NoRadio:
        """Read the modem behind ``interface`` (the radio kind's reads come here too). The
        D-Bus library is imported at the first read: a probe without a mobile link never
        loads it."""
        reader = self._reader
        if reader is None:
            from probefleet.kinds.radio.reader import RadioReader

            cfg = self.cfg
            reader = RadioReader(cfg.bus, signal_rate_s=cfg.signal_rate_s, timeout_s=cfg.timeout_s)
            self._reader = reader
        got = reader.read(interface)
        self._note(interface or "", got.reason if isinstance(got, NoRadio) else None)
        return got

    def wanted(self, link: Link) -> bool:
        """Whether results on ``link`` carry a radio context."""
        return self.cfg.attach and link.access == "mobile"

    def around(self, measurement: Measurement[Any], link: Link, took: Snapshots) -> Any:
        """``measurement.run(link)`` between its snapshots, into ``took`` (mobile links; the
        radio kind reads the modem itself). A bandwidth test gets an end snapshot too,
        however it ended; none when the start found no modem."""
        wanted = measurement.name != "radio" and self.wanted(link)
        if wanted:
            took.start = self.snapshot(link)
        try:
            return measurement.run(link)
        finally:
            if wanted and measurement.heavy and took.start is not None:
                took.end = self.snapshot(link)

    def snapshot(self, link: Link) -> wire.RadioSnapshot | None:
        """The modem behind ``link`` now; None (and the reason remembered) when unreadable."""
        got = self.read(link.interface)
        return None if isinstance(got, NoRadio) else got.snapshot

    def _note(self, interface: str, why: str | None) -> None:
        with self._lock:
            before = self._why.get(interface, "")
            self._why[interface] = why
        if why != before:
            if why is None:
                log.info("radio context on %s: reading the modem", interface)
            else:
                log.warning("no radio context on %s: %s", interface, why)

    def status(self) -> dict[str, object]:
        """For status.json: attach on/off, and per mobile interface read so far, "ok" or why
        radio is absent."""
        with self._lock:
            interfaces = {i: why or "ok" for i, why in sorted(self._why.items())}
        return {"attach": self.cfg.attach, "bus": self.cfg.bus, "interfaces": interfaces}


def attach(result: wire.Result, radio: wire.RadioContext | None) -> wire.Result:
    """``result`` with its radio context, checked like the rest of the envelope
    (agent.results): a context the wire would refuse is left out, never the result."""
    if radio is None:
        return result
    try:
        with_radio: wire.Result = wire.decode_result(
            wire.encode(msgspec.structs.replace(result, radio=radio))
        )
    except wire.WireError as exc:
        kind = wire.kind_of(result)
        log.error("%s result: radio context left out, the wire refuses it: %s", kind, exc)
        return result
    return with_radio
