"""Per-probe sequence bookkeeping: what is stored, what is missing, what to ask again (pure).

Every probe numbers its results 1, 2, 3 ... for life (across boots). For each probe the
collector keeps ``max_seq`` (highest handled) and the *gaps* below it (seqs never seen),
each with when it was noticed and how often it was asked for. Everything else up to
``max_seq`` is handled: written to InfluxDB, spooled, quarantined or dead-lettered — all
durable on the collector. Hence the :class:`agent.wire.StoredAck`: ``stored_through_seq`` is
just below the first gap; the stored runs between later gaps go in ``also_stored``.

It never claims what it did not store: a probe first seen at seq 1043 has a gap 1..1042,
asked for like any other. A gap asked ``max_attempts`` times without an answer is given up
(counted as lost) so that the watermark can pass it. State round-trips through JSON
(:meth:`ProbeSeqs.to_json`), kept in SQLite by :mod:`collector.statedb`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Final

from probefleet.core import wire

MAX_RANGES: Final = 64  # what StoredAck.also_stored and ResendRequest.ranges may carry
MAX_GAPS: Final = 1000  # per probe; beyond it the oldest gaps are given up


@dataclass(slots=True)
class Gap:
    first: int
    last: int
    noticed_at: float  # wall clock, seconds: survives restarts
    attempts: int = 0
    asked_at: float = 0.0

    def split(self, first: int, last: int) -> Gap:
        return Gap(first, last, self.noticed_at, self.attempts, self.asked_at)


@dataclass(slots=True)
class ProbeSeqs:
    max_seq: int = 0
    gaps: list[Gap] = field(default_factory=list)  # sorted, disjoint, all below max_seq

    @property
    def stored_through(self) -> int:
        return self.gaps[0].first - 1 if self.gaps else self.max_seq

    def mark(self, seq: int, now: float) -> list[Gap]:
        """Record ``seq`` as handled; returns gaps given up because of MAX_GAPS."""
        if seq > self.max_seq:
            if seq > self.max_seq + 1:
                self.gaps.append(Gap(self.max_seq + 1, seq - 1, now))
            self.max_seq = seq
            if len(self.gaps) > MAX_GAPS:
                dropped = self.gaps[: len(self.gaps) - MAX_GAPS]
                del self.gaps[: len(dropped)]
                return dropped
            return []
        for i, gap in enumerate(self.gaps):
            if gap.first <= seq <= gap.last:
                parts = []
                if gap.first < seq:
                    parts.append(gap.split(gap.first, seq - 1))
                if seq < gap.last:
                    parts.append(gap.split(seq + 1, gap.last))
                self.gaps[i : i + 1] = parts
                break
            if gap.first > seq:
                break
        return []

    def stored_ranges(self) -> list[tuple[int, int]]:
        """The stored runs above ``stored_through``, lowest first."""
        ranges: list[tuple[int, int]] = []
        for before, after in zip(self.gaps, [*self.gaps[1:], None], strict=False):
            end = after.first - 1 if after is not None else self.max_seq
            if before.last < end:
                ranges.append((before.last + 1, end))
        return ranges

    def also_stored(self, recent: set[int]) -> list[tuple[int, int]]:
        """At most MAX_RANGES stored runs for a StoredAck: those holding ``recent`` seqs
        first, then the highest ones (the probe still holds those and waits for them)."""
        ranges = self.stored_ranges()
        if len(ranges) <= MAX_RANGES:
            return ranges

        def priority(r: tuple[int, int]) -> tuple[bool, int]:
            return (not any(r[0] <= s <= r[1] for s in recent), -r[0])

        return sorted(sorted(ranges, key=priority)[:MAX_RANGES])

    def due(
        self, now: float, grace_s: float, interval_s: float, max_attempts: int
    ) -> tuple[list[tuple[int, int]], list[Gap]]:
        """Gaps to ask for now (marked as asked), and gaps given up (removed)."""
        ask: list[tuple[int, int]] = []
        given_up: list[Gap] = []
        kept: list[Gap] = []
        for gap in self.gaps:
            if now - gap.noticed_at < grace_s or now - gap.asked_at < interval_s:
                kept.append(gap)
            elif gap.attempts >= max_attempts:
                given_up.append(gap)
            elif len(ask) < MAX_RANGES:
                gap.attempts += 1
                gap.asked_at = now
                ask.append((gap.first, gap.last))
                kept.append(gap)
            else:
                kept.append(gap)
        self.gaps = kept
        return ask, given_up

    def to_json(self) -> str:
        return json.dumps(
            {
                "max_seq": self.max_seq,
                "gaps": [
                    [g.first, g.last, g.noticed_at, g.attempts, g.asked_at] for g in self.gaps
                ],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ProbeSeqs:
        doc = json.loads(text)
        gaps = [Gap(int(a), int(b), float(c), int(d), float(e)) for a, b, c, d, e in doc["gaps"]]
        return cls(int(doc["max_seq"]), gaps)


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
        """Whether ``seq`` was already handled (not above max_seq, not in a gap)."""
        state = self.states.get(probe)
        if state is None or seq > state.max_seq:
            return False
        return not any(g.first <= seq <= g.last for g in state.gaps)

    def reset(self, probe: str) -> None:
        self.states[probe] = ProbeSeqs()
        self.dirty.add(probe)

    def mark(self, probe: str, seq: int, now: float) -> list[Gap]:
        self.dirty.add(probe)
        return self.get(probe).mark(seq, now)

    def take_dirty(self) -> dict[str, ProbeSeqs]:
        out = {probe: self.states[probe] for probe in self.dirty}
        self.dirty = set()
        return out

    def stored_ack(self, probe: str, recent: set[int], at: dt.datetime) -> wire.StoredAck:
        state = self.get(probe)
        return wire.StoredAck(
            schema=1,
            probe_id=probe,
            stored_through_seq=state.stored_through,
            also_stored=state.also_stored(recent),
            at=at,
        )

    def due_resends(
        self,
        now: float,
        *,
        grace_s: float,
        interval_s: float,
        max_attempts: int,
        budget: int,
        at: dt.datetime,
    ) -> tuple[list[wire.ResendRequest], list[tuple[str, Gap]]]:
        """At most ``budget`` requests (the probes waiting longest first), and the gaps given
        up on. Asked and given-up gaps mark their probe dirty."""
        requests: list[wire.ResendRequest] = []
        given_up: list[tuple[str, Gap]] = []
        waiting = [
            (min(g.asked_at for g in st.gaps), p) for p, st in self.states.items() if st.gaps
        ]
        for _, probe in sorted(waiting):
            if len(requests) >= budget:
                break
            ask, dropped = self.states[probe].due(now, grace_s, interval_s, max_attempts)
            if ask or dropped:
                self.dirty.add(probe)
            given_up.extend((probe, g) for g in dropped)
            if ask:
                requests.append(wire.ResendRequest(schema=1, probe_id=probe, ranges=ask, at=at))
        return requests, given_up
