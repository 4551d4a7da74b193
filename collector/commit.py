"""Intake stage 4, batch and commit: items wait in arrival order, are written in chunks of
at most ``batch_max_points``, and once stored their state is committed in one transaction
before anything is acknowledged.

:class:`Batch` holds the items; :class:`Committer` does what follows a write: dead letters,
then ONE transaction for the quarantine, releases, sequence state, presence and the
cardinality guard's new entries (whatever the number of probes in the batch), then the
MQTT acks in arrival order, then one StoredAck per probe of the batch.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from probefleet.collector._batch import Item, Link, Sealed
from probefleet.collector.cardinality import CardinalityGuard
from probefleet.collector.config import CollectorConfig
from probefleet.collector.deadletter import DeadLetterStore
from probefleet.collector.errors import WriteRejected
from probefleet.collector.presence import Presence
from probefleet.collector.sequences import SequenceBook, Settled
from probefleet.collector.statedb import StateDB
from probefleet.collector.stats import Stats
from probefleet.collector.writer import refused_letter
from probefleet.core import wire

log = logging.getLogger(__name__)


class Batch:
    """Items taken in and not yet written, oldest first."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.points = 0
        self.messages = 0  # items that came from the broker (each to be acknowledged)
        self.started = 0.0  # monotonic time of the oldest item
        # (probe, boot) of the quarantined items held (a superset): learning a boot's start
        # looks through the batch only when it holds some of that boot's results.
        self.parked: set[tuple[str, str]] = set()

    def add(self, item: Item) -> None:
        if not self.items:
            self.started = time.monotonic()
        if (q := item.quarantine) is not None:
            self.parked.add((q.probe, q.boot_id))
        self.items.append(item)
        self.points += len(item.lines)
        self.messages += item.inbound is not None

    def take(self, max_points: int) -> Sealed:
        """The oldest items holding at most ``max_points`` lines (at least one item): one
        write request, however large the backlog."""
        total = count = 0
        for item in self.items:
            if count and total + len(item.lines) > max_points:
                break
            total += len(item.lines)
            count += 1
        taken, self.items = self.items[:count], self.items[count:]
        if not self.items:
            self.parked = set()
        self.points -= total
        self.messages -= sum(i.inbound is not None for i in taken)
        lines: list[str] = []
        topics: list[str] = []
        for item in taken:
            lines.extend(item.lines)
            topics.extend([item.topic] * len(item.lines))
        return Sealed(taken, lines, topics)

    def put_back(self, sealed: Sealed) -> None:
        """A batch that failed: older than anything taken in since, so back in front (acks
        stay in arrival order)."""
        self.items = sealed.items + self.items
        self.parked.update((q.probe, q.boot_id) for i in sealed.items if (q := i.quarantine))
        self.points += len(sealed.lines)
        self.messages += sum(i.inbound is not None for i in sealed.items)
        self.started = time.monotonic()


class Committer:
    """What follows a batch's write, in the order that keeps zero loss."""

    def __init__(
        self,
        cfg: CollectorConfig,
        *,
        db: StateDB,
        deadletters: DeadLetterStore,
        link: Link,
        stats: Stats,
        book: SequenceBook,
        presence: Presence,
        guard: CardinalityGuard,
    ) -> None:
        self.cfg = cfg
        self.topics = wire.Topics(cfg.mqtt.topic_root)
        self.db = db
        self.deadletters = deadletters
        self.link = link
        self.stats = stats
        self.book = book
        self.presence = presence
        self.guard = guard
        # Called with every committed batch's items, after the acks (alerting).
        self.observers: list[Callable[[Sequence[Item]], None]] = []

    def commit(self, sealed: Sealed, refused: list[tuple[int, WriteRejected]]) -> None:
        """After the points are stored: dead letters, then one fsynced transaction, then
        the MQTT acks in arrival order and a StoredAck per probe. Raises only before the
        first ack (nothing acknowledged: the batch may be retried)."""
        items, lines, topics = sealed.items, sealed.lines, sealed.topics
        now = time.time()
        letters = [i.letter for i in items if i.letter is not None]
        letters.extend(refused_letter(topics[i], lines[i], err, now) for i, err in refused)
        self.deadletters.add(letters)
        self.stats.add("points_rejected", len(refused))
        recent = self._mark(items, now)
        with self.db.transaction():
            self.db.quarantine(i.quarantine for i in items if i.quarantine is not None)
            self.db.release(i.release_id for i in items if i.release_id is not None)
            self.db.save_probes(self.book.take_dirty())
            self.db.save_presence(self.presence.take_dirty())
            self.db.save_cardinality(self.guard.take_new())
        # From here on nothing may raise: an ack sent twice could name another message.
        self._acknowledge(items, recent)
        for observer in self.observers:
            try:
                observer(items)
            except Exception:
                # Stored and acknowledged already: an observer's bug must not undo that.
                log.exception("a batch observer failed")
        log.debug("flushed %d messages, %d points", len(items), len(lines))

    def _mark(self, items: list[Item], now: float) -> dict[str, set[int]]:
        """Seqs handled and presence, in memory; saved by the transaction that follows
        (on failure the batch is retried: marking again is harmless)."""
        recent: dict[str, set[int]] = defaultdict(set)
        lags: list[float] = []
        duplicates = 0
        book = self.book
        for item in items:
            probe, seq = item.probe, item.seq
            if probe is not None and seq is not None:
                if item.inbound is not None and book.handled(probe, seq):
                    duplicates += 1
                held = item.parsed.result.held_from_seq if item.parsed else None
                self._settled(probe, book.mark(probe, seq, now, held))
                recent[probe].add(seq)
            if probe is not None:
                self._note_presence(item, probe, now, lags)
        self.stats.observe_all("lag_s", lags)
        if duplicates:
            self.stats.add("duplicates", duplicates)
        return recent

    def _acknowledge(self, items: list[Item], recent: dict[str, set[int]]) -> None:
        try:
            acked = sum(self.link.ack(i.inbound) for i in items if i.inbound is not None)
            self.stats.add("acked", acked)
            at = wire.utc_now()
            sent = 0
            for probe, seqs in recent.items():
                for ack in self.book.stored_acks(probe, seqs, at):
                    # QoS 0: a StoredAck is cumulative and idempotent (the next one, or the
                    # one a re-sent result draws, says it again), and a connected probe gets
                    # it over TCP. At QoS 1 every ack waited in paho's queue for one of the
                    # broker's 20 in-flight slots (max_inflight_messages, which it announces
                    # as Receive Maximum): at 10,000 probes 273,254 were sent, 7,455 arrived,
                    # the rest held in memory (bench/bench_fleet.py).
                    self.link.publish(self.topics.channel(probe, "ack"), wire.encode(ack), qos=0)
                    sent += 1
            self.stats.add("stored_acks", sent)
        except Exception:
            log.exception("acknowledging a stored batch failed; the broker will redeliver")

    def _note_presence(self, item: Item, probe: str, now: float, lags: list[float]) -> None:
        """Presence and lag, for an item now durable."""
        inbound = item.inbound
        received_s = inbound.received_ns / 1e9 if inbound is not None else now
        if item.status is not None:
            replayed = inbound is not None and inbound.retained
            self.presence.on_status(probe, item.status, received_s, replayed=replayed)
        elif item.parsed is not None and item.letter is None:
            if inbound is not None:  # a release from quarantine is no sign of life now
                self.presence.on_result(probe, item.parsed.result, item.when_ns, received_s)
            elif item.when_ns is not None:
                self.presence.on_result(probe, item.parsed.result, item.when_ns, 0.0)
            if item.when_ns is not None and inbound is not None:
                lags.append(max(0.0, now - item.when_ns / 1e9))

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
