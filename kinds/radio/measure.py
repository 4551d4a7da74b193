"""The `radio` measurement: one read of the modem behind a mobile link (no data use).

The agent hands every Radio measurement the reader of its ``[radio]`` section (bus,
Signal rate, timeouts: agent.config) as :attr:`Radio.read`; ``probe-agent measure
radio`` without a daemon reads the system bus with the defaults. No modem, no ModemManager:
a "skipped" result that says why (:class:`RadioAbsent`), never a failure of the probe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from probefleet.core import wire
from probefleet.kinds.base import Interval, Link, Measurement, Schedule
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.radio.mapping import NoRadio, Reading
from probefleet.kinds.radio.payload import RadioData

Read = Callable[[str | None], Reading | NoRadio]


class RadioAbsent(MeasurementError):
    """There is nothing to read (no ModemManager, no modem for the link): the runner records
    a "skipped" result (``skip``), not a failed one."""

    skip: ClassVar[bool] = True


class RadioConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.radio]"""

    interval_s: Interval = 300


class Radio(Measurement[RadioConfig]):
    name: ClassVar[wire.Kind] = "radio"
    summary = "the modem's technology, operator, signal and cell (ModemManager; no data use)"
    config_type = RadioConfig
    # Only a mobile link has a modem: the agent runs it on no other (no result at all there).
    mobile_only: ClassVar[bool] = True

    def __init__(self, config: RadioConfig) -> None:
        super().__init__(config)
        # The agent's reader ([radio] section: agent.radio); None: the system bus, defaults.
        self.read: Read | None = None

    def run(self, link: Link) -> RadioData:
        if link.access != "mobile":
            raise RadioAbsent(f"{link.interface or 'the default route'} is not a mobile link")
        read = self.read
        if read is None:
            from probefleet.kinds.radio.reader import RadioReader  # imports the D-Bus library

            read = self.read = RadioReader().read
        got = read(link.interface)
        if isinstance(got, NoRadio):
            raise RadioAbsent(got.reason)
        return RadioData(
            snapshot=got.snapshot,
            modem_model=got.identity.model,
            modem_firmware=got.identity.firmware,
            modem_imei_sha256=got.identity.imei_sha256,
        )
