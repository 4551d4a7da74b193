"""The collector daemon: wiring (MQTT, pipeline, InfluxDB, spool) and its main loop.

``run(cfg)`` is what ``probe-collector run`` calls. One thread does the work (intake,
flushes, acknowledgements, resend requests), paho's threads only queue messages (results
on one connection, statuses and Last Wills on another, taken first), and the spool
replayer has its own. The collector pings itself through the broker to know its own lag
(:mod:`collector.lag`), so that presence and alerts are judged against what it has taken.
SIGTERM/SIGINT: stop taking messages, flush the batch (to the spool at once if InfluxDB
is down) within a deadline, disconnect — what is still in the inbox is not acknowledged,
and the broker's session delivers it again.
"""

from __future__ import annotations

import gc
import logging
import queue
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from probefleet.collector import lag
from probefleet.collector.alerts.engine import AlertEngine, senders_for
from probefleet.collector.alerts.outbox import Delivery, Outbox
from probefleet.collector.alerts.rules import AlertsFile, load_alerts
from probefleet.collector.config import CollectorConfig
from probefleet.collector.deadletter import DeadLetterStore
from probefleet.collector.fleet import FleetRow, fleet_rows
from probefleet.collector.inventory import Enrichment, load_inventory, load_targets
from probefleet.collector.mqtt import Inbound, Inbox, MqttLink, StatusBox, shared
from probefleet.collector.pipeline import Pipeline
from probefleet.collector.report.fetch import HttpInfluxQL
from probefleet.collector.rollups_compact import Compactor
from probefleet.collector.rollups_feeder import Rollups
from probefleet.collector.selfmetrics import Gauges, collector_point, presence_points
from probefleet.collector.spool import Spool
from probefleet.collector.statedb import StateDB
from probefleet.collector.stats import Stats
from probefleet.collector.writer import InfluxSink, Replayer, Sink, Storage
from probefleet.core import configkit, wire

log = logging.getLogger(__name__)

_TICK_S = 1.0
_EXPIRY_EVERY_S = 30.0
_STATS_EVERY_S = 60.0
# SIGTERM to exit, at any backlog: systemd's TimeoutStopSec is longer (deploy/).
SHUTDOWN_S = 10.0
_FLUSH_SHARE = 0.7  # of SHUTDOWN_S for the last batch; the rest for the threads to end
_THROUGH_EVERY_S = 10.0


def load_enrichment(cfg: CollectorConfig) -> Enrichment:
    """The inventory, the targets and the hamlets named in ``[files]``; ConfigError lists
    every problem."""
    from probefleet.collector.hamlets import load_hamlets

    hamlets = load_hamlets(Path(cfg.files.areas)) if cfg.files.areas else None
    return Enrichment(
        load_inventory(Path(cfg.files.inventory)), load_targets(Path(cfg.files.targets)), hamlets
    )


class Service:
    def __init__(
        self,
        cfg: CollectorConfig,
        enrichment: Enrichment,
        *,
        sink: Sink | None = None,
        alerts: AlertsFile | None = None,
    ) -> None:
        self.cfg = cfg
        state_dir = Path(cfg.files.state_dir)
        self.stats = Stats()
        self.stopping = threading.Event()
        self._stop_asked: float | None = None
        self._replay_stop = threading.Event()
        self.db = StateDB(state_dir)
        self.deadletters = DeadLetterStore(
            state_dir,
            payload_max_bytes=cfg.deadletters.payload_max_bytes,
            max_rows=cfg.deadletters.max_rows,
            max_bytes=round(cfg.deadletters.max_mb * 1e6),
        )
        self.spool = Spool(state_dir)
        self._own_sink = sink is None
        self.sink: Sink = InfluxSink(cfg.influxdb) if sink is None else sink
        self.storage = Storage(
            self.sink,
            self.spool,
            self.stats,
            spool_after_s=cfg.influxdb.spool_after_s,
            stopping=self.stopping,
        )
        self.replayer = Replayer(
            self.sink,
            self.spool,
            self.deadletters,
            self.stats,
            max_points=cfg.influxdb.batch_max_points,
            stopping=self._replay_stop,
        )
        # Results (at most one broker window of them) and the latest status per probe.
        # Bounded by the window itself (the broker does not keep to it, see mqtt.py): with
        # the batch and the write in flight, at most one window of messages in memory.
        self.inbox = Inbox(cfg.mqtt.receive_maximum, max_wait_s=cfg.mqtt.keepalive_s / 2)
        self.statuses = StatusBox(wake=self.inbox.wake)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="influx-writer")
        self._sessions: queue.Queue[bool] = queue.Queue()
        topics = wire.Topics(cfg.mqtt.topic_root)
        stored = self.db.get_meta(lag.THROUGH_KEY)
        self.lag = lag.Lag(float(stored) if stored else None)
        self._through_saved = self.lag.through_s
        self.lag_topic = lag.topic(topics.root, cfg.mqtt.client_id)
        # The ping is never shared: it must come back to this collector, behind its queue.
        results = [shared(topics.all_results(), cfg.mqtt.share_group), self.lag_topic]
        # Status is never shared: every collector needs the whole fleet's presence, and
        # a shared subscription gets no retained messages.
        self.status_link: MqttLink | None = None
        if cfg.mqtt.status_connection:
            self.status_link = MqttLink(
                cfg.mqtt,
                self.statuses,
                [topics.all_status()],
                client_id=cfg.mqtt.status_id(),
                username=cfg.mqtt.status_user(),
                persistent=False,
            )
        else:
            results.append(topics.all_status())
        self.link = MqttLink(cfg.mqtt, self.inbox, results, on_session=self._sessions.put)
        self.pipeline = Pipeline(
            cfg,
            enrichment,
            db=self.db,
            deadletters=self.deadletters,
            storage=self.storage,
            link=self.link,
            stats=self.stats,
        )
        self.alerting: AlertEngine | None = None
        self.outbox: Outbox | None = None
        self.deliveries: list[Delivery] = []
        if alerts is None and cfg.files.alerts:
            alerts = load_alerts(Path(cfg.files.alerts))
        if alerts is not None:
            self._start_alerting(alerts, state_dir, enrichment, topics.root)
        self.rollups = self._start_rollups(state_dir, enrichment) if cfg.rollups.enabled else None
        self._tokens = 0.0
        self._next_ping = self._next_through = 0.0
        self._next_expiry = self._next_stats = time.monotonic() + _TICK_S
        self._next_metrics = time.monotonic() + min(cfg.metrics.interval_s, 5.0)
        self._metrics_base = self.stats.snapshot()

    def _start_alerting(
        self, alerts: AlertsFile, state_dir: Path, enrichment: Enrichment, root: str
    ) -> None:
        def publish(topic: str, payload: bytes, retain: bool) -> None:
            self.link.publish(topic, payload, qos=1, retain=retain)

        senders = senders_for(alerts, root, publish)
        self.outbox = Outbox(state_dir)
        self.deliveries = [
            Delivery(
                self.outbox,
                channel,
                sender,
                retry_max_s=alerts.notify.retry_max_s,
                give_up_after_s=alerts.notify.give_up_after_s,
                stopping=self._replay_stop,
            )
            for channel, sender in sorted(senders.items())
        ]
        deliveries = self.deliveries

        def wake() -> None:
            for d in deliveries:
                d.wake.set()

        self.alerting = AlertEngine(
            alerts,
            enrichment,
            db=self.db,
            outbox=self.outbox,
            emit=self.pipeline.add_lines,
            channels=sorted(senders),
            wake=wake,
        )
        self.pipeline.observers.append(self.alerting.on_batch)
        log.info("alerting on: %d rules, notifiers: %s", len(alerts.rules),
                 ", ".join(sorted(senders)) or "none")  # fmt: skip

    def _start_rollups(self, state_dir: Path, enrichment: Enrichment) -> Rollups:
        """Hourly and daily aggregates, fed every committed batch (collector.rollups_feeder);
        their points go through the pipeline's durable path like our own points."""
        cfg = self.cfg
        influxql = HttpInfluxQL(
            cfg.influxdb.url, database=cfg.influxdb.bucket, token=cfg.influxdb.token, timeout_s=600
        )
        compactor = Compactor(
            influxql,
            state_dir,
            emit=self.pipeline.add_lines,
            tz=cfg.rollups.timezone,
            peak_start_hour=cfg.rollups.peak_start_hour,
            peak_end_hour=cfg.rollups.peak_end_hour,
            grace_s=cfg.rollups.compact_grace_s,
        )
        rollups = Rollups(
            state_dir,
            emit=self.pipeline.add_lines,
            targets=enrichment.targets,
            flush_s=cfg.rollups.flush_s,
            collector_id=cfg.mqtt.client_id,
            compactor=compactor,
        )
        self.pipeline.observers.append(rollups.on_batch)
        return rollups

    def request_stop(self) -> None:
        self._stop_asked = time.monotonic()
        self.stopping.set()

    def run(self) -> int:
        """Until request_stop(); 1 if a worker thread died (let the supervisor restart us)."""
        log.info(
            "collector starting: state in %s, %d points spooled, %d results quarantined",
            self.cfg.files.state_dir,
            self.spool.points,
            self.db.quarantine_count(),
        )
        self.replayer.start()
        for delivery in self.deliveries:
            delivery.start()
        self.link.start()
        if self.status_link is not None:
            self.status_link.start()
        self.pipeline.release_known()
        try:
            return self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> int:
        pipeline = self.pipeline
        window = self.cfg.mqtt.receive_maximum
        latency_s = self.cfg.influxdb.batch_max_latency_ms / 1000
        next_tick = time.monotonic()
        retry_at = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            wait = latency_s - (now - pipeline.started) if pipeline.items else _TICK_S
            if now < retry_at:  # a failed flush is retried at retry_at, not in a busy loop
                wait = max(wait, retry_at - now)
            self._take_statuses()
            message = self.inbox.get(max(0.0, min(wait, _TICK_S)))
            while message is not None:  # None alone: a write finished, or a status came
                if message.topic == self.lag_topic:
                    self._pong(message)
                else:
                    pipeline.handle(message)
                if pipeline.due(time.monotonic(), window):
                    break
                if self.statuses.qsize():
                    self._take_statuses()  # a Last Will goes ahead of the results
                message = self.inbox.get_nowait()
            self._take_statuses()
            now = time.monotonic()
            if now >= self._next_ping:
                self._next_ping = now + self.cfg.mqtt.lag_ping_s
                self.link.publish(self.lag_topic, self.lag.ping(time.time()), qos=1)
            try:
                if pipeline.writing is not None:
                    # A full batch waits for the write before it: that bounds batches, and
                    # un-acked messages stay within the broker's window meanwhile.
                    pipeline.finish_flush(wait=pipeline.due(now, window))
                if pipeline.writing is None and now >= retry_at and pipeline.due(now, window):
                    pipeline.start_flush(self._writer, self._wake)
            except Exception:
                # Nothing of that batch was acknowledged; it is back in front and retried.
                log.exception("flush failed; retrying in 1 s")
                retry_at = now + 1.0
            self.inbox.set_elsewhere(self.queue_depth() - self.inbox.qsize())
            if now >= next_tick:
                next_tick = now + _TICK_S
                if not self._tick(now):
                    return 1
        return 0

    def _wake(self) -> None:
        self.inbox.wake()

    def _take_statuses(self) -> None:
        for message in self.statuses.take():
            self.pipeline.handle(message)

    def _pong(self, message: Inbound) -> None:
        """Our own ping, back through the broker: our lag (collector.lag). Acknowledged at
        once: nothing about it needs to be durable."""
        self.link.ack(message)
        if not self.lag.pong(message.payload, time.time()):
            log.warning("not a ping on our ping topic %s: ignored", message.topic)

    def lag_s(self) -> float:
        """How far behind the broker's queue for us we are, s."""
        return self.lag.lag_s(time.time())

    def _save_through(self) -> None:
        through = self.lag.through_s
        if through is not None and through != self._through_saved:
            self.db.set_meta(lag.THROUGH_KEY, repr(through))
            self._through_saved = through

    def _tick(self, now: float) -> bool:
        """Once a second: health of the threads, session news, resends, quarantine, stats."""
        if not self.link.alive() or (self.status_link is not None and not self.status_link.alive()):
            log.error("an MQTT network thread died; exiting so that the supervisor restarts us")
            return False
        if not self.replayer.is_alive():
            log.error("the spool replayer died; exiting so that the supervisor restarts us")
            return False
        if any(not d.is_alive() for d in self.deliveries):
            log.error("the alert delivery thread died; exiting so that the supervisor restarts us")
            return False
        while not self._sessions.empty():
            self._session(self._sessions.get_nowait())
        # In a share group too: a gap is asked for only while the probe may still hold it
        # (its held_from_seq settles the rest), and what it no longer holds it ignores.
        rate = self.cfg.sequences.resend_max_per_s
        self._tokens = min(max(rate, 1.0), self._tokens + rate * _TICK_S)
        self._tokens -= self.pipeline.resend(int(self._tokens))
        if now >= self._next_expiry:
            self._next_expiry = now + _EXPIRY_EVERY_S
            expired = self.pipeline.release_expired(time.time_ns())
            if expired:
                log.info("%d quarantined results written at estimated times", expired)
        if now >= self._next_stats:
            self._next_stats = now + _STATS_EVERY_S
            log.info(
                "stats: %s spooled=%d lag=%.1fs held=%d (max %d)",
                self.stats.summary() or "idle",
                self.spool.points,
                self.lag_s(),
                self.inbox.qsize(),
                self.inbox.high_water,
            )
        if now >= self._next_through:
            self._next_through = now + _THROUGH_EVERY_S
            self._save_through()
        if self.alerting is not None:
            wall = time.time()
            own = {"lag_s": self.lag.lag_s(wall)}
            self.alerting.tick(self.fleet(wall), wall, collector=self.cfg.mqtt.client_id, own=own)
        if self.rollups is not None:
            self.rollups.tick()  # a flush of touched buckets every rollups.flush_s
        interval = self.cfg.metrics.interval_s
        if interval and now >= self._next_metrics:
            self._next_metrics = now + interval
            self._write_own_points(interval)
        return True

    def queue_depth(self) -> int:
        """Messages taken from the broker and not yet acknowledged."""
        writing = self.pipeline.writing
        in_flight = sum(i.inbound is not None for i in writing[0].items) if writing else 0
        return self.inbox.qsize() + self.pipeline.messages + in_flight

    def fleet(self, now_s: float) -> list[FleetRow]:
        return fleet_rows(
            self.pipeline.enrichment.inventory,
            self.pipeline.presence.states,
            now_s,
            self.cfg.presence.offline_after_s,
            self.lag.lag_s(now_s),
        )

    def _write_own_points(self, interval_s: float) -> None:
        """Self-metrics and presence, through the same durable path as results."""
        now_s = time.time()
        snapshot = self.stats.snapshot()
        deltas = {k: v - self._metrics_base.get(k, 0) for k, v in snapshot.items()}
        self._metrics_base = snapshot
        gaps = self.pipeline.book.gaps_open()
        gauges = Gauges(
            queue_depth=self.queue_depth(),
            spool_points=self.spool.points,
            quarantined=self.db.quarantine_count(),
            gaps_open=gaps,
            alerts_firing=len(self.alerting.active()) if self.alerting is not None else None,
            lag_s=self.lag.lag_s(now_s),
            held=self.inbox.qsize(),
            held_max=self.inbox.high_water,
            dropped_redelivered=self.inbox.dropped,
        )
        own = collector_point(
            self.cfg.mqtt.client_id,
            deltas,
            self.stats.take_observed(),
            gauges,
            now_s=now_s,
            interval_s=interval_s,
        )
        presence = presence_points(self.fleet(now_s), now_s=now_s, interval_s=interval_s)
        self.pipeline.add_lines("$collector/collector", [own.line()])
        self.pipeline.add_lines("$collector/presence", [p.line() for p in presence])

    def _session(self, present: bool) -> None:
        had = self.db.get_meta("mqtt_session") == self.cfg.mqtt.client_id
        if not present and had:
            log.warning(
                "the broker lost our session (expired or broker state lost): messages queued "
                "for us meanwhile are gone from it; the probes still hold them, and gaps "
                "will be asked for"
            )
        if not had:
            self.db.set_meta("mqtt_session", self.cfg.mqtt.client_id)

    def _shutdown(self) -> None:
        """Within SHUTDOWN_S at any backlog: the inbox is left to the broker's session (not
        acknowledged, so delivered again), only the batch taken in is made durable."""
        deadline = time.monotonic() + SHUTDOWN_S
        log.info(
            "stopping: flushing the batch (%d messages); %d left to the broker's session "
            "(held at most %d; inbox full %d times, %d taken beyond it; %d redelivered dropped)",
            self.pipeline.messages,
            self.inbox.qsize(),
            self.inbox.high_water,
            self.inbox.full_waits,
            self.inbox.overfilled,
            self.inbox.dropped,
        )
        # Each phase's time goes into the last log line: a stop slower than SHUTDOWN_S
        # names the phase to blame (systemd's TimeoutStopSec kills at 90 s).
        phases = _Phases(self._stop_asked)
        phases.end("loop")  # from the stop request to here: the write the loop waited for
        self.inbox.close()  # what is there and what still comes: the broker delivers it again
        self._take_statuses()  # acknowledged on receipt: handled now, or replayed next time
        phases.end("statuses")
        self._final_flush(deadline - SHUTDOWN_S * (1 - _FLUSH_SHARE))
        phases.end("batch")
        if self.rollups is not None:
            # The open buckets (the last batch's results too) to local disk, for the next
            # start: written to InfluxDB here they took 10.7 s at 10,000 probes.
            self.rollups.hold()
            phases.end("rollups")
            # A clean stop only if every part was stored; else the next start names the
            # hour to rebuild from (probe-collector rollup rebuild).
            self.rollups.close()
        # A write still running past the deadline is never committed (nothing of it is
        # acknowledged); its thread ends with influxdb.timeout_s at the latest.
        self._writer.shutdown(wait=False, cancel_futures=True)
        self.link.stop()
        if self.status_link is not None:
            self.status_link.stop()
        phases.end("mqtt")
        self._save_through()
        self._replay_stop.set()
        self.replayer.join(timeout=max(0.1, deadline - time.monotonic()))
        for delivery in self.deliveries:
            delivery.wake.set()
            delivery.join(timeout=max(0.1, deadline - time.monotonic()))
        phases.end("threads")
        if self.outbox is not None:
            self.outbox.close()
        self.db.close()
        self.deadletters.close()
        self.spool.close()
        if self._own_sink and isinstance(self.sink, InfluxSink):
            self.sink.close()
        phases.end("files")
        log.info(
            "stopped: %s; took %s", self.stats.summary() or "nothing happened", phases.summary()
        )

    def _final_flush(self, deadline: float) -> None:
        """The one place the last batch is written at shutdown (``deadline``: monotonic).
        Only what the pipeline holds (the batch, the write in flight), in chunks of
        batch_max_points, none started that would end past the deadline; what is left is
        not acknowledged (the broker delivers it again). InfluxDB down: to the spool at
        once (``stopping`` is set)."""
        try:
            left = self.pipeline.flush(deadline_s=max(0.0, deadline - time.monotonic()))
        except Exception:
            log.exception("last flush failed; those messages will be redelivered")
            return
        if left:
            log.info("%d messages of the batch left to the broker's session", left)


class _Phases:
    """Wall time per shutdown phase, for the last log line."""

    def __init__(self, start: float | None) -> None:
        self._start = self._last = time.monotonic() if start is None else start
        self._parts: list[str] = []

    def end(self, name: str) -> None:
        now = time.monotonic()
        self._parts.append(f"{name} {now - self._last:.2f}")
        self._last = now

    def summary(self) -> str:
        return f"{self._last - self._start:.2f} s ({', '.join(self._parts)})"


def tune_gc() -> None:
    """Fewer, cheaper cyclic garbage collections for the daemon.

    A batch holds thousands of messages, each a few dozen container objects, so with
    Python's default threshold (700) the collector ran about 1,500 collections per 20,000
    results and spent 1.3-1.4 s in them — as much as in parsing and writing those results.
    Everything alive once the service is built (modules, config, inventory, state) is moved
    out of the collector's sight (``gc.freeze``), and a young-generation collection waits
    for 100,000 new objects: 0.2-0.3 s per 20,000 results (bench/bench_collector.py). Our
    own code makes no reference cycles on the hot path; the few elsewhere (exceptions) are
    still collected, a little later."""
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)


def run(cfg: CollectorConfig) -> int:
    """``probe-collector run``: the daemon. 0 after SIGTERM/SIGINT, 1 on a fatal error,
    2 when the inventory or targets file is wrong."""
    try:
        enrichment = load_enrichment(cfg)
        service = Service(cfg, enrichment)
    except configkit.ConfigError as exc:
        log.error("%s", exc)
        return 2
    tune_gc()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received", signal.Signals(signum).name)
        service.request_stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return service.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
