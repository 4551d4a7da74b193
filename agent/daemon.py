"""`probe-agent run`: the daemon a probe runs for months. Wiring, clock gate, SIGTERM.

    config (file + remote overlay, agent.fleet)
      -> Runner (agent.runner: lock, budget, gate, measure, spool)  <- Scheduler (agent.scheduler)
      -> Spool (agent.spool, SQLite) -> Publisher (agent.publisher, paho) -> broker
    main thread: waits for a sane clock, then once a second watches the clock for jumps, the
    threads for death, and rewrites status.json (agent.statusfile).

Exit status: 0 after SIGTERM/SIGINT; 1 when a worker thread died (systemd restarts us);
2 on a config error. Results are never lost by stopping: each is in the spool before it is
published; what is not confirmed stored goes out again at the next start.

A full disk stops nothing (agent.runner holds results in memory, agent.losses counts what
overflows): the loop spools what is held every second, writes the loss counters that could
not be written, republishes the retained status when the storage state or the count of
lost results changes, and keeps ``reserve.bin`` (agent.reserve). Stopping while the disk
refuses results deletes the reserve and spools into its room what is held; what still
does not fit is counted as lost.

Test hook (not for production): ``PROBEFLEET_AGENT_TEST_HOOK=module`` imports ``module``
and calls its ``install(registry)`` with the daemon's own copy of the measurement registry,
so tests and the benchmark can put fast stand-in measurements in; its optional
``INTERVAL_S`` replaces every job's interval (below the config's 10 s minimum).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from probefleet import kinds
from probefleet.agent import __version__, statusfile
from probefleet.agent.budget import Budget, limits_from
from probefleet.agent.clock import SANE_AFTER, ClockWatch, boot_id, kernel_says_synced
from probefleet.agent.config import AgentConfig
from probefleet.agent.fleet import ConfigSource, Fleet, digest
from probefleet.agent.losses import LossBook
from probefleet.agent.oneshot import links_for
from probefleet.agent.publisher import Publisher
from probefleet.agent.reserve import Reserve
from probefleet.agent.runner import Runner
from probefleet.agent.scheduler import Scheduler
from probefleet.agent.spool import Spool
from probefleet.core import wire
from probefleet.kinds import Link, Measurement
from probefleet.kinds.errors import MeasurementError

log = logging.getLogger(__name__)

TEST_HOOK_ENV = "PROBEFLEET_AGENT_TEST_HOOK"
_TICK_S = 1.0
_STATUS_EVERY_S = 5.0  # status.json: a window for `probe-agent status`, not a record
_JUMP_S = 30.0  # wall clock moved this much against the monotonic one: a jump
_STOP_WAIT_S = 25.0  # for a running test to spool its result (systemd waits 45 s)
_STATUS_REPUBLISH_S = 5.0  # the retained status follows the lost count at most this often


class ClockJumps:
    """Notices the wall clock moving against the monotonic one (NTP stepping it, someone
    setting it): APScheduler sleeps on the wall clock and must then be re-anchored."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        threshold_s: float = _JUMP_S,
    ) -> None:
        self._wall = wall
        self._mono = mono
        self.threshold_s = threshold_s
        self._offset = wall() - mono()

    def check(self) -> float | None:
        """The size of a jump since the last check (seconds, + = forward), or None."""
        offset = self._wall() - self._mono()
        moved = offset - self._offset
        if abs(moved) <= self.threshold_s:
            return None
        self._offset = offset
        return moved


class Daemon:
    def __init__(self, config_path: Path, env: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.source = ConfigSource(config_path, env)
        self.cfg = self.source.load()
        self.state_dir = Path(self.cfg.probe.state_dir)
        self.stop = threading.Event()
        self.boot_id = boot_id()
        self.clock = ClockWatch()
        registry: dict[wire.Kind, type[Measurement[Any]]] = kinds.measurements()
        self.interval_override_s: float | None = None
        hook = (env if env is not None else os.environ).get(TEST_HOOK_ENV)
        if hook:
            module = importlib.import_module(hook)
            module.install(registry)
            self.interval_override_s = getattr(module, "INTERVAL_S", None)
            log.warning("test hook %s installed: not a production agent", hook)
        cfg = self.cfg
        self.spool = Spool(self.state_dir, max_bytes=int(cfg.spool.max_mb * 1_000_000))
        self.losses = LossBook(self.state_dir)
        self.reserve = Reserve(self.state_dir, int(cfg.spool.reserve_mb * 1_000_000))
        self.reserve.ensure()
        self.budget = Budget(self.state_dir, limits_from(cfg.interfaces), config=cfg.budget)
        self.publisher = Publisher(
            cfg.probe.id, cfg.mqtt, cfg.spool, self.spool, boot_id=self.boot_id
        )
        self.runner = Runner(
            cfg,
            spool=self.spool,
            budget=self.budget,
            boot_id=self.boot_id,
            clock=self.clock,
            stop=self.stop,
            on_spooled=self.publisher.wake,
            registry=registry,
            losses=self.losses,
        )
        self.publisher.storage_figures = self.runner.status_figures
        self._status_figures = self.runner.status_figures()
        self._status_published_at = 0.0
        self.scheduler = Scheduler(
            cfg, self.runner.run, self._missed, interval_override_s=self.interval_override_s
        )
        self.fleet = Fleet(
            self.source,
            self.state_dir,
            apply=self._apply,
            command=self._command,
            report=self._report_config,
        )
        self.publisher.on_control = self.fleet.handle
        self._report_config(publish=False)
        self.measuring = False
        self._status_at = 0.0
        self._status_failing_since: float | None = None
        self._status_logged_at = 0.0

    # --- fleet control -----------------------------------------------------------------------

    def _apply(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.runner.configure(cfg)
        self.budget.config = cfg.budget
        if self.measuring:
            self.scheduler.apply(cfg)
        else:
            self.scheduler.cfg = cfg

    def _report_config(self, publish: bool = True) -> None:
        self.publisher.config_digest = digest(self.source.remote) if self.source.remote else None
        self.publisher.config_error = self.source.error
        if publish:
            self.publisher.publish_status()

    def _command(self, command: wire.Command) -> None:
        links = links_for(self.cfg, command.kind, command.interface)
        for link in links:
            self.scheduler.run_now(
                command.kind,
                link,
                command.request_id,
                lambda kind, lnk: self.runner.run(
                    kind, lnk, gated=False, request_id=command.request_id
                ),
            )

    def _missed(self, kind: wire.Kind, link: Link, why: str) -> None:
        if not self.runner.runs_on(kind, link):
            return  # it would not have run there (the radio kind on a fixed link)
        self.runner.record(kind, link, MeasurementError(why), skipped=True)

    # --- running -----------------------------------------------------------------------------

    def run(self) -> int:
        log.info(
            "probe-agent %s starting as %s (boot %s); state in %s, %d results spooled",
            __version__,
            self.cfg.probe.id,
            self.boot_id,
            self.state_dir,
            self.spool.figures().depth,
        )
        self.publisher.start()
        try:
            if not self._wait_for_clock():
                return 0 if self.stop.is_set() else 1
            self.scheduler.start()
            self.measuring = True
            return self._loop()
        finally:
            self._shutdown()

    def _clock_ok(self) -> bool:
        if wire.utc_now() < SANE_AFTER:
            return False
        return not self.cfg.schedule.require_synced_clock or kernel_says_synced() is True

    def _wait_for_clock(self) -> bool:
        """Until the clock is sane (and synchronised, if required); False when stopped."""
        warned = False
        while not self._clock_ok():
            if not warned:
                log.warning(
                    "waiting for the clock: %s (results are spooled and sent meanwhile)",
                    "synchronised clock required ([schedule] require_synced_clock)"
                    if wire.utc_now() >= SANE_AFTER
                    else f"it says {wire.utc_now():%Y-%m-%d}, before {SANE_AFTER:%Y}",
                )
                warned = True
            self._tick_status()
            if self.stop.wait(_TICK_S):
                return False
            if (why := self.publisher.alive()) is not None:
                log.error("%s", why)
                return False
        log.info("clock is %s: measuring", "synchronised" if kernel_says_synced() else "sane")
        return True

    def _loop(self) -> int:
        jumps = ClockJumps()
        while not self.stop.wait(_TICK_S):
            why = self.publisher.alive()
            if why is not None:
                log.error("%s; exiting so that systemd restarts the agent", why)
                return 1
            jumped = jumps.check()
            if jumped is not None:
                log.warning(
                    "the wall clock jumped by %+.0f s: rescheduling every measurement", jumped
                )
                self.scheduler.reanchor()
            self._tick_storage()
            self._tick_status()
        return 0

    def _tick_storage(self) -> None:
        """Spool what the disk refused, write the loss counters it refused, and tell the
        centre (retained status) when the storage state or the lost count changed."""
        try:
            self.runner.retry_unspooled()
            self.losses.flush()
            figures = self.runner.status_figures()
        except Exception:  # a bug here must not stop the loop that watches the threads
            log.exception("the storage tick failed")
            return
        if figures == self._status_figures:
            return
        now = time.monotonic()
        state_changed = figures[1] != self._status_figures[1]
        if state_changed or now - self._status_published_at >= _STATUS_REPUBLISH_S:
            self._status_figures = figures
            self._status_published_at = now
            self.publisher.publish_status()

    def _tick_status(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._status_at < _STATUS_EVERY_S:
            return
        self._status_at = now
        if self.runner.storage == "ok":
            self.reserve.ensure()  # cheap while it exists; made again once there is room
        try:
            how = statusfile.write(self.state_dir, self.status_doc())
        except Exception as exc:  # a status file must never stop the agent
            self._status_failed(f"cannot write the status file: {exc}")
            return
        if how != "replaced":
            self._status_failed("the disk has no room: the status file is rewritten in place")
        else:
            self._status_failing_since = None

    def _status_failed(self, why: str) -> None:
        # Once a minute at most: a full disk lasts, the journal should not fill with it.
        now = time.monotonic()
        if self._status_failing_since is None or now - self._status_logged_at >= 60:
            log.warning("%s", why)
            self._status_logged_at = now
        self._status_failing_since = self._status_failing_since or now

    def status_doc(self, state: str = "running") -> dict[str, Any]:
        delivery = self.publisher.state
        spool = self.spool.figures()
        dropped = self.runner.dropped()
        clock = self.clock.state()
        # As booked (health books the counters every minute): booking here would rewrite
        # and fsync the ledger every few seconds on an SD card.
        month = self.budget.month()
        budgets = [
            {
                "interface": name,
                "month": month,
                "used_bytes": self.budget.used(name),
                "limit_bytes": limit,
            }
            for name, limit in sorted(self.budget.limits.items())
        ]
        return {
            "probe_id": self.cfg.probe.id,
            "agent_version": __version__,
            "pid": os.getpid(),
            "state": state,
            "written_at": time.time(),
            "boot_id": self.boot_id,
            "measuring": self.measuring,
            "mqtt": {
                "broker": f"{self.cfg.mqtt.host}:{self.cfg.mqtt.port}",
                "connected": delivery.connected,
                "since": delivery.since,
                "last_error": delivery.last_error,
                "published": delivery.published,
                "confirmed": delivery.confirmed,
                "resent": delivery.resent,
                "refused": delivery.refused,
                "inflight": delivery.inflight,
                "unconfirmed": delivery.unconfirmed,
                "last_ack_seq": delivery.last_ack_seq,
            },
            "spool": {
                "depth": spool.depth,
                "bytes": spool.bytes,
                "max_bytes": self.spool.max_bytes,
                # Renumbered above a previous life's watermark (reflash, wiped state dir).
                "renumbered": spool.renumbered,
                "oldest_seq": spool.oldest_seq,
                "next_seq": spool.next_seq,
                # Lost on this probe, ever (counters that survive restarts), by reason.
                "dropped": sum(dropped.values()),
                "dropped_by_reason": dropped,
                # Held in memory (no seq yet) while the disk refuses them.
                "held_in_memory": self.runner.unspooled,
                "held_bytes": self.runner.unspooled_bytes,
                "memory_max_bytes": self.runner.memory_max_bytes,
            },
            "storage": {
                "state": self.runner.storage,
                "since": self.runner.storage_since,
                "error": self.runner.storage_error,
                "counters_unsaved": self.losses.unsaved,
                "reserve": self.reserve.present,
            },
            "clock": {
                "synced": clock.synced,
                "uptime_s": clock.uptime_s,
                "since_sync_s": clock.since_sync_s,
            },
            "config": {
                "file": str(self.config_path),
                "remote_digest": digest(self.source.remote) if self.source.remote else None,
                "error": self.source.error,
            },
            "budgets": budgets,
            "last_results": [r.__dict__ for r in self.runner.last_results()],
            # Why mobile results carry no radio context, per interface ("ok": they do).
            "radio": self.runner.radio.status(),
            "next_runs": self.scheduler.next_runs() if self.measuring else {},
        }

    def _keep_held(self) -> None:
        """Stopping: what the disk refused and memory holds goes to the spool, into the
        reserve's room if need be; what still does not fit is counted as lost."""
        if self.runner.unspooled:
            self.runner.retry_unspooled()
        if self.runner.unspooled and self.reserve.release():
            self.runner.retry_unspooled()
        self.runner.give_up_held()
        if not self.losses.flush():
            log.error("stopping with the lost-results counters unwritten: %s", self.losses.error)

    def request_stop(self) -> None:
        self.stop.set()

    def _shutdown(self) -> None:
        log.info("stopping")
        self.stop.set()
        self.scheduler.shutdown()
        deadline = time.monotonic() + _STOP_WAIT_S
        while self.runner.active and time.monotonic() < deadline:
            time.sleep(0.1)  # a test in progress: its result goes to the spool first
        if self.runner.active:
            log.warning(
                "%d measurement(s) still running; their results are lost", self.runner.active
            )
        self.runner.finish()  # each survey run going on: its last point (last = true)
        self._keep_held()
        self.publisher.stop()
        try:
            statusfile.write(self.state_dir, self.status_doc(state="stopped"))
        except Exception as exc:
            log.warning("cannot write the status file: %s", exc)
        figures = self.spool.figures()
        self.spool.close()
        log.info("stopped; %d results stay spooled for the next start", figures.depth)


def run(config_path: Path) -> int:
    # APScheduler logs every job start and end at INFO: noise on a probe's journal.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    daemon = Daemon(config_path)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received", signal.Signals(signum).name)
        daemon.request_stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return daemon.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
