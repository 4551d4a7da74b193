"""The measurement contract (a frozen config, a validating constructor, one `run` that does
I/O) and what a kind declares to the registry (KindSpec, Row).

A measurement never touches the network in its constructor; `run(link)` does the I/O and
returns the typed payload of its kind (its payload.py) or raises
:class:`probefleet.kinds.errors.MeasurementError`. The caller (CLI, scheduler) owns timing, retries,
logging and wrapping the payload in a wire envelope.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import msgspec
from probefleet.core import wire
from probefleet.core.configkit import Section

Interval = Annotated[int, msgspec.Meta(ge=10, le=31 * 86_400)]
IpChoice = Annotated[int, msgspec.Meta(ge=0, le=6)]  # 0 = either, 4 or 6 (checked below)


class Schedule(Section, frozen=True, kw_only=True):
    """When a measurement runs and on which link; each measurement subclasses it with its
    own options (``[measurements.<name>]``)."""

    enabled: bool = True
    interval_s: Interval = 300
    # A crontab line (5 fields, UTC) instead of interval_s, e.g. "0 19-22 * * *"; the agent
    # checks it when loading the config (agent.config) and schedules it (agent.scheduler).
    cron: Annotated[str, msgspec.Meta(max_length=100)] = ""
    interface: str = ""  # empty: every interface in [[interfaces]] (or the default route)


@dataclass(frozen=True)
class Link:
    """The link a measurement runs over: bound to ``interface`` (SO_BINDTODEVICE) and/or
    ``source_address`` when given, so FTTH and 4G are measured apart."""

    interface: str | None = None
    access: wire.Access | None = None
    source_address: str | None = None


DEFAULT_LINK = Link()

ConfigT = TypeVar("ConfigT", bound=Schedule)


class Measurement(abc.ABC, Generic[ConfigT]):
    """One kind of measurement. Subclasses set the class variables and implement `run`."""

    name: ClassVar[wire.Kind]
    summary: ClassVar[str]  # one line for `probe-agent measure --help`
    config_type: ClassVar[type[Schedule]]
    # Moves bulk data: never overlaps another heavy one, waits for a quiet line, and is
    # counted against the data budget of a metered link.
    heavy: ClassVar[bool] = False
    # Runs once per link (False: once per probe, e.g. health).
    per_link: ClassVar[bool] = True

    def __init__(self, config: ConfigT) -> None:
        """Validate only; raise ValueError naming the key for what the types cannot say."""
        self.config = config

    @abc.abstractmethod
    def run(self, link: Link) -> msgspec.Struct:
        """Measure now over ``link``; return this kind's payload or raise MeasurementError."""


# --- what a kind declares (its folder's __init__.py), and what the registry derives from it

FieldValue = float | int | bool | str


@dataclass(frozen=True, slots=True)
class Row:
    """One InfluxDB point a payload produces, before the collector adds what every point
    carries (probe, status, inventory tags, seq, time). The measurement is the kind's name.

    ``link``: the row is about that interface of the probe (health's per-interface rows): the
    collector tags it with the interface's access type and operator from the inventory.
    ``located``: the row carries the probe's coordinates from the inventory (map panels)."""

    tags: dict[str, str | None]
    fields: dict[str, FieldValue | None]
    link: str | None = None
    located: bool = False


@dataclass(frozen=True)
class KindSpec:
    """A measurement kind, as its folder declares it (``SPEC`` in kinds/<kind>/__init__.py).

    ``result``: its wire result class (payload.py); ``rows``: payload -> InfluxDB rows, its
    field table (fields.py, documented in its README.md); ``measurement``: loads the agent's
    code (measure.py) — only the agent calls it, so the collector never imports it."""

    name: str
    result: type[wire.Envelope]
    rows: Callable[[Any], list[Row]]
    measurement: Callable[[], type[Measurement[Any]]]
    folder: Path

    @property
    def sample(self) -> Path:
        """The kind's annotated ``[measurements.<kind>]`` fragment of the agent's config."""
        return self.folder / "sample.toml"

    @property
    def readme(self) -> Path:
        """What it measures and its field table (the InfluxDB fields it writes)."""
        return self.folder / "README.md"
