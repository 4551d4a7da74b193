"""Per-probe sets of seqs already counted into the rollups, as sorted inclusive ranges.

A probe numbers its results 1, 2, 3 … for life, so what one collector counted is a few
ranges per probe. Capped at ``MAX_RANGES`` (a share group's collectors each see every n-th
seq): past it the lowest ranges are forgotten, and a seq below what is kept counts as new.
"""

from __future__ import annotations

import bisect
from typing import Final

MAX_RANGES: Final = 512


class SeqRanges:
    __slots__ = ("his", "los")

    def __init__(self, ranges: list[list[int]] | None = None) -> None:
        self.los: list[int] = [r[0] for r in ranges or []]
        self.his: list[int] = [r[1] for r in ranges or []]

    def __contains__(self, seq: int) -> bool:
        i = bisect.bisect_right(self.los, seq) - 1
        return i >= 0 and seq <= self.his[i]

    def add(self, seq: int) -> bool:
        """Add ``seq``; False if it was there already."""
        los, his = self.los, self.his
        i = bisect.bisect_right(los, seq) - 1
        if i >= 0 and seq <= his[i]:
            return False
        joins_left = i >= 0 and his[i] == seq - 1
        joins_right = i + 1 < len(los) and los[i + 1] == seq + 1
        if joins_left and joins_right:
            his[i] = his[i + 1]
            del los[i + 1], his[i + 1]
        elif joins_left:
            his[i] = seq
        elif joins_right:
            los[i + 1] = seq
        else:
            los.insert(i + 1, seq)
            his.insert(i + 1, seq)
            if len(los) > MAX_RANGES:
                del los[0], his[0]
        return True

    def update(self, other: SeqRanges) -> None:
        for lo, hi in zip(other.los, other.his, strict=True):
            for seq in range(lo, hi + 1):
                self.add(seq)

    def ranges(self) -> list[list[int]]:
        return [[lo, hi] for lo, hi in zip(self.los, self.his, strict=True)]
