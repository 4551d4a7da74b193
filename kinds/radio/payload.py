"""The `radio` kind on the wire: one read of the modem behind a mobile interface."""

from __future__ import annotations

from typing import Annotated

import msgspec
from probefleet.core.wire import Envelope, OperatorName, RadioSnapshot, Strict

ModemText = OperatorName  # printable, 1-64 characters


class RadioData(Strict, frozen=True, kw_only=True):
    """What the modem said, and which modem it is (its IMEI only as a SHA-256)."""

    snapshot: RadioSnapshot
    modem_model: ModemText | None = None
    modem_firmware: ModemText | None = None
    modem_imei_sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")] | None = None


class RadioResult(Envelope, tag="radio", frozen=True, kw_only=True):
    data: RadioData | None = None
