"""One run of one measurement on one link, from the scheduler or a command, into the spool.

The order of a bandwidth-heavy run (``Measurement.heavy``)::

    heavy lock (one bandwidth test at a time; wait at most [schedule] heavy_wait_s)
      -> data budget of the link (agent.budget)     refused: a skipped result with the figures
      -> busy-line gate (agent.gate)                busy: a skipped result with the values
      -> run, booked against the budget (Budget.metered)

Every outcome is a result: ok, failed (the measurement raised MeasurementError) or skipped
(lock, budget, gate, missed run). It is spooled (agent.spool) with its seq before anything
is published, then the publisher is woken. When the disk refuses it (full, failing), it is
held in memory — at most UNSPOOLED_MAX, the oldest lost beyond — and spooled at the next
chance. A result that can never be spooled (``ResultTooLarge``, larger than the whole disk
budget, or one the wire contract refuses) is lost at once, and logged.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from probefleet import kinds
from probefleet.agent import results
from probefleet.agent.budget import Budget
from probefleet.agent.clock import ClockWatch
from probefleet.agent.config import AgentConfig
from probefleet.agent.errors import ResultTooLarge, StateError
from probefleet.agent.gate import BusyLineGate
from probefleet.agent.spool import Spool
from probefleet.core import configkit, wire
from probefleet.kinds import Link, Measurement
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.health.measure import Health, RuntimeFigures

log = logging.getLogger(__name__)

UNSPOOLED_MAX = 500  # results held in memory while the disk refuses them


@dataclass(frozen=True)
class LastResult:
    """What `probe-agent status` shows per measurement and link."""

    kind: str
    interface: str | None
    status: str
    seq: int
    measured_at: str
    reason: str | None


@dataclass(frozen=True)
class _Pending:
    """A result waiting for its seq: everything but the seq is fixed when it is measured."""

    kind: wire.Kind
    link: Link
    outcome: Any
    measured_at: dt.datetime
    skipped: bool
    clock: wire.Clock
    request_id: str | None = None  # set when a Command asked for this run


class Skip(Exception):
    """A run that must not happen now: becomes a "skipped" result with reason and detail."""

    def __init__(self, reason: str, detail: dict[str, float] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or {}


class Runner:
    def __init__(
        self,
        cfg: AgentConfig,
        *,
        spool: Spool,
        budget: Budget,
        boot_id: str,
        clock: ClockWatch,
        stop: threading.Event,
        on_spooled: Callable[[], None] = lambda: None,
        registry: dict[wire.Kind, type[Measurement[Any]]] | None = None,
    ) -> None:
        self.spool = spool
        self.budget = budget
        self.boot_id = boot_id
        self.clock = clock
        self.stop = stop
        self.on_spooled = on_spooled
        self.registry = registry if registry is not None else kinds.measurements()
        self.heavy_lock = threading.Lock()
        self.last: dict[tuple[str, str | None], LastResult] = {}
        self._last_lock = threading.Lock()
        self.active = 0
        self._unspooled: collections.deque[_Pending] = collections.deque()
        self._unspooled_lock = threading.Lock()
        self.unspooled_lost = 0
        self._active_lock = threading.Lock()
        self.configure(cfg)

    def configure(self, cfg: AgentConfig) -> None:
        """Use ``cfg`` from the next run on (a new remote config); measurements are rebuilt."""
        measurements: dict[wire.Kind, Measurement[Any]] = {}
        problems = []
        for kind, cls in self.registry.items():
            try:
                measurement = cls(cfg.measurements.of(kind))
            except ValueError as exc:  # the measurement's own cross-key rules
                problems.append(str(exc))
                continue
            if isinstance(measurement, Health):
                measurement.extra = self.runtime_figures
            measurements[kind] = measurement
        if problems:
            raise configkit.ConfigError("<config in force>", problems)
        self.cfg = cfg
        self.gate = BusyLineGate(cfg.gate)
        self.measurements = measurements

    def runtime_figures(self) -> RuntimeFigures:
        figures = self.spool.figures()
        return RuntimeFigures(
            spool_depth=figures.depth,
            spool_bytes=figures.bytes,
            spool_dropped=figures.dropped,
            budgets=tuple(self.budget.usage()),
        )

    # --- running -----------------------------------------------------------------------------

    def run(
        self, kind: wire.Kind, link: Link, *, gated: bool = True, request_id: str | None = None
    ) -> int | None:
        """Measure ``kind`` over ``link`` now and spool the result; its seq, or None when it
        could not be spooled. ``gated=False`` (an on-demand command) skips the busy-line gate
        but never the lock or the budget; ``request_id`` (a command's) goes into the result."""
        with self._active_lock:
            self.active += 1
        try:
            measurement = self.measurements[kind]
            measured_at = wire.utc_now()
            started = time.monotonic()
            outcome: Any
            skipped = False
            try:
                if measurement.heavy:
                    outcome = self._run_heavy(measurement, link, gated)
                else:
                    outcome = measurement.run(link)
            except Skip as exc:
                outcome, skipped = MeasurementError(exc.reason, exc.detail), True
            except MeasurementError as exc:
                outcome = exc
            except Exception as exc:  # a bug in a measurement is a failed result, not a crash
                log.exception("%s crashed", kind)
                outcome = MeasurementError(f"{kind} crashed: {exc!r}")
            log.info(
                "%s on %s: %s in %.1f s%s",
                kind,
                link.interface or "default route",
                "skipped"
                if skipped
                else "failed"
                if isinstance(outcome, MeasurementError)
                else "ok",
                time.monotonic() - started,
                f" ({outcome.reason})" if isinstance(outcome, MeasurementError) else "",
            )
            return self.record(
                kind, link, outcome, measured_at=measured_at, skipped=skipped,
                request_id=request_id,
            )  # fmt: skip
        finally:
            with self._active_lock:
                self.active -= 1

    def _run_heavy(self, measurement: Measurement[Any], link: Link, gated: bool) -> Any:
        kind = measurement.name
        wait_s = self.cfg.schedule.heavy_wait_s
        deadline = time.monotonic() + wait_s
        # Waits in short steps so that SIGTERM is not held up by a queued test.
        while not self.heavy_lock.acquire(timeout=min(1.0, max(0.0, deadline - time.monotonic()))):
            if self.stop.is_set():
                raise Skip("the agent is stopping")
            if time.monotonic() >= deadline:
                raise Skip(
                    f"another bandwidth test was still running after {wait_s} s",
                    {"waited_s": float(wait_s)},
                )
        try:
            ok, why = self.budget.allows(link.interface, kind=kind)
            if not ok:
                raise Skip(why, self.budget.detail(link.interface or "", kind))
            if gated:
                decision = self.gate.check(link.interface, stop=self.stop)
                if not decision.clear:
                    raise Skip(decision.reason, decision.detail())
            with self.budget.metered(link.interface, kind=kind):
                return measurement.run(link)
        finally:
            self.heavy_lock.release()

    def record(
        self,
        kind: wire.Kind,
        link: Link,
        outcome: Any,
        *,
        measured_at: dt.datetime | None = None,
        skipped: bool = False,
        request_id: str | None = None,
    ) -> int | None:
        """Wrap ``outcome`` in an envelope with the next seq and spool it durably; its seq,
        or None when the spool refused it (kept in memory and tried again, see below)."""
        self.retry_unspooled()
        pending = _Pending(kind, link, outcome, measured_at or wire.utc_now(), skipped,
                           self.clock.state(), request_id)  # fmt: skip
        return self._spool(pending, first_try=True)

    def retry_unspooled(self) -> int:
        """Spool what a failing disk refused earlier (oldest first); how many made it."""
        done = 0
        while True:
            with self._unspooled_lock:
                if not self._unspooled:
                    return done
                pending = self._unspooled.popleft()
            if self._spool(pending, first_try=False) is None:
                return done
            done += 1

    def _spool(self, pending: _Pending, *, first_try: bool) -> int | None:
        built: list[wire.Result] = []
        topics = wire.Topics(self.cfg.mqtt.topic_root)

        def make(seq: int) -> tuple[str, bytes]:
            result = results.build(
                kind=pending.kind,
                outcome=pending.outcome,
                probe_id=self.cfg.probe.id,
                boot_id=self.boot_id,
                seq=seq,
                measured_at=pending.measured_at,
                clock=pending.clock,
                link=pending.link,
                skipped=pending.skipped,
                request_id=pending.request_id,
            )
            built.append(result)
            return topics.result(self.cfg.probe.id, pending.kind), wire.encode(result)

        try:
            seq = self.spool.append(pending.kind, make)
        except (ResultTooLarge, wire.WireError) as exc:
            log.error("%s result lost: it can never be spooled: %s", pending.kind, exc)
            return None
        except StateError as exc:
            # A full disk or a failing card: keep it in memory (bounded) and try again at
            # the next result or tick; only what overflows that is lost, and said so.
            with self._unspooled_lock:
                if first_try:
                    self._unspooled.append(pending)
                else:
                    self._unspooled.appendleft(pending)
                overflow = len(self._unspooled) - UNSPOOLED_MAX
                if overflow > 0:
                    self._unspooled.popleft()
                    self.unspooled_lost += 1
            log.error(
                "%s result not spooled (%s): kept in memory with %d other(s), retrying%s",
                pending.kind,
                exc,
                len(self._unspooled) - 1,
                "; the oldest kept result was lost" if overflow > 0 else "",
            )
            return None
        result = built[-1]
        with self._last_lock:
            self.last[(pending.kind, pending.link.interface)] = LastResult(
                kind=pending.kind,
                interface=pending.link.interface,
                status=result.status,
                seq=seq,
                measured_at=result.measured_at.isoformat().replace("+00:00", "Z"),
                reason=result.reason,
            )
        self.on_spooled()
        return seq

    @property
    def unspooled(self) -> int:
        """Results held in memory because the spool refused them."""
        with self._unspooled_lock:
            return len(self._unspooled)

    def last_results(self) -> list[LastResult]:
        with self._last_lock:
            return sorted(self.last.values(), key=lambda r: (r.kind, r.interface or ""))
