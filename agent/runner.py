"""One run of one measurement on one link, from the scheduler or a command, into the spool.

The order of a bandwidth-heavy run (``Measurement.heavy``)::

    heavy lock (one bandwidth test at a time; wait at most [schedule] heavy_wait_s)
      -> what the centre may drive (agent.allowance: commanded runs spaced, monthly bytes)
      -> data budget of the link (agent.budget)     refused: a skipped result with the figures
      -> busy-line gate (agent.gate)                busy: a skipped result with the values
      -> run, booked against the budget (Budget.metered)

A run on a mobile link (``access = "mobile"``) carries a radio context (agent.radio): the
modem read just before the measurement starts (after the lock, budget and gate) and, for a
bandwidth test, again when it ends. No modem or no ModemManager: no context, the run is
otherwise the same; a measurement that raises ``skip`` (the radio kind without a modem) is a
skipped result.

The survey kind's runs live in its measurement (bound here: probe id, state directory) and
go on across a new config; :meth:`Runner.finish`, on a clean stop, gives each its last point.

Every run of a kind whose remote config named destinations of its own runs under a guard
that checks every address it connects to (agent.allowance, kinds.common.destinations).

Every outcome is a result: ok, failed (the measurement raised MeasurementError) or skipped
(lock, budget, gate, missed run). It carries one clock reading, taken when the run starts:
``measured_at`` and the clock's state (synced, uptime, since the last sync) from the same
moment (agent.clock), so an NTP step during a long test cannot pair them wrongly. It is
spooled (agent.spool) with its seq before anything is published, then the publisher is
woken.

A disk that refuses results (full, failing): they are held in memory, in order, up to
``[spool] memory_max_mb`` of payload; beyond it the oldest go, health first, each counted
(agent.losses, reason ``disk_full``). Held results are spooled, oldest first and before any
newer one, as soon as the disk takes them (the next result, or the daemon's tick every
second). A result that can never be spooled (``ResultTooLarge``: larger than the whole
disk budget; or one the wire contract refuses) is lost at once, counted (``unspoolable``)
and logged. ``storage`` says which it is now: ``ok``, ``disk_full`` or ``failing``.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from probefleet import kinds
from probefleet.agent import results
from probefleet.agent.allowance import Allowance
from probefleet.agent.budget import Budget
from probefleet.agent.clock import ClockWatch
from probefleet.agent.config import AgentConfig
from probefleet.agent.errors import ResultTooLarge, StateError
from probefleet.agent.gate import BusyLineGate
from probefleet.agent.losses import LossBook
from probefleet.agent.radio import RadioSource, Snapshots, attach
from probefleet.agent.spool import Spool, is_disk_full
from probefleet.core import configkit, wire
from probefleet.kinds import Link, Measurement
from probefleet.kinds.common import destinations
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.health.measure import Health, RuntimeFigures
from probefleet.kinds.radio.measure import Radio
from probefleet.kinds.survey.measure import Survey

log = logging.getLogger(__name__)

Storage = Literal["ok", "disk_full", "failing"]
_SPILL_WAIT_S = 0.5  # the daemon's tick does not wait longer for a spill going on


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
    radio: wire.RadioContext | None = None  # mobile links: the modem at start (and end)


@dataclass
class _Held:
    """A result the disk refused, waiting in memory; ``size``: its payload bytes."""

    pending: _Pending
    size: int


@dataclass(frozen=True)
class _Refused:
    """The spool refused a result for now (StateError): keep it."""

    size: int


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
        losses: LossBook | None = None,
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
        self._active_lock = threading.Lock()
        self.losses = losses if losses is not None else LossBook(cfg.probe.state_dir)
        # Held results: changed only under _spill_lock (attempts at the spool are made in
        # record order); _held_lock guards them for readers (health, status).
        self._held: collections.deque[_Held] = collections.deque()
        self._held_bytes = 0
        self._held_lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self.storage: Storage = "ok"
        self.storage_error: str | None = None
        self.storage_since: float | None = None  # wall clock, when the disk began refusing
        self.allowance = Allowance(cfg.probe.state_dir)
        self.radio = RadioSource(cfg.radio)
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
        self.radio.configure(cfg.radio)
        before: dict[wire.Kind, Measurement[Any]] = getattr(self, "measurements", {})
        for kind, measurement in measurements.items():
            if isinstance(measurement, Radio):
                measurement.read = self.radio.read  # reads as this [radio] says
            if isinstance(measurement, Survey):  # its runs go on across a new config
                old = before.get(kind)
                measurement.bind(
                    probe_id=cfg.probe.id, state_dir=Path(cfg.probe.state_dir),
                    previous=old if isinstance(old, Survey) else None,
                )  # fmt: skip
        self.gate = BusyLineGate(cfg.gate)
        self.measurements = measurements
        self.allowance.configure(cfg.remote)
        self.memory_max_bytes = int(cfg.spool.memory_max_mb * 1_000_000)

    # --- figures -----------------------------------------------------------------------------

    def dropped(self) -> dict[str, int]:
        """Results lost on this probe, ever, by reason (spool_budget: the spool's own)."""
        counts = self.losses.counts()
        return {
            "disk_full": counts["disk_full"],
            "spool_budget": self.spool.figures().dropped,
            "unspoolable": counts["unspoolable"],
        }

    def status_figures(self) -> tuple[int, str]:
        """(results dropped ever, storage state): the retained status carries them."""
        return sum(self.dropped().values()), self.storage

    def runtime_figures(self) -> RuntimeFigures:
        figures = self.spool.figures()
        dropped = self.dropped()
        return RuntimeFigures(
            spool_depth=figures.depth,
            spool_bytes=figures.bytes,
            spool_dropped=sum(dropped.values()),
            dropped_disk_full=dropped["disk_full"],
            dropped_spool_budget=dropped["spool_budget"],
            dropped_unspoolable=dropped["unspoolable"],
            spool_held=self.unspooled,
            disk_full=self.storage == "disk_full",
            budgets=tuple(self.budget.usage()),
        )

    # --- running -----------------------------------------------------------------------------

    def run(
        self, kind: wire.Kind, link: Link, *, gated: bool = True, request_id: str | None = None
    ) -> int | None:
        """Measure ``kind`` over ``link`` now and spool the result; its seq, or None when it
        could not be spooled. ``gated=False`` (an on-demand command) skips the busy-line gate
        but never the lock or the budget; ``request_id`` (a command's) goes into the result."""
        measurement = self.measurements[kind]
        if not self.runs_on(kind, link):
            log.debug("%s: not run on %s, not a mobile link", kind, link.interface)
            return None  # the radio kind: a fixed link has no modem, nothing to record
        with self._active_lock:
            self.active += 1
        try:
            measured_at, clock = self.clock.reading()  # one moment for both
            started = time.monotonic()
            outcome: Any
            skipped = False
            guard = self.allowance.guard(kind)
            box = Snapshots()
            try:
                with destinations.guarded(guard, process_wide=measurement.heavy):
                    if measurement.heavy:
                        outcome = self._run_heavy(
                            measurement, link, gated, request_id is not None, box
                        )
                    else:
                        outcome = self.radio.around(measurement, link, box)
            except Skip as exc:
                outcome, skipped = MeasurementError(exc.reason, exc.detail), True
            except MeasurementError as exc:
                outcome, skipped = exc, bool(getattr(exc, "skip", False))
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
                kind, link, outcome, measured_at=measured_at, clock=clock, skipped=skipped,
                request_id=request_id, radio=box.context(),
            )  # fmt: skip
        finally:
            with self._active_lock:
                self.active -= 1

    def finish(self) -> int:
        """Stopping cleanly (the scheduler stopped): each survey run going on gets its last
        point (``last = true``); how many were recorded."""
        done = 0
        for kind, measurement in self.measurements.items():
            if not isinstance(measurement, Survey):
                continue
            by_name = {i.name: i for i in self.cfg.interfaces}
            for interface in measurement.ending():
                iface = by_name.get(interface)
                link = Link(interface or None, iface.access if iface else None,
                            (iface.source_address or None) if iface else None)  # fmt: skip
                self.run(kind, link)
                done += 1
            measurement.close()
        return done

    def runs_on(self, kind: wire.Kind, link: Link) -> bool:
        """Whether ``kind`` runs over ``link`` at all: a measurement that reads a modem
        (``mobile_only``: the radio kind) has nothing to say about a fixed link."""
        mobile_only = getattr(self.measurements[kind], "mobile_only", False)
        return not mobile_only or link.access == "mobile"

    def _run_heavy(
        self,
        measurement: Measurement[Any],
        link: Link,
        gated: bool,
        on_demand: bool,
        box: Snapshots,
    ) -> Any:
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
            ok, why, detail = self.allowance.allows(kind, on_demand=on_demand)
            if not ok:
                raise Skip(why, detail)
            ok, why = self.budget.allows(link.interface, kind=kind)
            if not ok:
                raise Skip(why, self.budget.detail(link.interface or "", kind))
            if gated:
                decision = self.gate.check(link.interface, stop=self.stop)
                if not decision.clear:
                    raise Skip(decision.reason, decision.detail())
            with (
                self.budget.metered(link.interface, kind=kind),
                self.allowance.metered(kind, on_demand=on_demand) as book,
            ):
                return book(self.radio.around(measurement, link, box))
        finally:
            self.heavy_lock.release()

    def record(
        self,
        kind: wire.Kind,
        link: Link,
        outcome: Any,
        *,
        measured_at: dt.datetime | None = None,
        clock: wire.Clock | None = None,
        skipped: bool = False,
        request_id: str | None = None,
        radio: wire.RadioContext | None = None,
    ) -> int | None:
        """Wrap ``outcome`` in an envelope with the next seq and spool it durably; its seq,
        or None when it was not spooled now (held in memory while the disk refuses it, or
        lost: counted). ``measured_at`` and ``clock``: one reading (ClockWatch.reading),
        taken now when not given."""
        if measured_at is None or clock is None:
            now, state = self.clock.reading()
            measured_at, clock = measured_at or now, clock or state
        pending = _Pending(kind, link, outcome, measured_at, skipped, clock, request_id, radio)
        log.debug("%s result recorded, measured at %s", kind, _utc(measured_at))
        with self._spill_lock:
            if self._spill():  # the older ones first: seqs follow the order of results
                got = self._attempt(pending)
                if not isinstance(got, _Refused):
                    return got
                size = got.size
            else:
                size = self._size(pending)
            self._hold(_Held(pending, size))
            return None

    def retry_unspooled(self) -> int:
        """Spool what a refusing disk left in memory (oldest first); how many made it. The
        daemon calls it every second; it does not wait for a spill already going on."""
        if not self._spill_lock.acquire(timeout=_SPILL_WAIT_S):
            return 0
        try:
            before = self.unspooled
            self._spill()
            return before - self.unspooled
        finally:
            self._spill_lock.release()

    def give_up_held(self) -> int:
        """Stopping: what is still held in memory is lost (counted ``disk_full``); how many."""
        with self._spill_lock, self._held_lock:
            n = len(self._held)
            self._held.clear()
            self._held_bytes = 0
        if n:
            log.error("stopping with %d result(s) the disk refused: lost (counted)", n)
            self.losses.lost("disk_full", n, held=0)
        return n

    # --- the spool and the memory hold (callers hold _spill_lock) ----------------------------

    def _spill(self) -> bool:
        """Spool held results, oldest first, until one is refused; True when none is left."""
        spilled = 0
        try:
            while True:
                with self._held_lock:
                    if not self._held:
                        return True
                    head = self._held[0]
                got = self._attempt(head.pending)
                if isinstance(got, _Refused):
                    return False
                with self._held_lock:
                    self._held.popleft()
                    self._held_bytes -= head.size
                    left = len(self._held)
                spilled += 1
                # The book says how many are held, for a crash: after each one (a few ms).
                self.losses.held(left)
        finally:
            if spilled:
                log.info(
                    "%d held result(s) spooled; %d still held in memory", spilled, self.unspooled
                )

    def _hold(self, entry: _Held) -> None:
        gone: list[_Held] = []
        with self._held_lock:
            self._held.append(entry)
            self._held_bytes += entry.size
            while self._held_bytes > self.memory_max_bytes and self._held:
                victim = next((h for h in self._held if h.pending.kind == "health"), None)
                victim = victim or self._held[0]
                self._held.remove(victim)
                self._held_bytes -= victim.size
                gone.append(victim)
            held, held_bytes = len(self._held), self._held_bytes
        if gone:
            self.losses.lost("disk_full", len(gone), held=held)
            log.error(
                "memory hold full (%d bytes, [spool] memory_max_mb): %d result(s) lost (%s, "
                "measured %s); %d disk_full losses in all",
                self.memory_max_bytes,
                len(gone),
                ", ".join(sorted({g.pending.kind for g in gone})),
                _utc(gone[0].pending.measured_at),
                self.losses.counts()["disk_full"],
            )
        else:
            self.losses.held(held)
        if entry in gone:
            return
        log.warning(
            "%s result held in memory (the disk refuses it): %d held, %d of %d bytes",
            entry.pending.kind,
            held,
            held_bytes,
            self.memory_max_bytes,
        )

    def _size(self, pending: _Pending) -> int:
        """Its payload bytes as it would be spooled (the seq's digits aside)."""
        try:
            return len(wire.encode(self._build(pending, seq=1)))
        except wire.WireError:
            return 0  # refused by the wire contract: lost, counted, when its turn comes

    def _build(self, pending: _Pending, seq: int) -> wire.Result:
        return attach(self._build_bare(pending, seq), pending.radio)

    def _build_bare(self, pending: _Pending, seq: int) -> wire.Result:
        return results.build(
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

    def _attempt(self, pending: _Pending) -> int | _Refused | None:
        """Spool ``pending``: its seq; None when it can never be spooled (lost, counted);
        _Refused when the disk refuses it now."""
        built: list[tuple[wire.Result, int]] = []
        topics = wire.Topics(self.cfg.mqtt.topic_root)

        def make(seq: int) -> tuple[str, bytes]:
            result = self._build(pending, seq)
            payload = wire.encode(result)
            built.append((result, len(payload)))
            return topics.result(self.cfg.probe.id, pending.kind), payload

        try:
            seq = self.spool.append(pending.kind, make)
        except (ResultTooLarge, wire.WireError) as exc:
            self.losses.lost("unspoolable")
            log.error("%s result lost: it can never be spooled: %s", pending.kind, exc)
            return None
        except (StateError, sqlite3.Error) as exc:
            self._refused(exc)
            return _Refused(built[-1][1] if built else self._size(pending))
        self._accepted()
        result = built[-1][0]
        with self._last_lock:
            self.last[(pending.kind, pending.link.interface)] = LastResult(
                kind=pending.kind,
                interface=pending.link.interface,
                status=result.status,
                seq=seq,
                measured_at=_utc(result.measured_at),
                reason=result.reason,
            )
        self.on_spooled()
        return seq

    def _refused(self, exc: Exception) -> None:
        state: Storage = "disk_full" if is_disk_full(exc) else "failing"
        if self.storage != state:
            log.error(
                "the disk refuses results (%s): holding them in memory, up to %d bytes",
                exc,
                self.memory_max_bytes,
            )
            self.storage_since = self.storage_since or time.time()
        self.storage, self.storage_error = state, str(exc)

    def _accepted(self) -> None:
        if self.storage != "ok":
            since = time.time() - (self.storage_since or time.time())
            log.info("the disk takes results again, after %.0f s", since)
        self.storage, self.storage_error, self.storage_since = "ok", None, None

    @property
    def unspooled(self) -> int:
        """Results held in memory because the spool refused them."""
        with self._held_lock:
            return len(self._held)

    @property
    def unspooled_bytes(self) -> int:
        with self._held_lock:
            return self._held_bytes

    def last_results(self) -> list[LastResult]:
        with self._last_lock:
            return sorted(self.last.values(), key=lambda r: (r.kind, r.interface or ""))


def _utc(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
