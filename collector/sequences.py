"""Per-probe sequence bookkeeping: what *this collector* handled, what it has not seen, what
to ask again (pure).

Every probe numbers its results 1, 2, 3 ... for life (across boots). For each probe this
collector keeps ``max_seq`` (highest handled) and the *gaps* below it: seqs it has not
handled, each with when it was noticed and how often it was asked for. Everything else up
to ``max_seq`` is handled: written to InfluxDB, spooled, quarantined or dead-lettered —
all durable on this collector. A :class:`probefleet.core.wire.StoredAck` names only such
seqs: ``stored_through_seq`` is the highest seq with every seq up to it handled here, and
``also_stored`` the handled runs above it.

A gap is not a loss: in a share group the other collectors handle most of them. It closes
when the seq arrives, or when the probe says it no longer holds it (``held_from_seq`` on
every result it publishes: every seq below was confirmed stored by *some* collector, or
dropped and counted by the probe itself). Such a gap is *settled*: it leaves the book, and
from then on the watermark stops below it for good (``unheld_from``) — this collector never
claims a seq it did not handle. No gap is ever given up while the probe may hold it: past
``resend_max_attempts`` it is no longer asked for, and waits. Past MAX_GAPS the two gaps
closest together become one, forgetting the few handled seqs between them; a result the
probe then sends again is handled again (idempotent) — costs a resend, never a loss.

State round-trips through JSON (:meth:`ProbeSeqs.to_json`), kept in SQLite by
:mod:`probefleet.collector.statedb`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Final

from probefleet.core import wire

MAX_RANGES: Final = 64  # what StoredAck.also_stored and ResendRequest.ranges may carry
MAX_GAPS: Final = 1000  # per probe; beyond it the closest two gaps are merged
MAX_ACKS: Final = 16  # StoredAcks per probe per batch (16 x 64 runs of just-stored seqs)


@dataclass(slots=True)
class Gap:
    first: int
    last: int
    noticed_at: float  # wall clock, seconds: survives restarts
    attempts: int = 0
    asked_at: float = 0.0
    merged: bool = False  # two gaps made one: seqs handled here lie inside

    def split(self, first: int, last: int) -> Gap:
        return Gap(first, last, self.noticed_at, self.attempts, self.asked_at, self.merged)


@dataclass(frozen=True, slots=True)
class Settled:
    """What a probe's ``held_from_seq`` settled: ``seqs`` left the book unhandled here;
    ``never_here`` of them were never handled here either (not inside a merged gap). With
    one collector those are exactly the results the probe dropped."""

    seqs: int = 0
    never_here: int = 0


@dataclass(slots=True)
class ProbeSeqs:
    max_seq: int = 0
    gaps: list[Gap] = field(default_factory=list)  # sorted, disjoint, in [floor, max_seq)
    # The probe holds nothing below this (the highest held_from_seq it sent).
    floor: int = 0
    # The lowest seq settled without being handled here: no watermark passes it.
    unheld_from: int | None = None

    @property
    def stored_through(self) -> int:
        through = self.gaps[0].first - 1 if self.gaps else self.max_seq
        if self.unheld_from is not None:
            through = min(through, self.unheld_from - 1)
        return through

    def mark(self, seq: int, now: float, held_from: int | None = None) -> Settled:
        """Record ``seq`` as handled, and the probe's word that it holds nothing below
        ``held_from``; returns what that settled."""
        if held_from is not None and self.max_seq == 0 and not self.gaps:
            # First sight of this probe (or its book was reset): what it no longer holds
            # was never ours to ask for, nor to claim.
            self.floor = held_from
            if held_from > 1:
                self.unheld_from = 1
        if seq > self.max_seq:
            first = max(self.max_seq + 1, self.floor)
            if seq > first:
                self.gaps.append(Gap(first, seq - 1, now))
            self.max_seq = seq
            if len(self.gaps) > MAX_GAPS:
                self._merge_closest()
        else:
            self._close(seq)
        return self.settle(held_from) if held_from is not None else Settled()

    def _close(self, seq: int) -> None:
        for i, gap in enumerate(self.gaps):
            if gap.first <= seq <= gap.last:
                parts = []
                if gap.first < seq:
                    parts.append(gap.split(gap.first, seq - 1))
                if seq < gap.last:
                    parts.append(gap.split(seq + 1, gap.last))
                self.gaps[i : i + 1] = parts
                return
            if gap.first > seq:
                return

    def settle(self, held_from: int) -> Settled:
        """The probe holds nothing below ``held_from``: gaps there leave the book."""
        if held_from <= self.floor:
            return Settled()
        self.floor = held_from
        seqs = never_here = 0
        while self.gaps and self.gaps[0].first < held_from:
            gap = self.gaps[0]
            end = min(gap.last, held_from - 1)
            seqs += end - gap.first + 1
            if not gap.merged:
                never_here += end - gap.first + 1
            if self.unheld_from is None:
                self.unheld_from = gap.first
            if end == gap.last:
                del self.gaps[0]
            else:
                gap.first = held_from
        return Settled(seqs, never_here)

    def _merge_closest(self) -> None:
        """Two gaps become one where the fewest handled seqs lie between them."""
        while len(self.gaps) > MAX_GAPS:
            i = min(
                range(len(self.gaps) - 1),
                key=lambda k: self.gaps[k + 1].first - self.gaps[k].last,
            )
            a, b = self.gaps[i], self.gaps[i + 1]
            merged = Gap(
                a.first,
                b.last,
                min(a.noticed_at, b.noticed_at),
                min(a.attempts, b.attempts),
                min(a.asked_at, b.asked_at),
                merged=True,
            )
            self.gaps[i : i + 2] = [merged]

    def stored_ranges(self) -> list[tuple[int, int]]:
        """The handled runs above ``stored_through``, lowest first. Below ``floor`` nothing
        is named once a seq there settled unhandled: the probe holds none of them."""
        through = self.stored_through
        start = through + 1 if self.unheld_from is None else max(through + 1, self.floor)
        ranges: list[tuple[int, int]] = []
        for gap in self.gaps:
            if gap.first > start:
                ranges.append((start, gap.first - 1))
            start = max(start, gap.last + 1)
        if start <= self.max_seq:
            ranges.append((start, self.max_seq))
        return ranges

    def also_stored(self, recent: set[int]) -> list[list[tuple[int, int]]]:
        """The ``also_stored`` of each StoredAck to send: one list of at most MAX_RANGES
        runs when they fit; else the runs holding ``recent`` seqs (the probe waits for
        those) in as many acks as they need, up to MAX_ACKS, then the highest runs."""
        ranges = self.stored_ranges()
        if len(ranges) <= MAX_RANGES:
            return [ranges]

        just = sorted(recent)

        def priority(r: tuple[int, int]) -> tuple[bool, int]:
            i = bisect.bisect_left(just, r[0])  # the first recent seq at or above the run
            return (not (i < len(just) and just[i] <= r[1]), -r[0])

        wanted = sorted(ranges, key=priority)
        holding = sum(1 for r in wanted if not priority(r)[0])
        count = min(MAX_ACKS * MAX_RANGES, max(MAX_RANGES, holding))
        chosen = sorted(wanted[:count])
        return [chosen[i : i + MAX_RANGES] for i in range(0, len(chosen), MAX_RANGES)]

    def due(
        self, now: float, grace_s: float, interval_s: float, max_attempts: int
    ) -> list[tuple[int, int]]:
        """Gaps to ask for now (marked as asked). One asked ``max_attempts`` times is left
        to wait: the probe re-sends what it holds by itself, and says what it no longer
        holds with every result."""
        ask: list[tuple[int, int]] = []
        for gap in self.gaps:
            if len(ask) >= MAX_RANGES:
                break
            if now - gap.noticed_at < grace_s or now - gap.asked_at < interval_s:
                continue
            if gap.attempts >= max_attempts:
                continue
            gap.attempts += 1
            gap.asked_at = now
            ask.append((gap.first, gap.last))
        return ask

    def to_json(self) -> str:
        return json.dumps(
            {
                "max_seq": self.max_seq,
                "gaps": [
                    [g.first, g.last, g.noticed_at, g.attempts, g.asked_at, g.merged]
                    for g in self.gaps
                ],
                "floor": self.floor,
                "unheld_from": self.unheld_from,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ProbeSeqs:
        doc = json.loads(text)
        gaps = [
            Gap(int(g[0]), int(g[1]), float(g[2]), int(g[3]), float(g[4]), bool(g[5:6] == [True]))
            for g in doc["gaps"]
        ]
        unheld = doc.get("unheld_from")
        return cls(
            int(doc["max_seq"]),
            gaps,
            int(doc.get("floor", 0)),
            None if unheld is None else int(unheld),
        )


class SequenceBook:
    """Every probe's :class:`ProbeSeqs`, which changed since the last save, and the
    StoredAck / ResendRequest messages they call for."""

    def __init__(self, states: dict[str, ProbeSeqs] | None = None) -> None:
        self.states: dict[str, ProbeSeqs] = states or {}
        self.dirty: set[str] = set()

    def get(self, probe: str) -> ProbeSeqs:
        state = self.states.get(probe)
        if state is None:
            state = self.states[probe] = ProbeSeqs()
        return state

    def handled(self, probe: str, seq: int) -> bool:
        """Whether ``seq`` is done with: handled here, or settled (not above max_seq, not
        in a gap)."""
        state = self.states.get(probe)
        if state is None or seq > state.max_seq:
            return False
        return not any(g.first <= seq <= g.last for g in state.gaps)

    def reset(self, probe: str) -> None:
        self.states[probe] = ProbeSeqs()
        self.dirty.add(probe)

    def mark(self, probe: str, seq: int, now: float, held_from: int | None = None) -> Settled:
        """See :meth:`ProbeSeqs.mark`; ``held_from`` above ``seq`` is taken as ``seq`` (the
        result itself is held: a probe cannot truthfully say more)."""
        self.dirty.add(probe)
        if held_from is not None:
            held_from = min(held_from, seq)
        return self.get(probe).mark(seq, now, held_from)

    def gaps_open(self) -> int:
        return sum(g.last - g.first + 1 for st in self.states.values() for g in st.gaps)

    def take_dirty(self) -> dict[str, ProbeSeqs]:
        out = {probe: self.states[probe] for probe in self.dirty}
        self.dirty = set()
        return out

    def stored_acks(self, probe: str, recent: set[int], at: dt.datetime) -> list[wire.StoredAck]:
        """The StoredAck(s) for ``probe`` after a batch that handled ``recent``."""
        state = self.get(probe)
        return [
            wire.StoredAck(
                schema=1,
                probe_id=probe,
                stored_through_seq=state.stored_through,
                also_stored=ranges,
                at=at,
            )
            for ranges in state.also_stored(recent)
        ]

    def due_resends(
        self,
        now: float,
        *,
        grace_s: float,
        interval_s: float,
        max_attempts: int,
        budget: int,
        at: dt.datetime,
    ) -> list[wire.ResendRequest]:
        """At most ``budget`` requests (the probes waiting longest first). Asked gaps mark
        their probe dirty."""
        requests: list[wire.ResendRequest] = []
        waiting = [
            (min(g.asked_at for g in st.gaps), p) for p, st in self.states.items() if st.gaps
        ]
        for _, probe in sorted(waiting):
            if len(requests) >= budget:
                break
            ask = self.states[probe].due(now, grace_s, interval_s, max_attempts)
            if ask:
                self.dirty.add(probe)
                requests.append(wire.ResendRequest(schema=1, probe_id=probe, ranges=ask, at=at))
        return requests
