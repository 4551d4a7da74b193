"""The `ookla` kind on the wire: its payload (``data``) and its result envelope."""

from __future__ import annotations

from probefleet.core.wire import Envelope
from probefleet.kinds.throughput.payload import ThroughputData


class OoklaResult(Envelope, tag="ookla", frozen=True, kw_only=True):
    data: ThroughputData | None = None
