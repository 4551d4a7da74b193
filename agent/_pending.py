"""What delivery waits on, in memory: seqs due to go out again, sent seqs awaiting their
PUBACK, PUBACKed seqs awaiting their StoredAck. Pure: time is passed in."""

from __future__ import annotations

import heapq
from collections.abc import Callable


class RetryQueue:
    """Seqs to publish again, each queued once; due ones come out lowest seq first::

    retry.push(7, not_before=now + 30)   # refused: again in 30 s
    retry.release(now); retry.pop()      # -> 7 once its time has come, else None
    """

    def __init__(self) -> None:
        self._due: list[int] = []  # heap
        self._later: list[tuple[float, int]] = []  # heap of (not before, seq)
        self._queued: set[int] = set()  # in either heap

    def push(self, seq: int, not_before: float | None = None) -> None:
        """Queue ``seq``, due now or from ``not_before``; a seq already queued keeps its place."""
        if seq in self._queued:
            return
        self._queued.add(seq)
        if not_before is None:
            heapq.heappush(self._due, seq)
        else:
            heapq.heappush(self._later, (not_before, seq))

    def release(self, now: float) -> None:
        """Make due every seq whose not-before time has come."""
        while self._later and self._later[0][0] <= now:
            _, seq = heapq.heappop(self._later)
            heapq.heappush(self._due, seq)

    def pop(self) -> int | None:
        """The lowest due seq, taken off the queue; None when nothing is due."""
        if not self._due:
            return None
        seq = heapq.heappop(self._due)
        self._queued.discard(seq)
        return seq

    def clear(self) -> None:
        self._due, self._later, self._queued = [], [], set()


class InFlight:
    """Sent seqs awaiting their PUBACK, by message id; given up after ``timeout_s``."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._sent: dict[int, tuple[int, float]] = {}  # mid -> (seq, sent at)

    def __len__(self) -> int:
        return len(self._sent)

    def add(self, mid: int, seq: int, now: float) -> None:
        self._sent[mid] = (seq, now)

    def pop(self, mid: int) -> int | None:
        """The seq message ``mid`` carried, forgotten; None if it is not ours (any more)."""
        sent = self._sent.pop(mid, None)
        return None if sent is None else sent[0]

    def expire(self, now: float) -> list[int]:
        """Take out and return the seqs whose PUBACK is overdue (a message the client lost)."""
        late = [mid for mid, (_, sent) in self._sent.items() if now - sent > self.timeout_s]
        return [self._sent.pop(mid)[0] for mid in late]

    def forget(self, covered: Callable[[int], bool]) -> None:
        for mid in [m for m, (s, _) in self._sent.items() if covered(s)]:
            del self._sent[mid]

    def clear(self) -> None:
        self._sent = {}


class Unconfirmed:
    """PUBACKed seqs awaiting a StoredAck, oldest PUBACK first, and how long they may wait.

    The wait is ``timeout_s``; it doubles (up to ``max_timeout_s``) each time seqs expire
    again with no StoredAck in between -- the collector is away: do not refill the broker's
    queue every few minutes -- and is back to ``timeout_s`` at the next StoredAck."""

    def __init__(self, timeout_s: float, max_timeout_s: float) -> None:
        self.base_s = timeout_s
        self.timeout_s = timeout_s
        self.max_timeout_s = max_timeout_s
        self._since: dict[int, float] = {}  # seq -> PUBACK time; insertion = PUBACK order
        self._acked_since_expiry = True

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, seq: int) -> bool:
        return seq in self._since

    def add(self, seq: int, now: float) -> None:
        self._since[seq] = now

    def discard(self, seq: int) -> None:
        self._since.pop(seq, None)

    def expire(self, now: float) -> list[int]:
        """Take out and return, oldest first, the seqs that waited over ``timeout_s``."""
        expired = []
        for seq, acked in self._since.items():
            if now - acked <= self.timeout_s:
                break  # the rest are younger
            expired.append(seq)
        if expired:
            if not self._acked_since_expiry:
                self.timeout_s = min(self.timeout_s * 2, self.max_timeout_s)
            self._acked_since_expiry = False
            for seq in expired:
                del self._since[seq]
        return expired

    def acked(self, covered: Callable[[int], bool]) -> None:
        """A StoredAck came: forget the seqs it ``covered``; the wait is ``timeout_s`` again."""
        for seq in [s for s in self._since if covered(s)]:
            del self._since[seq]
        self._acked_since_expiry = True
        self.timeout_s = self.base_s

    def clear(self) -> None:
        self._since = {}
