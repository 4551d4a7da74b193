"""The cardinality guard: no probe can make InfluxDB refuse new series for the whole fleet.

InfluxDB caps the distinct values of a tag key per measurement (100,000 by default) and
then refuses *every* write that brings a new one, from any probe — all dead-lettered and
acknowledged, so every probe deletes them. So the collector refuses first, and only the
culprit's results: per measurement and tag key, a probe may bring at most
``tag_values_per_probe`` values no one brought before, and the fleet at most
``tag_values``; per measurement at most ``field_keys`` distinct field keys (a failed result
names its own ``detail_*`` keys). ``radio_operator`` (an MCC+MNC the probe's modem reports)
has a budget of its own, :data:`RADIO_OPERATORS_PER_PROBE`: a probe sees a handful of
networks, and a forged stream of codes must not spread over every measurement's series.
What was admitted is kept in the state database, so a
restart does not reopen the budget. Tags that come from the inventory or are closed sets
(commune, operator, access, status ...) are not counted: a probe cannot choose them.

Usage::

    guard = CardinalityGuard(db.load_cardinality(), cfg.cardinality)
    guard.admit(probe, points)        # raises Rejected; remembers what it admitted
    db.save_cardinality(guard.take_new())
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Annotated, Final

import msgspec
from probefleet.collector.errors import Rejected
from probefleet.collector.lineproto import Point
from probefleet.core.configkit import Section

# Tags a probe cannot choose: from its topic, the inventory, a closed set of the wire
# (radio_technology: one of five technologies), or the area registry (hamlet,
# hamlet_commune: assigned by point in polygon, only the registry's codes).
UNCOUNTED_TAGS: Final = frozenset(
    {
        "probe",
        "status",
        "access",
        "operator",
        "commune",
        "district",
        "province",
        "inventory",
        "radio_technology",
        "hamlet",
        "hamlet_commune",
    }
)
# Distinct radio_operator values (MCC+MNC) one probe may bring, per measurement: its SIMs'
# networks and those it roams on, with room to spare (Vietnam has five networks).
RADIO_OPERATORS_PER_PROBE: Final = 16
# Tag keys with a tighter per-probe budget than tag_values_per_probe.
_TIGHT_TAGS: Final = {"radio_operator": RADIO_OPERATORS_PER_PROBE}
# (measurement, "tag" | "field", key, value or "", the probe that brought it)
Entry = tuple[str, str, str, str, str]


class CardinalitySection(Section, frozen=True, kw_only=True):
    """``[cardinality]``: how many distinct tag values and field keys may reach InfluxDB."""

    # New values of one tag key in one measurement that one probe may bring (its targets,
    # servers, services, interfaces ...): far above a real probe's few dozen.
    tag_values_per_probe: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 500
    # The same for the whole fleet: below InfluxDB's max-values-per-tag (100,000).
    tag_values: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 50_000
    # Distinct field keys of one measurement (throughput writes 24, and 45 radio_* on a
    # mobile link; detail_* keys add up).
    field_keys: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 200


class CardinalityGuard:
    def __init__(self, known: Iterable[Entry], cfg: CardinalitySection) -> None:
        self.cfg = cfg
        self._values: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._brought: dict[tuple[str, str, str], int] = defaultdict(int)
        self._fields: dict[str, set[str]] = defaultdict(set)
        self._new: list[Entry] = []
        for entry in known:
            self._remember(entry)

    def _remember(self, entry: Entry) -> None:
        measurement, what, key, value, probe = entry
        if what == "field":
            self._fields[measurement].add(key)
        else:
            self._values[(measurement, key)].add(value)
            self._brought[(measurement, key, probe)] += 1

    def admit(self, probe: str, points: Sequence[Point]) -> None:
        """Admit the points of one result, or refuse them all (Rejected, nothing kept)."""
        new: list[Entry] = []
        for point in points:
            m = point.measurement
            for key, value in point.tags:
                if key not in UNCOUNTED_TAGS and value not in self._values.get((m, key), ()):
                    new.append((m, "tag", key, value, probe))
            for key, _value in point.fields:
                if key not in self._fields.get(m, ()):
                    new.append((m, "field", key, "", probe))
        if not new:
            return
        new = list(dict.fromkeys(new))
        self._check(new)
        for entry in new:
            self._remember(entry)
        self._new += new

    def _check(self, new: list[Entry]) -> None:
        tags: dict[tuple[str, str], int] = defaultdict(int)
        fields: dict[str, int] = defaultdict(int)
        for m, what, key, _value, _probe in new:
            if what == "field":
                fields[m] += 1
            else:
                tags[(m, key)] += 1
        probe = new[0][4]
        for (m, key), count in tags.items():
            limit = _TIGHT_TAGS.get(key, self.cfg.tag_values_per_probe)
            if self._brought[(m, key, probe)] + count > limit:
                setting = (
                    "the collector's radio_operator limit"
                    if key in _TIGHT_TAGS
                    else "cardinality.tag_values_per_probe"
                )
                raise Rejected(
                    f"tags.{key}",
                    f"cardinality: probe {probe} has brought {self._brought[(m, key, probe)]} "
                    f"values of {m}.{key}; {setting} is {limit}",
                )
            if len(self._values[(m, key)]) + count > self.cfg.tag_values:
                raise Rejected(
                    f"tags.{key}",
                    f"cardinality: {m}.{key} has {len(self._values[(m, key)])} values; "
                    f"cardinality.tag_values is {self.cfg.tag_values}",
                )
        for m, count in fields.items():
            if len(self._fields[m]) + count > self.cfg.field_keys:
                raise Rejected(
                    "fields",
                    f"cardinality: {m} has {len(self._fields[m])} field keys; "
                    f"cardinality.field_keys is {self.cfg.field_keys}",
                )

    def take_new(self) -> list[Entry]:
        """What was admitted since the last call, to be saved with the batch."""
        new, self._new = self._new, []
        return new
