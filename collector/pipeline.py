"""The collector's intake, no broker: a one-way chain each result passes once.

    decode (collector.decode)  ->  identity and clock (collector.identity)
      ->  points (collector.render)  ->  batch and commit (collector.commit)

:meth:`Pipeline.handle` runs a message through the first three stages into the batch: an
item with points, a dead letter or a quarantine row. :meth:`Pipeline.flush` makes the
batch durable in chunks of ``batch_max_points`` — new boots saved, points in InfluxDB or
the spool (refused points dead-lettered), then one transaction for quarantine, sequence
state and presence — and only then acknowledges the messages, in arrival order, and
publishes one StoredAck per probe concerned. If anything fails the chunk stays, nothing
of it is acknowledged, and the next flush tries again (rewrites are harmless: same points).

A result leaves the chain only to wait in the quarantine; when its boot's start is learnt
it comes back as a release (an item of its own) at the points stage.

The MQTT side is a :class:`Link` (``collector.mqtt.MqttLink``, or a fake in unit tests).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout

from probefleet.collector import clock
from probefleet.collector._batch import Item, Link, Sealed
from probefleet.collector.cardinality import CardinalityGuard
from probefleet.collector.commit import Batch, Committer
from probefleet.collector.config import CollectorConfig
from probefleet.collector.deadletter import DeadLetterStore
from probefleet.collector.decode import Status, claim, dead_letter, decode
from probefleet.collector.errors import Rejected, WriteRejected
from probefleet.collector.identity import Boots, Identity
from probefleet.collector.inventory import Enrichment
from probefleet.collector.mqtt import Inbound
from probefleet.collector.points import Parsed, parse
from probefleet.collector.presence import Presence
from probefleet.collector.render import Renderer
from probefleet.collector.sequences import SequenceBook
from probefleet.collector.statedb import Quarantined, StateDB
from probefleet.collector.stats import Stats
from probefleet.collector.writer import Storage
from probefleet.core import wire

log = logging.getLogger(__name__)

BootKey = tuple[str, str]


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
        self.boots = Boots(db.load_boots())
        self.presence = Presence(db.load_presence(), max_future_s=cfg.clock.max_future_s)
        self.guard = CardinalityGuard(db.load_cardinality(), cfg.cardinality)
        self.identity = Identity(cfg.clock, self.book, self.boots, stats)
        self.renderer = Renderer(enrichment, self.guard, stats)
        self.batch = Batch()
        self.committer = Committer(
            cfg, db=db, deadletters=deadletters, link=link, stats=stats, book=self.book,
            presence=self.presence, guard=self.guard,
        )  # fmt: skip
        self.writing: tuple[Sealed, Future[list[tuple[int, WriteRejected]]]] | None = None

    @property
    def observers(self) -> list[Callable[[Sequence[Item]], None]]:
        """Called with every committed batch's items, after the acks (alerting, rollups)."""
        return self.committer.observers

    # What the service reads of the batch.
    @property
    def items(self) -> list[Item]:
        return self.batch.items

    @property
    def points(self) -> int:
        return self.batch.points

    @property
    def messages(self) -> int:
        return self.batch.messages

    @property
    def started(self) -> float:
        return self.batch.started

    # -- intake ------------------------------------------------------------------------------

    def handle(self, message: Inbound) -> None:
        """Turn one message into a batch item; never raises for anything in the message."""
        self.stats.add("received")
        try:
            decoded = decode(message, self.topics)
            if isinstance(decoded, Status):
                self.stats.add("status_messages")
                item = Item(message.topic, message, decoded.probe, None, status=decoded.status)
            else:
                item = self._result(decoded, message)
        except Rejected as exc:
            item = self._rejected(message, exc)
        except Exception as exc:
            # A bug must not turn one message into a crash loop (it would be redelivered
            # forever): keep it as a dead letter for a developer instead.
            log.exception("internal error on %s", message.topic)
            item = self._rejected(message, Rejected("$", f"internal error: {exc!r}"))
        self.batch.add(item)

    def add_lines(self, topic: str, lines: list[str]) -> None:
        """The collector's own points (presence, self-metrics, alerts): written with the
        next batch, durably like any other; ``topic`` names them in a dead letter."""
        if lines:
            self.batch.add(Item(topic, None, None, None, lines=lines))

    def _result(self, parsed: Parsed, message: Inbound) -> Item:
        result = parsed.result
        placed = self.identity.place(parsed.probe, result, message.received_ns)
        item = Item(message.topic, message, parsed.probe, result.seq, parsed=parsed)
        if placed.when is None:
            self.renderer.check(parsed)
            item.quarantine = Quarantined(
                parsed.probe, result.boot_id, result.seq, message.topic, message.payload,
                message.received_ns,
            )  # fmt: skip
            self.stats.add("quarantined")
            return item
        self.renderer.render(item, parsed, placed.when)
        if placed.learnt_ns is not None:
            self._release_boot((parsed.probe, result.boot_id), placed.learnt_ns)
        return item

    def _rejected(self, message: Inbound, exc: Rejected) -> Item:
        probe, seq = claim(message, self.topics)
        if probe is not None and seq is not None and self.identity.beyond_reach(probe, seq):
            seq = None  # not counted as handled: it would open a giant gap all the same
        self.stats.add("rejected")
        log.info("rejected %s: %s", message.topic, exc)
        letter = dead_letter(message.topic, message.payload, message.received_ns, probe, exc)
        return Item(message.topic, message, probe, seq, letter=letter)

    # -- the quarantine ----------------------------------------------------------------------

    def _release_boot(self, key: BootKey, boot_ns: int) -> None:
        """A boot's start was just learnt: its unsynchronised results, in this batch and in
        the quarantine, are re-based."""
        for item in self.batch.items if key in self.batch.parked else ():
            q = item.quarantine
            if q is not None and (q.probe, q.boot_id) == key and item.parsed:
                item.quarantine = None
                when = self.identity.rebased(boot_ns, q.received_ns, item.parsed.result)
                self.renderer.render(item, item.parsed, when, admit=False)
                self.batch.points += len(item.lines)
        released = self.db.quarantined_of(*key)
        for row in released:
            self._release(row, self._rebased(boot_ns, row))
        if released:
            log.info("boot %s of %s: %d quarantined results re-based", key[1], key[0],
                     len(released))  # fmt: skip

    def _release(self, row: Quarantined, when: Callable[[wire.Result], clock.Timestamp]) -> None:
        """A quarantine row back into the batch, at the time ``when`` gives its result."""
        item = Item(row.topic, None, row.probe, row.seq, release_id=row.id)
        try:
            parsed = parse(row.topic, row.payload, self.topics)
            self.renderer.render(item, parsed, when(parsed.result), admit=False)
        except Rejected as exc:
            item.letter = dead_letter(row.topic, row.payload, row.received_ns, row.probe, exc)
        self.stats.add("released")
        self.batch.add(item)

    def _rebased(self, boot_ns: int, row: Quarantined) -> Callable[[wire.Result], clock.Timestamp]:
        return functools.partial(self.identity.rebased, boot_ns, row.received_ns)

    def release_known(self) -> None:
        """At start: quarantined results whose boot became known just before a crash."""
        for row in self.db.quarantined_with_known_boot():
            boot_ns = self.boots.start_ns((row.probe, row.boot_id))
            assert boot_ns is not None
            self._release(row, self._rebased(boot_ns, row))

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
        return {i.release_id for i in [*self.batch.items, *in_flight]}

    def _release_parked(self, sealed: Sealed) -> None:
        """Quarantined by a chunk written while a later batch learnt their boot's start:
        now in the quarantine table, so released from there."""
        parked = {(q.probe, q.boot_id) for i in sealed.items if (q := i.quarantine) is not None}
        if not parked:
            return
        pending = self._pending_releases()
        for key in parked:
            boot_ns = self.boots.start_ns(key)
            if boot_ns is None:
                continue
            for row in self.db.quarantined_of(*key):
                if row.id not in pending:
                    self._release(row, self._rebased(boot_ns, row))

    # -- output ------------------------------------------------------------------------------

    def due(self, now: float, window: int) -> bool:
        """Whether to flush: full, old, or holding half the broker's in-flight window (so it
        keeps sending while we write)."""
        batch = self.batch
        if not batch.items:
            return False
        return (
            batch.points >= self.cfg.influxdb.batch_max_points
            or batch.messages >= max(1, window // 2)
            or now - batch.started >= self.cfg.influxdb.batch_max_latency_ms / 1000
        )

    def seal(self) -> Sealed:
        """Take the oldest chunk (at most ``batch_max_points`` points) out of intake, ready
        to be written; the boots its times come from are saved first."""
        sealed = self.batch.take(self.cfg.influxdb.batch_max_points)
        if self.boots.unsaved:
            try:
                with self.db.transaction():
                    self.db.save_boots(self.boots.unsaved)
            except BaseException:
                self.batch.put_back(sealed)
                raise
            self.boots.unsaved = {}
        return sealed

    def start_flush(self, executor: Executor, on_done: Callable[[], object]) -> None:
        """Seal a chunk and write it in the background; :meth:`finish_flush` completes it.
        One write at a time: the next batch fills meanwhile (the write mostly waits on
        InfluxDB), so parsing and writing overlap."""
        if self.writing is not None:
            raise RuntimeError("a write is already in flight")
        sealed = self.seal()
        future = executor.submit(self.storage.store, sealed.lines, sealed.topics)
        future.add_done_callback(lambda _f: on_done())
        self.writing = (sealed, future)

    def finish_flush(self, *, wait: bool, timeout_s: float | None = None) -> bool:
        """Commit the write in flight once it is done; False if it is still running (after
        ``timeout_s`` when waiting). On failure the chunk goes back in front of the intake
        (nothing was acknowledged) and the error is raised."""
        if self.writing is None:
            return True
        sealed, future = self.writing
        if not wait and not future.done():
            return False
        try:
            refused = future.result(timeout=timeout_s)
        except FutureTimeout:
            return False
        except BaseException:
            self.writing = None
            self.batch.put_back(sealed)
            raise
        self.writing = None
        self._commit(sealed, refused)
        return True

    def flush(self, deadline_s: float | None = None) -> int:
        """Synchronously: finish the write in flight, then write and commit the batch, one
        chunk of ``batch_max_points`` after another. With ``deadline_s`` (seconds from now)
        no chunk is started that the last one's duration says would end past it: what is
        left stays in the batch, unacknowledged (the broker session delivers it again).
        Returns the messages left."""
        end = None if deadline_s is None else time.monotonic() + deadline_s
        if not self.finish_flush(wait=True, timeout_s=deadline_s):
            return self.batch.messages
        took = 0.0
        while self.batch.items:
            started = time.monotonic()
            if end is not None and started + took > end:
                log.warning(
                    "flush deadline: %d messages left unacknowledged for the broker to "
                    "deliver again", self.batch.messages,
                )  # fmt: skip
                break
            sealed = self.seal()
            try:
                refused = self.storage.store(sealed.lines, sealed.topics)
            except BaseException:
                self.batch.put_back(sealed)
                raise
            self._commit(sealed, refused)
            took = time.monotonic() - started
        return self.batch.messages

    def _commit(self, sealed: Sealed, refused: list[tuple[int, WriteRejected]]) -> None:
        try:
            self.committer.commit(sealed, refused)
        except BaseException:
            self.batch.put_back(sealed)
            raise
        self._release_parked(sealed)

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


def estimated_at(received_ns: int, result: wire.Result) -> clock.Timestamp:
    return clock.estimated(result, received_ns)
