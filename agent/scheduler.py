"""When measurements run: APScheduler 3.x jobs, spread over the fleet, misses recorded.

One job per enabled measurement and link (``throughput@eth0``, ``health@default``), on its
``interval_s`` or its ``cron`` line (UTC). Spreading: every job's slots are shifted by a
fixed offset within its interval (cron: within ``jitter_s`` x 10, at most an hour) derived
from a hash of the probe id and the job id — stable across restarts, different between
probes — and each run then starts up to ``[schedule] jitter_s`` (at most half the
interval) later at random. So 200
probes on a 1-hour throughput interval arrive spread over the hour, not at :00.

APScheduler runs on the wall clock. Its job options here: ``coalesce`` (runs missed
together run once), ``max_instances=1``, ``misfire_grace_time`` from the config. A run that
APScheduler reports as *missed* (later than the grace) or *not started* (the previous one
still running) becomes a skipped result via ``on_missed``, and so do the slots it coalesced
away after a stall (it runs only the latest; we count the slots between two runs).
The clock: the daemon starts the scheduler only once the clock is sane (a Pi boots in
1970: APScheduler would enumerate every missed run since), and calls
:meth:`Scheduler.reanchor` after a jump, which recomputes every job's next run from the new
"now" (no flood of misses, no day-long sleep).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from probefleet import kinds
from probefleet.agent import oneshot
from probefleet.agent.config import AgentConfig
from probefleet.core import wire
from probefleet.kinds import Link

log = logging.getLogger(__name__)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
WORKERS = 4  # a heavy test may wait on the lock; the light ones must still run meanwhile


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    kind: wire.Kind
    link: Link
    interval_s: float
    cron: str
    offset_s: float


def offset_s(probe_id: str, job_id: str, span_s: float) -> float:
    """A fixed offset in [0, span_s) from the probe and job ids (same on every restart)."""
    if span_s <= 0:
        return 0.0
    digest = hashlib.sha256(f"{probe_id}/{job_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") % int(span_s * 1000)) / 1000


def job_specs(cfg: AgentConfig, interval_override_s: float | None = None) -> list[JobSpec]:
    """Every job ``cfg`` asks for. ``interval_override_s``: test/bench hook only."""
    specs = []
    for kind in kinds.names():
        section = cfg.measurements.of(kind)
        if not section.enabled:
            continue
        # A kind about the mobile link alone (radio) gets no job on a fixed one.
        mobile_only = getattr(kinds.spec(kind).measurement(), "mobile_only", False)
        for link in oneshot.links_for(cfg, kind):
            if mobile_only and link.access != "mobile":
                continue
            job_id = f"{kind}@{link.interface or 'default'}"
            interval = interval_override_s or float(section.interval_s)
            cron = "" if interval_override_s else section.cron
            span = min(cfg.schedule.jitter_s * 10, 3600) if cron else interval
            specs.append(
                JobSpec(job_id, kind, link, interval, cron, offset_s(cfg.probe.id, job_id, span))
            )
    return specs


class _Shifted(BaseTrigger):  # type: ignore[misc]
    """A cron trigger whose every fire time is ``offset_s`` later (APScheduler has none)."""

    def __init__(self, inner: BaseTrigger, offset: float, jitter: float | None) -> None:
        self.inner = inner
        self.offset = dt.timedelta(seconds=offset)
        self.jitter = jitter

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        prev = None if previous_fire_time is None else previous_fire_time - self.offset
        nxt = self.inner.get_next_fire_time(prev, now - self.offset)
        if nxt is None:
            return None
        return self._apply_jitter(nxt + self.offset, self.jitter, now)  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return f"{self.inner} + {self.offset.total_seconds():.0f} s"


def trigger_for(spec: JobSpec, jitter_s: int) -> BaseTrigger:
    # Never more than half the interval: runs stay in order and roughly evenly spaced.
    jitter = min(float(jitter_s), spec.interval_s / 2) or None
    if spec.cron:
        return _Shifted(CronTrigger.from_crontab(spec.cron, timezone=dt.UTC), spec.offset_s, jitter)
    # Slots at EPOCH + offset + k x interval: the same grid on every restart.
    start = EPOCH + dt.timedelta(seconds=spec.offset_s)
    return IntervalTrigger(
        seconds=spec.interval_s, start_date=start, timezone=dt.UTC, jitter=jitter
    )


RunFn = Callable[[wire.Kind, Link], Any]
MissedFn = Callable[[wire.Kind, Link, str], None]


class Scheduler:
    def __init__(
        self,
        cfg: AgentConfig,
        run: RunFn,
        on_missed: MissedFn,
        *,
        interval_override_s: float | None = None,
    ) -> None:
        self._run = run
        self._on_missed = on_missed
        self._override = interval_override_s
        self._specs: dict[str, JobSpec] = {}
        self._sched = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=WORKERS)},
            timezone=dt.UTC,
        )
        self._sched.add_listener(
            self._event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self._last_slot: dict[str, dt.datetime] = {}  # job id -> last slot dealt with
        self.cfg = cfg

    def start(self) -> None:
        self.apply(self.cfg)
        self._sched.start()
        for job in self._sched.get_jobs():
            log.info("scheduled %s: %s, next at %s", job.id, job.trigger, job.next_run_time)

    def apply(self, cfg: AgentConfig) -> None:
        """(Re)build every job from ``cfg``; a running test goes on."""
        self.cfg = cfg
        self._last_slot.clear()
        for job_id in list(self._specs):
            if self._sched.get_job(job_id) is not None:
                self._sched.remove_job(job_id)
        self._specs = {s.job_id: s for s in job_specs(cfg, self._override)}
        for spec in self._specs.values():
            self._sched.add_job(
                self._run,
                trigger_for(spec, cfg.schedule.jitter_s),
                args=(spec.kind, spec.link),
                id=spec.job_id,
                name=spec.job_id,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=cfg.schedule.misfire_grace_s,
                replace_existing=True,
            )

    def reanchor(self) -> None:
        """After a clock jump: every job's next run computed afresh from the new now (the
        slots the jump skipped never existed: none is reported as missed)."""
        self._last_slot.clear()
        for spec in self._specs.values():
            job = self._sched.get_job(spec.job_id)
            if job is not None:
                job.reschedule(trigger_for(spec, self.cfg.schedule.jitter_s))
        self._sched.wakeup()

    def run_now(self, kind: wire.Kind, link: Link, request_id: str, run: RunFn) -> None:
        """An on-demand run (a command): as soon as a worker is free."""
        self._sched.add_job(
            run,
            "date",
            args=(kind, link),
            id=f"command-{request_id}-{link.interface or 'default'}",
            misfire_grace_time=None,
            replace_existing=True,
        )

    def next_runs(self) -> dict[str, str]:
        return {
            job.id: job.next_run_time.isoformat()
            for job in self._sched.get_jobs()
            if job.next_run_time is not None
        }

    def shutdown(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=False)

    def _event(self, event: JobEvent) -> None:
        spec = self._specs.get(event.job_id)
        if spec is None:
            return  # a command's one-off job
        runs = getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time]
        this = runs[-1]
        prev = self._last_slot.get(spec.job_id)
        self._last_slot[spec.job_id] = this
        # Slots between the last one handled and this one never came up at all: coalesced
        # after a stall (APScheduler runs only the latest of them and says nothing).
        gone = 0 if prev is None else max(0, slots_in(spec, prev, this) - 1)
        since = (
            f"{gone} earlier run(s) since {_utc(prev)} did not start either"
            if prev and gone
            else ""
        )
        if event.code == EVENT_JOB_SUBMITTED:
            if prev is None or not gone:
                return
            why = (
                f"missed: {gone} run(s) due after {_utc(prev)} never started "
                "(the agent was stalled or busy)"
            )
        elif event.code == EVENT_JOB_MISSED:
            why = (
                f"missed: the run due at {_utc(this)} could not start within "
                f"{self.cfg.schedule.misfire_grace_s} s" + (f"; {since}" if since else "")
            )
        else:
            why = f"not started: the run due at {_utc(this)} found the previous run still going"
            why += f"; {since}" if since else ""
        try:
            self._on_missed(spec.kind, spec.link, why)
        except Exception:  # never into APScheduler's thread
            log.exception("recording a missed %s run failed", spec.kind)


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_MAX_COUNT = 100_000


def slots_in(spec: JobSpec, after: dt.datetime, until: dt.datetime) -> int:
    """How many of ``spec``'s slots (without jitter) lie in (after, until]. Jitter is less
    than half a slot's spacing, so a jittered run time falls after its own slot and before
    the next one."""
    if until <= after:
        return 0
    if not spec.cron:
        start = (EPOCH + dt.timedelta(seconds=spec.offset_s)).timestamp()
        period = spec.interval_s
        return int((until.timestamp() - start) // period - (after.timestamp() - start) // period)
    trigger = trigger_for(spec, 0)
    count = 0
    fire = trigger.get_next_fire_time(None, after + dt.timedelta(microseconds=1))
    while fire is not None and fire <= until and count < _MAX_COUNT:
        count += 1
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(microseconds=1))
    return count
