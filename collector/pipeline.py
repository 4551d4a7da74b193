"""The collector's pipeline: messages in arrival order -> batch -> durable -> ack, no broker.

:meth:`Pipeline.handle` turns each message into a batch item: points, a dead letter or a
quarantine row. :meth:`Pipeline.flush` makes the whole batch durable — dead letters
committed, points in InfluxDB or the spool (refused points dead-lettered), quarantine and
sequence state committed — and only then acknowledges the messages, in arrival order, and
publishes a StoredAck to every probe concerned. If anything fails the batch stays, nothing
is acknowledged, and the next flush tries again (rewrites are harmless: same points).

The MQTT side is a :class:`Link` (``collector.mqtt.MqttLink``, or a fake in unit tests).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Final

from probefleet.collector import clock
from probefleet.collector._batch import Item, Link, Sealed, claim, estimated_at, rebased_at
from probefleet.collector.cardinality import CardinalityGuard
from probefleet.collector.config import CollectorConfig
from probefleet.collector.deadletter import DeadLetter, DeadLetterStore
from probefleet.collector.errors import Rejected, WriteRejected
from probefleet.collector.inventory import Enrichment
from probefleet.collector.lineproto import Point
from probefleet.collector.mqtt import Inbound
from probefleet.collector.points import Parsed, parse, parse_status, points_from
from probefleet.collector.presence import Presence
from probefleet.collector.sequences import SequenceBook, Settled
from probefleet.collector.statedb import Boot, Quarantined, StateDB
from probefleet.collector.stats import Stats
from probefleet.collector.writer import Storage, refused_letter
from probefleet.core import wire

log = logging.getLogger(__name__)
MAX_SEQ_JUMP: Final = 2**32


class Pipeline:
    def __init__(
        self,
        cfg: CollectorConfig,
        enrichment: Enrichment,
        *,
        db: StateDB,
        deadletters: DeadLetterStore,
        storage: Storage,
        link: Link,
        stats: Stats,
    ) -> None:
        self.cfg = cfg
        self.topics = wire.Topics(cfg.mqtt.topic_root)
        self.enrichment = enrichment
        self.db = db
        self.deadletters = deadletters
        self.storage = storage
        self.link = link
        self.stats = stats
        self.book = SequenceBook(db.load_probes())
        self.boots = db.load_boots()
        self.presence = Presence(db.load_presence(), max_future_s=cfg.clock.max_future_s)
        self.guard = CardinalityGuard(db.load_cardinality(), cfg.cardinality)
        # Called with every committed batch's items, after the acks (alerting).
        self.observers: list[Callable[[Sequence[Item]], None]] = []
        self.items: list[Item] = []
        self.points = 0
        self.messages = 0
        self.started = 0.0  # monotonic time of the batch's first item
        self.writing: tuple[Sealed, Future[list[tuple[int, WriteRejected]]]] | None = None

    # -- intake ------------------------------------------------------------------------------

    def handle(self, message: Inbound) -> None:
        """Turn one message into a batch item; never raises for anything in the message."""
        self.stats.add("received")
        try:
            if message.topic.endswith("/status"):
                item = self._status_item(message)
            else:
                parsed = parse(message.topic, message.payload, self.topics)
                item = self._item_for(parsed, message)
        except Rejected as exc:
            item = self._rejected(message, exc)
        except Exception as exc:
            # A bug must not turn one message into a crash loop (it would be redelivered
            # forever): keep it as a dead letter for a developer instead.
            log.exception("internal error on %s", message.topic)
            item = self._rejected(message, Rejected("$", f"internal error: {exc!r}"))
        self._add(item)

    def _status_item(self, message: Inbound) -> Item:
        probe, status = parse_status(message.topic, message.payload, self.topics)
        self.stats.add("status_messages")
        return Item(message.topic, message, probe, None, status=status)

    def add_lines(self, topic: str, lines: list[str]) -> None:
        """The collector's own points (presence, self-metrics, alerts): written with the
        next batch, durably like any other; ``topic`` names them in a dead letter."""
        if lines:
            self._add(Item(topic, None, None, None, lines=lines))

    def _item_for(self, parsed: Parsed, message: Inbound) -> Item:
        result = parsed.result
        if self._beyond_reach(parsed.probe, result.seq):
            known = self._max_seq(parsed.probe)
            # Seqs count a probe's results: no life makes 2^32 between two we see. Taken,
            # it would open a gap of that size to ask for and count (gaps_open 1.8e16).
            raise Rejected(
                "seq", f"{result.seq} is {result.seq - known} beyond this probe's seq {known}"
            )
        item = Item(message.topic, message, parsed.probe, result.seq, parsed=parsed)
        self._note_boot(parsed.probe, result)
        when = self._timestamp(parsed.probe, result, message.received_ns)
        if when is None:
            # Checked now, so that a result that can never be written is dead-lettered now.
            self._admit(
                parsed.probe,
                points_from(result, parsed.probe, self.enrichment, clock.Timestamp(0, "rebased")),
            )
            item.quarantine = Quarantined(
                parsed.probe,
                result.boot_id,
                result.seq,
                message.topic,
                message.payload,
                message.received_ns,
            )
            self.stats.add("quarantined")
            return item
        item.points = points_from(result, parsed.probe, self.enrichment, when)
        self._admit(parsed.probe, item.points)
        item.lines = [p.line() for p in item.points]
        item.when_ns = when.time_ns
        return item

    def _admit(self, probe: str, points: list[Point]) -> None:
        try:
            self.guard.admit(probe, points)
        except Rejected:
            self.stats.add("cardinality_refused")
            raise

    def _beyond_reach(self, probe: str, seq: int) -> bool:
        return seq > self._max_seq(probe) + MAX_SEQ_JUMP

    def _max_seq(self, probe: str) -> int:
        state = self.book.states.get(probe)
        return state.max_seq if state is not None else 0

    def _rejected(self, message: Inbound, exc: Rejected) -> Item:
        probe, seq = claim(message, self.topics)
        if probe is not None and seq is not None and self._beyond_reach(probe, seq):
            seq = None  # not counted as handled: it would open a giant gap all the same
        self.stats.add("rejected")
        log.info("rejected %s: %s", message.topic, exc)
        letter = DeadLetter(
            received_at=message.received_ns / 1e9,
            topic=message.topic,
            probe=probe,
            stage="parse",
            field=exc.field,
            reason=exc.reason,
            payload=message.payload,
        )
        return Item(message.topic, message, probe, seq, letter=letter)

    def _note_boot(self, probe: str, result: wire.Result) -> None:
        key = (probe, result.boot_id)
        if key in self.boots:
            return
        if self.book.handled(probe, result.seq):
            # A boot never seen before claims a seq already handled: the probe lost its
            # counter (new SD card?). Start its book afresh rather than acknowledge its new
            # results as stored before they are.
            log.warning("probe %s restarted its seq at %d on a new boot", probe, result.seq)
            self.stats.add("seq_resets")
            self.book.reset(probe)
        self.boots[key] = Boot(result.seq)
        self.db.add_boot(probe, result.boot_id, self.boots[key])

    def _timestamp(
        self, probe: str, result: wire.Result, received_ns: int
    ) -> clock.Timestamp | None:
        boot = self.boots[(probe, result.boot_id)]
        if clock.trusted(result, received_ns, self.cfg.clock.max_future_s):
            if boot.boot_time_ns is None:
                self._learn_boot(probe, result.boot_id, clock.boot_time_ns(result))
                return clock.as_measured(result)
            if clock.agrees(result, boot.boot_time_ns, self.cfg.clock.step_tolerance_s):
                return clock.as_measured(result)
            # "Synced", yet its clock disagrees with the boot's known start: stepped.
            step_s = (clock.boot_time_ns(result) - boot.boot_time_ns) / 1e9
            self.stats.add("clock_steps")
            log.info(
                "probe %s seq %d: clock %+.1f s off its boot's start while synced; re-based",
                probe,
                result.seq,
                step_s,
            )
        if boot.boot_time_ns is not None:
            return clock.rebased(
                result, boot.boot_time_ns, received_ns, self.cfg.clock.max_future_s
            )
        return None

    def _learn_boot(self, probe: str, boot_id: str, boot_ns: int) -> None:
        boot = self.boots[(probe, boot_id)]
        boot.boot_time_ns = boot_ns
        self.db.add_boot(probe, boot_id, boot)  # committed before any time is derived from it
        self.stats.add("boots_learnt")
        # Unsynchronised results of this boot, in this batch and in the quarantine.
        for item in self.items:
            q = item.quarantine
            if q is not None and (q.probe, q.boot_id) == (probe, boot_id) and item.parsed:
                item.quarantine = None
                when = clock.rebased(
                    item.parsed.result, boot_ns, q.received_ns, self.cfg.clock.max_future_s
                )
                self._write_rebased(item, item.parsed, when)
                self.points += len(item.lines)
        released = self.db.quarantined_of(probe, boot_id)
        for row in released:
            self._release(
                row,
                functools.partial(
                    rebased_at, boot_ns, row.received_ns, self.cfg.clock.max_future_s
                ),
            )
        if released:
            log.info(
                "boot %s of %s: %d quarantined results re-based", boot_id, probe, len(released)
            )

    def _release(self, row: Quarantined, when: Callable[[wire.Result], clock.Timestamp]) -> None:
        item = Item(row.topic, None, row.probe, row.seq, release_id=row.id)
        try:
            parsed = parse(row.topic, row.payload, self.topics)
            self._write_rebased(item, parsed, when(parsed.result))
        except Rejected as exc:
            item.letter = DeadLetter(
                row.received_ns / 1e9,
                row.topic,
                row.probe,
                "parse",
                exc.field,
                exc.reason,
                row.payload,
            )
        self.stats.add("released")
        self._add(item)

    def _write_rebased(self, item: Item, parsed: Parsed, when: clock.Timestamp) -> None:
        item.points = points_from(parsed.result, parsed.probe, self.enrichment, when)
        item.lines = [p.line() for p in item.points]
        item.when_ns = when.time_ns
        item.parsed = parsed

    def release_known(self) -> None:
        """At start: quarantined results whose boot became known just before a crash."""
        for row in self.db.quarantined_with_known_boot():
            boot_ns = self.boots[(row.probe, row.boot_id)].boot_time_ns
            assert boot_ns is not None
            self._release(
                row,
                functools.partial(
                    rebased_at, boot_ns, row.received_ns, self.cfg.clock.max_future_s
                ),
            )

    def release_expired(self, now_ns: int) -> int:
        """Quarantined past ``quarantine_max_s``: written at an estimated time."""
        limit = now_ns - round(self.cfg.clock.quarantine_max_s * 1e9)
        rows = self.db.quarantined_before(limit)
        pending = self._pending_releases()
        for row in rows:
            if row.id not in pending:
                self._release(row, functools.partial(estimated_at, row.received_ns))
        return len(rows)

    def _pending_releases(self) -> set[int | None]:
        in_flight = self.writing[0].items if self.writing is not None else []
        return {i.release_id for i in [*self.items, *in_flight]}

    def _add(self, item: Item) -> None:
        if not self.items:
            self.started = time.monotonic()
        self.items.append(item)
        self.points += len(item.lines)
        self.messages += item.inbound is not None

    # -- output ------------------------------------------------------------------------------

    def due(self, now: float, window: int) -> bool:
        """Whether to flush: full, old, or holding half the broker's in-flight window (so it
        keeps sending while we write)."""
        if not self.items:
            return False
        return (
            self.points >= self.cfg.influxdb.batch_max_points
            or self.messages >= max(1, window // 2)
            or now - self.started >= self.cfg.influxdb.batch_max_latency_ms / 1000
        )

    def seal(self) -> Sealed:
        """Take the batch out of intake, ready to be written."""
        items = self.items
        self.items, self.points, self.messages = [], 0, 0
        lines: list[str] = []
        topics: list[str] = []
        for item in items:
            lines.extend(item.lines)
            topics.extend([item.topic] * len(item.lines))
        return Sealed(items, lines, topics)

    def start_flush(self, executor: Executor, on_done: Callable[[], object]) -> None:
        """Seal the batch and write it in the background; :meth:`finish_flush` completes it.
        One write at a time: the next batch fills meanwhile (the write mostly waits on
        InfluxDB), so parsing and writing overlap."""
        if self.writing is not None:
            raise RuntimeError("a write is already in flight")
        sealed = self.seal()
        future = executor.submit(self.storage.store, sealed.lines, sealed.topics)
        future.add_done_callback(lambda _f: on_done())
        self.writing = (sealed, future)

    def finish_flush(self, *, wait: bool) -> bool:
        """Commit the write in flight once it is done; False if it is still running.
        On failure the batch goes back in front of the intake (nothing was acknowledged)
        and the error is raised."""
        if self.writing is None:
            return True
        sealed, future = self.writing
        if not wait and not future.done():
            return False
        self.writing = None
        try:
            self._commit(sealed, future.result())
        except BaseException:
            self._requeue(sealed)
            raise
        return True

    def flush(self) -> None:
        """Synchronously: finish any write in flight, then write and commit the batch."""
        self.finish_flush(wait=True)
        if not self.items:
            return
        sealed = self.seal()
        try:
            self._commit(sealed, self.storage.store(sealed.lines, sealed.topics))
        except BaseException:
            self._requeue(sealed)
            raise

    def _requeue(self, sealed: Sealed) -> None:
        # Older than anything taken in since: back in front, so acks stay in arrival order.
        self.items = sealed.items + self.items
        self.points = sum(len(i.lines) for i in self.items)
        self.messages = sum(i.inbound is not None for i in self.items)
        self.started = time.monotonic()

    def _commit(self, sealed: Sealed, refused: list[tuple[int, WriteRejected]]) -> None:
        """After the points are stored: dead letters, quarantine and sequence state
        (fsynced), then the MQTT acks in arrival order, then a StoredAck per probe."""
        items, lines, topics = sealed.items, sealed.lines, sealed.topics
        now = time.time()
        letters = [i.letter for i in items if i.letter is not None]
        letters.extend(refused_letter(topics[i], lines[i], err, now) for i, err in refused)
        self.deadletters.add(letters)
        self.stats.add("points_rejected", len(refused))
        recent: dict[str, set[int]] = defaultdict(set)
        parked = {(q.probe, q.boot_id) for i in items if (q := i.quarantine) is not None}
        with self.db.transaction():
            self.db.quarantine(i.quarantine for i in items if i.quarantine is not None)
            self.db.release(i.release_id for i in items if i.release_id is not None)
            for item in items:
                if item.probe is not None and item.seq is not None:
                    if item.inbound is not None and self.book.handled(item.probe, item.seq):
                        self.stats.add("duplicates")
                    held = item.parsed.result.held_from_seq if item.parsed else None
                    self._settled(item.probe, self.book.mark(item.probe, item.seq, now, held))
                    recent[item.probe].add(item.seq)
                self._note_presence(item, now)
            self.db.save_probes(self.book.take_dirty())
            self.db.save_presence(self.presence.take_dirty())
            self.db.save_cardinality(self.guard.take_new())
        # Parked while their boot's time was being learnt (by a batch taken in meanwhile).
        pending = self._pending_releases() if parked else set()
        for key in parked:
            boot_ns = self.boots[key].boot_time_ns
            if boot_ns is not None:
                for row in self.db.quarantined_of(*key):
                    if row.id not in pending:
                        self._release(
                            row,
                            functools.partial(
                                rebased_at, boot_ns, row.received_ns, self.cfg.clock.max_future_s
                            ),
                        )
        # From here on nothing may raise: an ack sent twice could name another message.
        try:
            acked = sum(self.link.ack(i.inbound) for i in items if i.inbound is not None)
            self.stats.add("acked", acked)
            at = wire.utc_now()
            for probe, seqs in recent.items():
                for ack in self.book.stored_acks(probe, seqs, at):
                    self.link.publish(self.topics.channel(probe, "ack"), wire.encode(ack))
                    self.stats.add("stored_acks")
        except Exception:
            log.exception("acknowledging a stored batch failed; the broker will redeliver")
        for observer in self.observers:
            try:
                observer(items)
            except Exception:
                # Stored and acknowledged already: an observer's bug must not undo that.
                log.exception("a batch observer failed")
        log.debug("flushed %d messages, %d points", len(items), len(lines))

    def _note_presence(self, item: Item, now: float) -> None:
        """Presence and lag, for an item now durable."""
        if item.probe is None:
            return
        inbound = item.inbound
        received_s = inbound.received_ns / 1e9 if inbound is not None else now
        if item.status is not None:
            replayed = inbound is not None and inbound.retained
            self.presence.on_status(item.probe, item.status, received_s, replayed=replayed)
        elif item.parsed is not None and item.letter is None:
            if inbound is not None:  # a release from quarantine is no sign of life now
                self.presence.on_result(item.probe, item.parsed.result, item.when_ns, received_s)
            elif item.when_ns is not None:
                self.presence.on_result(item.probe, item.parsed.result, item.when_ns, 0.0)
            if item.when_ns is not None and inbound is not None:
                self.stats.observe("lag_s", max(0.0, now - item.when_ns / 1e9))

    def resend(self, budget: int) -> int:
        """Publish due ResendRequests (at most ``budget``); returns how many."""
        seq_cfg = self.cfg.sequences
        requests = self.book.due_resends(
            time.time(),
            grace_s=seq_cfg.resend_grace_s,
            interval_s=seq_cfg.resend_interval_s,
            max_attempts=seq_cfg.resend_max_attempts,
            budget=budget,
            at=wire.utc_now(),
        )
        for request in requests:
            self.link.publish(self.topics.channel(request.probe_id, "resend"), wire.encode(request))
        if requests:
            with self.db.transaction():
                self.db.save_probes(self.book.take_dirty())
        self.stats.add("resend_requests", len(requests))
        return len(requests)

    def _settled(self, probe: str, settled: Settled) -> None:
        """Seqs ``probe`` no longer holds that this collector never handled. In a share
        group the others handled most of them; alone, those never handled here are
        results the probe dropped (it counts them itself, in its health and status)."""
        if not settled.seqs:
            return
        self.stats.add("seqs_settled", settled.seqs)
        if not self.cfg.mqtt.share_group and settled.never_here:
            self.stats.add("seqs_lost", settled.never_here)
            log.warning(
                "probe %s no longer holds %d seq(s) never stored here: counted as lost",
                probe,
                settled.never_here,
            )
