"""Running one measurement now, outside the scheduler: `probe-agent measure <name>`."""

from __future__ import annotations

import logging
import time
from typing import Any

from probefleet import kinds
from probefleet.agent import results
from probefleet.agent.clock import ClockWatch, boot_id
from probefleet.agent.config import AgentConfig
from probefleet.agent.radio import RadioSource, Snapshots, attach
from probefleet.core import wire
from probefleet.kinds import Link, Measurement
from probefleet.kinds.base import DEFAULT_LINK
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.radio.measure import Radio

log = logging.getLogger(__name__)


def links_for(cfg: AgentConfig, kind: wire.Kind, interface: str | None = None) -> list[Link]:
    """The links ``kind`` runs over: the one asked for, its configured one, every declared
    interface, or the default route (when none is declared)."""
    by_name = {i.name: i for i in cfg.interfaces}
    wanted = interface or cfg.measurements.of(kind).interface
    if not kinds.spec(kind).measurement().per_link:
        return [DEFAULT_LINK]
    if wanted:
        iface = by_name.get(wanted)
        if iface is None:  # asked for on the command line, not declared: bind, no access type
            return [Link(interface=wanted)]
        return [Link(iface.name, iface.access, iface.source_address or None)]
    if cfg.interfaces:
        return [Link(i.name, i.access, i.source_address or None) for i in cfg.interfaces]
    return [DEFAULT_LINK]


def measure(cfg: AgentConfig, kind: wire.Kind, link: Link, seq: int = 1) -> wire.Result:
    """Run ``kind`` over ``link`` and wrap the outcome; failures are results too."""
    measurement: Measurement[Any] = kinds.spec(kind).measurement()(cfg.measurements.of(kind))
    # The modem as the daemon reads it: this config's [radio], a snapshot at the start (and
    # the end of a bandwidth test) on a mobile link.
    radio, took = RadioSource(cfg.radio), Snapshots()
    if isinstance(measurement, Radio):
        measurement.read = radio.read
    measured_at, clock = ClockWatch().reading()  # one moment for both, as the daemon does
    started = time.monotonic()
    outcome: Any
    try:
        outcome = radio.around(measurement, link, took)
    except MeasurementError as exc:
        outcome = exc
    elapsed = time.monotonic() - started
    log.info(
        "%s on %s: %s in %.1f s",
        kind,
        link.interface or "default route",
        "failed" if isinstance(outcome, MeasurementError) else "ok",
        elapsed,
    )
    result = results.build(
        kind=kind,
        outcome=outcome,
        probe_id=cfg.probe.id,
        boot_id=boot_id(),
        seq=seq,
        measured_at=measured_at,
        clock=clock,
        link=link,
        # "Nothing to read" (the radio kind without a modem) is a skip, as in the daemon.
        skipped=isinstance(outcome, MeasurementError) and getattr(outcome, "skip", False),
    )
    return attach(result, took.context())
