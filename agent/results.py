"""Wrapping a measurement's outcome in the wire envelope: identity, clock, link, status."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from probefleet import kinds
from probefleet.agent import __version__
from probefleet.core import wire
from probefleet.kinds.base import Link
from probefleet.kinds.errors import MeasurementError

Outcome = msgspec.Struct | MeasurementError


def build(
    *,
    kind: wire.Kind,
    outcome: Outcome,
    probe_id: str,
    boot_id: str,
    seq: int,
    measured_at: dt.datetime,
    clock: wire.Clock,
    link: Link,
    skipped: bool = False,
    request_id: str | None = None,
) -> wire.Result:
    """The result to spool and publish. A MeasurementError becomes a failed (or, with
    ``skipped``, a skipped) result carrying its reason and detail."""
    common: dict[str, Any] = {
        "schema": wire.SCHEMA_VERSION,
        "probe_id": probe_id,
        "boot_id": boot_id,
        "seq": seq,
        "measured_at": measured_at.astimezone(dt.UTC),
        "sent_at": wire.utc_now(),
        "clock": clock,
        "interface": link.interface,
        "access": link.access,
        "agent_version": __version__[:32],
        "request_id": request_id,
    }
    cls: Any = kinds.result_types()[kind]
    if isinstance(outcome, MeasurementError):
        status = "skipped" if skipped else "failed"
        reason = outcome.reason[:500] or "unknown error"
        detail = {k[:64]: float(v) for k, v in list(outcome.detail.items())[:16]} or None
        result = cls(status=status, reason=reason, detail=detail, **common)
    else:
        result = cls(data=outcome, **common)
    # msgspec checks constraints only when decoding: decode what we would send, so a probe
    # never publishes what the collector would reject. A bug becomes a failed result.
    try:
        return wire.decode_result(wire.encode(result))
    except wire.WireError as exc:
        if isinstance(outcome, MeasurementError):
            raise  # the envelope itself is wrong: nothing sensible to fall back to
        invalid = MeasurementError(f"{kind} produced an invalid result: {exc}")
        return build(
            kind=kind,
            outcome=invalid,
            probe_id=probe_id,
            boot_id=boot_id,
            seq=seq,
            measured_at=measured_at,
            clock=clock,
            link=link,
            request_id=request_id,
        )
