"""One rollup bucket (a raw series over one UTC hour) and the pure fold of raw points into
buckets: the live feeder, ``rollup rebuild`` and the benches all use it. Usage::

    buckets = Buckets(targets)          # targets: TargetsFile | None (download bands)
    buckets.add(point)                  # a raw Point, as the collector wrote it
    lines = [b.line(time_ns) for b in buckets.values()]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from probefleet.collector import rollups_hist as _hist
from probefleet.collector.inventory import TargetsFile
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.collector.rollups_spec import BANDS, HOUR_NS, SPECS, band_of, rollup_of

Key = tuple[str, tuple[tuple[str, str], ...], int]  # rollup measurement, tags, hour start ns
_NUMBER: Final = (int, float)


_PLANS: dict[int, list[tuple[str, str, str, str]]] = {}


def _plan(spec: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """(field, how, its count's key, its sum's key) for each field of ``spec`` (cached)."""
    found = _PLANS.get(id(spec))
    if found is None:
        found = _PLANS[id(spec)] = [(n, h, f"{n}_n", f"{n}_sum") for n, h in spec.items()]
    return found


@dataclass(slots=True)
class Bucket:
    """Running aggregates of one rollup point. Every figure is a count, a sum, a min or a
    max, so two buckets of one hour merge exactly (:meth:`merge`)."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    hour_ns: int
    n: int = 0
    counts: dict[str, float] = field(default_factory=dict)  # F_n, F_sum, derived counts
    lows: dict[str, float] = field(default_factory=dict)
    highs: dict[str, float] = field(default_factory=dict)
    bins: dict[str, dict[int, int]] = field(default_factory=dict)
    target_mbps: float | None = None

    def _count(self, key: str, value: float = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + value

    def add(self, point: Point, spec: Mapping[str, str], target_mbps: float | None) -> None:
        self.n += 1
        fields = dict(point.fields)
        counts = self.counts
        if fields.get("clock_synced") is False:
            counts["unsynced_n"] = counts.get("unsynced_n", 0) + 1
        for name, how, key_n, key_sum in _plan(spec):
            value = fields.get(name)
            if value is None or value.__class__ is str:
                continue
            number = float(value)
            if math.isnan(number):
                continue
            counts[key_n] = counts.get(key_n, 0) + 1
            if how == "count":
                continue
            counts[key_sum] = counts.get(key_sum, 0) + number
            if how == "sum":
                continue
            low, high = self.lows.get(name), self.highs.get(name)
            self.lows[name] = number if low is None else min(low, number)
            self.highs[name] = number if high is None else max(high, number)
            if how == "hist":
                _hist.add(self.bins.setdefault(name, {}), number)
        if point.measurement == "throughput":
            self._throughput(fields, target_mbps)

    def _throughput(self, fields: dict[str, FieldValue], target_mbps: float | None) -> None:
        cross = fields.get("detail_cross_traffic_bytes_per_s")
        limit = fields.get("detail_max_cross_traffic_bytes_per_s")
        if isinstance(cross, _NUMBER) and isinstance(limit, _NUMBER) and cross > limit:
            self._count("skip_cross_n")
        down = fields.get("download_mbps")
        if target_mbps and isinstance(down, _NUMBER) and not isinstance(down, bool):
            self.target_mbps = target_mbps
            self._count(f"download_band{band_of(float(down), target_mbps)}_n")

    def merge(self, other: Bucket) -> None:
        self.n += other.n
        for key, value in other.counts.items():
            self._count(key, value)
        for key, value in other.lows.items():
            self.lows[key] = min(self.lows.get(key, value), value)
        for key, value in other.highs.items():
            self.highs[key] = max(self.highs.get(key, value), value)
        for key, bins in other.bins.items():
            mine = self.bins.setdefault(key, {})
            for i, c in bins.items():
                mine[i] = mine.get(i, 0) + c
        self.target_mbps = other.target_mbps or self.target_mbps

    def fields(self) -> dict[str, FieldValue]:
        out: dict[str, FieldValue] = {"n": self.n, "hour_utc": self.hour_ns // HOUR_NS % 24}
        for key, value in self.counts.items():
            out[key] = value if key.endswith("_sum") else int(value)
        for key, value in self.lows.items():
            out[f"{key}_min"] = value
        for key, value in self.highs.items():
            out[f"{key}_max"] = value
        for key, bins in self.bins.items():
            out[f"{key}_hist"] = _hist.encode(bins)
        if self.target_mbps is not None:
            out["download_target_mbps"] = float(self.target_mbps)
        return out

    @classmethod
    def from_fields(
        cls,
        measurement: str,
        tags: tuple[tuple[str, str], ...],
        hour_ns: int,
        fields: Mapping[str, object],
    ) -> Bucket:
        """A bucket back from a stored rollup point's fields (as :meth:`fields` wrote)."""
        bucket = cls(measurement, tags, hour_ns)
        for key, value in fields.items():
            if value is None or key == "hour_utc":
                continue
            if key.endswith("_hist") and isinstance(value, str):
                bucket.bins[key[:-5]] = _hist.decode(value)
            elif not isinstance(value, int | float) or isinstance(value, bool):
                continue
            elif key == "n":
                bucket.n = int(value)
            elif key == "download_target_mbps":
                bucket.target_mbps = float(value)
            elif key.endswith("_min"):
                bucket.lows[key[:-4]] = float(value)
            elif key.endswith("_max"):
                bucket.highs[key[:-4]] = float(value)
            else:
                bucket.counts[key] = float(value)
        return bucket

    def line(self, time_ns: int | None = None) -> str:
        """The rollup point's line; ``time_ns`` (default the hour's start) must lie in the
        hour: the feeder writes each flush's part at its own nanosecond of the hour."""
        at = self.hour_ns if time_ns is None else time_ns
        if not self.hour_ns <= at < self.hour_ns + HOUR_NS:
            raise ValueError(f"{at} is outside the bucket's hour {self.hour_ns}")
        return Point(self.measurement, self.tags, tuple(self.fields().items()), at).line()


_SERIES: dict[tuple[str, tuple[tuple[str, str], ...], str], tuple[str, tuple[tuple[str, str], ...]]]
_SERIES = {}  # (measurement, tags, time source) -> the rollup's measurement and tags
_SERIES_MAX: Final = 200_000


def key_of(point: Point) -> Key | None:
    """The bucket of a raw point, or None when its measurement is not rolled up."""
    if point.measurement not in SPECS:
        return None
    source = point.field("time_source")
    source = source if isinstance(source, str) and source else "probe"
    hour = point.time_ns - point.time_ns % HOUR_NS
    cached = _SERIES.get((point.measurement, point.tags, source))
    if cached is None:
        tags = dict(point.tags)
        tags["time_source"] = source
        cached = (rollup_of(point.measurement), tuple(sorted(tags.items())))
        if len(_SERIES) >= _SERIES_MAX:
            _SERIES.clear()  # a bound, not a policy: the fleet's series fit many times over
        _SERIES[(point.measurement, point.tags, source)] = cached
    return cached[0], cached[1], hour


class Buckets(dict[Key, Bucket]):
    """Buckets by key, filled by :meth:`add`."""

    def __init__(self, targets: TargetsFile | None = None) -> None:
        super().__init__()
        self.targets = targets

    def target_of(self, point: Point) -> float | None:
        if self.targets is None or point.measurement != "throughput":
            return None
        if point.tag("status") != "ok" or point.field("time_source") == "estimated":
            return None
        plan = self.targets.for_access(point.tag("access") or "")
        return plan.download_mbps if plan is not None else None

    def add(self, point: Point) -> bool:
        """Fold ``point`` in; False if its measurement is not rolled up."""
        key = key_of(point)
        if key is None:
            return False
        bucket = self.get(key)
        if bucket is None:
            bucket = self[key] = Bucket(key[0], key[1], key[2])
        bucket.add(point, SPECS[point.measurement], self.target_of(point))
        return True


assert len(BANDS) == 6  # download_band0_n .. download_band5_n (the report reads six)
