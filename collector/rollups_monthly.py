"""Monthly rollups (``<measurement>_1mo``), summed from the stored daily ones by InfluxQL.

A local month's point per series adds up its days' points: counts, sums and bins added, the
min of ``_min`` fields and of ``first_hour_s``, the max of ``_max`` fields. Its time is the
local month's first midnight. ``download_target_mbps`` is kept when every day had the same
target; otherwise it holds the lowest and ``download_target_mbps_max`` the highest, and the
report counts bands from the bins (as for a day stored with another target). A year's report
then reads 12 points per series instead of 365. Compacting a month again (a day of it was
compacted again after late results) rewrites the same points: every field only grows.
Usage::

    lines = compact_month(client, month_start, month_end)
    for line in month_lines(client, month_start, month_end): ...   # the Compactor, streamed
"""

# ruff: noqa: S608 - texts from constants and integers only
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Final
from zoneinfo import ZoneInfo

from probefleet.collector import rollups_hist as _hist
from probefleet.collector.lineproto import FieldValue, Point
from probefleet.collector.rollups_daily import InfluxQL, _range, _series, _tags, daily_of
from probefleet.collector.rollups_spec import SPECS

MONTHLY: Final = "_1mo"
TARGET_MAX: Final = "download_target_mbps_max"
# A month of 10,000 probes' days: ~300 rows per series, so fewer series per page than a day.
_SERIES_PER_PAGE: Final = 500

Tags = tuple[tuple[str, str], ...]


def monthly_of(measurement: str) -> str:
    """``throughput`` -> ``throughput_1mo``."""
    return measurement + MONTHLY


def local_month(when: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the local month holding ``when``, as aware datetimes."""
    day = when.astimezone(zone).date().replace(day=1)
    nxt = (day + dt.timedelta(days=32)).replace(day=1)
    return (
        dt.datetime.combine(day, dt.time(), tzinfo=zone),
        dt.datetime.combine(nxt, dt.time(), tzinfo=zone),
    )


def whole_months(
    start: dt.datetime, end: dt.datetime, zone: ZoneInfo
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The local months lying wholly inside [start, end)."""
    out: list[tuple[dt.datetime, dt.datetime]] = []
    a, b = local_month(start, zone)
    if a < start:
        a, b = local_month(b, zone)
    while b <= end:
        out.append((a, b))
        a, b = local_month(b, zone)
    return out


class MonthSum:
    """One series' month: its days' fields added up by the rules of the module docstring."""

    __slots__ = ("bins", "highs", "lows", "sums", "targets")

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.lows: dict[str, float] = {}
        self.highs: dict[str, float] = {}
        self.bins: dict[str, dict[int, int]] = {}
        self.targets: list[float] = []

    def add(self, fields: Mapping[str, object]) -> None:
        for key, value in fields.items():
            if value is None or key in ("time", "hour_utc"):
                continue
            if isinstance(value, str):
                if key.endswith("_hist"):
                    _hist.merge_into(self.bins.setdefault(key, {}), value)
                continue
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            number = float(value)
            if key in ("download_target_mbps", TARGET_MAX):
                self.targets.append(number)
            elif key.endswith("_min") or key == "first_hour_s":
                self.lows[key] = min(self.lows.get(key, number), number)
            elif key.endswith("_max"):
                self.highs[key] = max(self.highs.get(key, number), number)
            else:
                self.sums[key] = self.sums.get(key, 0.0) + number

    def fields(self) -> dict[str, FieldValue]:
        # Types as the daily points have them: sums, extremes and targets float, counts int.
        out: dict[str, FieldValue] = {}
        for key, value in self.sums.items():
            out[key] = value if key.endswith("_sum") else round(value)
        for key, value in self.lows.items():
            out[key] = round(value) if key == "first_hour_s" else value
        out.update(self.highs)
        for key, bins in self.bins.items():
            out[key] = _hist.encode(bins)
        if self.targets:
            low, high = min(self.targets), max(self.targets)
            out["download_target_mbps"] = low
            if high != low:
                out[TARGET_MAX] = high
        return out


def month_points(
    days: Iterable[tuple[str, Tags, Mapping[str, object]]], when: dt.datetime
) -> list[Point]:
    """The month's points from its daily points, given as (daily measurement, tags, fields):
    for tests and benches, and what :func:`compact_month` does with the stored ones."""
    sums: dict[tuple[str, Tags], MonthSum] = {}
    for measurement, tags, fields in days:
        found = sums.get((measurement, tags))
        if found is None:
            found = sums[(measurement, tags)] = MonthSum()
        found.add(fields)
    at = round(when.timestamp()) * 10**9
    out = []
    for (measurement, tags), month in sums.items():
        name = measurement.removesuffix("_1d") + MONTHLY
        out.append(Point(name, tags, tuple(month.fields().items()), at))
    return out


def month_lines(client: InfluxQL, start: dt.datetime, end: dt.datetime) -> Iterator[str]:
    """The monthly points' lines of the local month [start, end), from its stored daily
    points, one series at a time: a series' days come whole in one page (``GROUP BY *``),
    so only one series' sum is held, whatever the fleet (10,000 probes: ~150,000 series)."""
    at = round(start.timestamp()) * 10**9
    for kind in SPECS:
        text = f'SELECT * FROM "{daily_of(kind)}" WHERE {_range(start, end)} GROUP BY *'
        for series in _series(client, text, paged=True, per_page=_SERIES_PER_PAGE):
            month = MonthSum()
            columns = series["columns"]
            for values in series["values"]:
                month.add(dict(zip(columns, values, strict=True)))
            fields = tuple(month.fields().items())
            if fields:
                yield Point(monthly_of(kind), _tags(series), fields, at).line()


def compact_month(client: InfluxQL, start: dt.datetime, end: dt.datetime) -> list[str]:
    """Every line of :func:`month_lines` (rebuild, tests)."""
    return list(month_lines(client, start, end))
