"""Intake stage 2, identity and clock: whose seq a result is, which boot, and when it happened.

One call per result (:meth:`Identity.place`): the seq must be within reach of the probe's
book, a boot never seen is noted (a new boot restarting the seq resets the probe's book),
and the clock policy of :mod:`collector.clock` gives the time — or none, and the result
waits in the quarantine. A trusted result of a boot whose start is unknown teaches it.

Boots are kept in memory (:class:`Boots`); what is new is saved once per batch, by
:meth:`collector.statedb.StateDB.save_boots`, *before* the batch's points are written: a
point timed by a boot's start is never stored while that start could still be forgotten
(and re-learnt a little differently from another result after a crash).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from probefleet.collector import clock
from probefleet.collector.config import ClockSection
from probefleet.collector.errors import Rejected
from probefleet.collector.sequences import SequenceBook
from probefleet.collector.statedb import Boot
from probefleet.collector.stats import Stats
from probefleet.core import wire

log = logging.getLogger(__name__)
# Seqs count a probe's results: no life makes 2^32 between two we see. Taken, such a seq
# would open a gap of that size to ask for and count (gaps_open 1.8e16).
MAX_SEQ_JUMP: Final = 2**32

BootKey = tuple[str, str]  # (probe, boot_id)


class Boots:
    """Every (probe, boot) seen and its start once learnt; ``unsaved`` what the state
    database does not hold yet."""

    def __init__(self, known: dict[BootKey, Boot]) -> None:
        self.known = known
        self.unsaved: dict[BootKey, Boot] = {}

    def get(self, key: BootKey) -> Boot | None:
        return self.known.get(key)

    def note(self, key: BootKey, boot: Boot) -> None:
        self.known[key] = boot
        self.unsaved[key] = boot

    def start_ns(self, key: BootKey) -> int | None:
        boot = self.known.get(key)
        return boot.boot_time_ns if boot is not None else None


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a result stands in time. ``when`` None: quarantined until its boot's start is
    known. ``learnt_ns``: this result taught its boot's start (quarantined results of that
    boot can now be re-based)."""

    when: clock.Timestamp | None
    learnt_ns: int | None = None


class Identity:
    def __init__(self, cfg: ClockSection, book: SequenceBook, boots: Boots, stats: Stats) -> None:
        self.cfg = cfg
        self.book = book
        self.boots = boots
        self.stats = stats

    def beyond_reach(self, probe: str, seq: int) -> bool:
        state = self.book.states.get(probe)
        return seq > (state.max_seq if state is not None else 0) + MAX_SEQ_JUMP

    def place(self, probe: str, result: wire.Result, received_ns: int) -> Placed:
        """Rejected if the seq is out of reach; else the result's time (or quarantine)."""
        if self.beyond_reach(probe, result.seq):
            state = self.book.states.get(probe)
            known = state.max_seq if state is not None else 0
            raise Rejected(
                "seq", f"{result.seq} is {result.seq - known} beyond this probe's seq {known}"
            )
        key = (probe, result.boot_id)
        boot = self.boots.get(key)
        if boot is None:
            boot = self._new_boot(key, result.seq)
        return self._time(key, boot, result, received_ns)

    def _new_boot(self, key: BootKey, seq: int) -> Boot:
        probe = key[0]
        if self.book.handled(probe, seq):
            # A boot never seen before claims a seq already handled: the probe lost its
            # counter (new SD card?). Start its book afresh rather than acknowledge its new
            # results as stored before they are.
            log.warning("probe %s restarted its seq at %d on a new boot", probe, seq)
            self.stats.add("seq_resets")
            self.book.reset(probe)
        boot = Boot(seq)
        self.boots.note(key, boot)
        return boot

    def _time(self, key: BootKey, boot: Boot, result: wire.Result, received_ns: int) -> Placed:
        cfg = self.cfg
        if clock.trusted(result, received_ns, cfg.max_future_s):
            if boot.boot_time_ns is None:
                boot.boot_time_ns = clock.boot_time_ns(result)
                self.boots.note(key, boot)
                self.stats.add("boots_learnt")
                return Placed(clock.as_measured(result), boot.boot_time_ns)
            if clock.agrees(result, boot.boot_time_ns, cfg.step_tolerance_s):
                return Placed(clock.as_measured(result))
            # "Synced", yet its clock disagrees with the boot's known start: stepped.
            step_s = (clock.boot_time_ns(result) - boot.boot_time_ns) / 1e9
            self.stats.add("clock_steps")
            log.info(
                "probe %s seq %d: clock %+.1f s off its boot's start while synced; re-based",
                key[0],
                result.seq,
                step_s,
            )
        if boot.boot_time_ns is not None:
            return Placed(clock.rebased(result, boot.boot_time_ns, received_ns, cfg.max_future_s))
        return Placed(None)

    def rebased(self, boot_ns: int, received_ns: int, result: wire.Result) -> clock.Timestamp:
        """A quarantined result's time once its boot's start is known."""
        return clock.rebased(result, boot_ns, received_ns, self.cfg.max_future_s)
