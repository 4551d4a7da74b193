"""What the centre may set: a remote config judged against the file's ``[remote]`` limits.

The probe's own file is the operator's and is trusted as written; only what the centre's
overlay changes is judged (agent.fleet calls :func:`judge` on every remote config, after the
file's decoder accepted it). Refused, each problem naming its key and why:

- a destination the file does not name as written (kinds mark their destination fields,
  see kinds.common.destinations; a latency target's port is part of it) whose host
  ``[remote] allow_destinations`` does not list, or that is a private, loopback,
  link-local... address; a file path where a URL goes;
- a bandwidth test with more streams or a longer duration than ``max_streams`` /
  ``max_duration_s`` (with the longest warm-up it may take), scheduled closer than
  ``min_interval_s`` (its ``interval_s``, or the closest two runs of its ``cron`` over a
  week), or with a byte cap per run beyond ``max_monthly_mb``;
- any change to the throughput servers' trust (``tls``: CA files and pins stay local).

A value within what the file itself sets is never refused (a test the operator runs every 5
minutes the centre may move to every 10, not to every 1). What is accepted becomes an
:class:`~probefleet.agent.config.Overlay`: which kinds the centre changed (their heavy runs
count against ``max_monthly_mb``, agent.allowance) and which must have every address they
connect to checked at run time (names the centre gave can resolve to the office LAN).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi
from probefleet import kinds
from probefleet.agent.config import AgentConfig, Overlay, RemoteSection
from probefleet.kinds.base import Schedule
from probefleet.kinds.common import destinations
from probefleet.kinds.common.destinations import Format
from probefleet.kinds.throughput.measure import ThroughputConfig

MB = 1_000_000

# Keys of bandwidth tests and the [remote] cap a value the centre sets may not exceed.
_CAPS: dict[str, dict[str, str]] = {
    "throughput": {"streams_download": "max_streams", "streams_upload": "max_streams"},
}
# Destination fields of kinds that do not mark them yet (field name -> format).
_UNMARKED: dict[str, dict[str, Format]] = {
    "ookla": {"config_url": "url", "servers_url": "url"},
    "ipv6": {"url": "url", "v4": "host", "v6": "host"},
}
_WEEK_START = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)  # a Monday
_MAX_FIRES = 5000


def judge(
    local: AgentConfig, merged: AgentConfig, remote: dict[str, Any]
) -> tuple[Overlay, list[str]]:
    """The overlay ``remote`` makes of ``local`` (giving ``merged``), and every problem with
    it against ``local``'s [remote] limits (none: it may be applied)."""
    limits = local.remote
    policy = destinations.Policy(limits.allow_destinations, allow_private=limits.allow_private)
    tables = remote.get("measurements")
    touched = sorted(k for k in (tables if isinstance(tables, dict) else {}) if k in kinds.SPECS)
    problems: list[str] = []
    guarded: dict[str, frozenset[str]] = {}
    for kind in touched:
        change = _Change(kind, local.measurements.of(kind), merged.measurements.of(kind))
        trusted, new = change.destinations(policy, problems)
        if new:
            guarded[kind] = trusted
        change.caps(limits, problems)
    return Overlay(kinds=frozenset(touched), guarded=guarded), problems


@dataclass(frozen=True)
class _Change:
    """A kind's table as the file has it (``mine``) and with the centre's keys (``theirs``)."""

    kind: str
    mine: Schedule
    theirs: Schedule

    @property
    def prefix(self) -> str:
        return f"measurements.{self.kind}"

    def destinations(
        self, policy: destinations.Policy, problems: list[str]
    ) -> tuple[frozenset[str], bool]:
        """The hosts the file names for this kind, and whether the centre named other
        destinations (each checked against ``policy``; problems appended). A destination is
        the file's own only as the file writes it: the file's router check at
        ``192.168.1.1:80`` does not let the centre connect to port 22 of it."""
        own = list(destinations_in(self.kind, self.mine, self.prefix))
        trusted = frozenset(h for n in own if (h := destinations.host_of(n.fmt, n.value)))
        as_written = {n.identity for n in own}
        new = False
        for named in destinations_in(self.kind, self.theirs, self.prefix):
            key, fmt, value = named.key, named.fmt, named.value
            if named.identity in as_written:
                continue
            if destinations.is_path(fmt, value):
                problems.append(
                    f"{key} = {value!r}: a file on the probe; only its own file may name one "
                    "(give an http:// URL)"
                )
                continue
            host = destinations.host_of(fmt, value)
            if host is None:
                continue
            new = True
            why = policy.refusal(host)
            if why is not None:
                problems.append(f"{key} = {value!r}: {why}")
        return trusted, new

    def caps(self, limits: RemoteSection, problems: list[str]) -> None:
        mine, theirs, prefix = self.mine, self.theirs, self.prefix
        for key, cap_name in _CAPS.get(self.kind, {}).items():
            value, own = getattr(theirs, key), getattr(mine, key)
            cap = getattr(limits, cap_name)
            if value > cap and value > own:
                problems.append(f"{prefix}.{key} = {value!r}: above [remote] {cap_name} = {cap:g}")
        self._sending(limits, problems)
        if not kinds.spec(self.kind).measurement().heavy:
            return  # judged even while disabled: one key more would enable it
        gap, own_gap = spacing_s(theirs), spacing_s(mine) if mine.enabled else math.inf
        if gap < min(float(limits.min_interval_s), own_gap):
            key, value = ("cron", theirs.cron) if theirs.cron else ("interval_s", theirs.interval_s)
            spaced = f"runs {gap:g} s apart, " if theirs.cron else ""
            problems.append(
                f"{prefix}.{key} = {value!r}: {spaced}closer than [remote] min_interval_s = "
                f"{limits.min_interval_s} s for a bandwidth test"
            )
        per_direction = getattr(theirs, "max_bytes", 0)
        per_run = per_direction * len(getattr(theirs, "directions", ()) or (1,))
        changed = per_direction != getattr(mine, "max_bytes", 0)
        if per_direction and changed and per_run > limits.max_monthly_mb * MB:
            problems.append(
                f"{prefix}.max_bytes = {per_direction}: one run may move {per_run / MB:,.0f} "
                f"MB, more than [remote] max_monthly_mb = {limits.max_monthly_mb} in a month"
            )

    def _sending(self, limits: RemoteSection, problems: list[str]) -> None:
        """A throughput direction sends for duration_s plus its grace period (at least):
        max_duration_s caps the sum, so that a long warm-up cannot stand in for a long test
        (or what the file itself lets a direction send for)."""
        theirs, mine = self.theirs, self.mine
        if not (isinstance(theirs, ThroughputConfig) and isinstance(mine, ThroughputConfig)):
            return

        def seconds(table: ThroughputConfig) -> tuple[float, str]:
            # The warm-up lasts until the streams are steady: its grace at least, and up to
            # warmup_max_s; the cap is on the longest it may take.
            graces = {f"grace_{d}_s": getattr(table, f"grace_{d}_s") for d in table.directions}
            graces["warmup_max_s"] = table.warmup_max_s
            key = max(graces, key=graces.__getitem__)
            return table.duration_s + graces[key], key

        if theirs.tls != mine.tls:
            # CA files and pins are what the probe trusts: a file on the probe, and the one
            # thing that tells a real server from one in the middle. The probe's own file only.
            problems.append(
                f"{self.prefix}.tls: only the probe's own file may set which certificates its "
                "throughput servers are trusted by (ca_file, pin_sha256)"
            )
        worst, grace_key = seconds(theirs)
        if worst <= max(limits.max_duration_s, seconds(mine)[0]):
            return
        key = "duration_s" if theirs.duration_s != mine.duration_s else grace_key
        problems.append(
            f"{self.prefix}.{key} = {getattr(theirs, key)!r}: above [remote] "
            f"max_duration_s = {limits.max_duration_s:g} ({worst:g} s a direction with its "
            "longest warm-up)"
        )


def spacing_s(table: Schedule) -> float:
    """The shortest time between two runs of ``table``'s schedule (a cron line: over a week
    of its fire times); inf when it never runs twice in a week."""
    if not table.cron:
        return float(table.interval_s)
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(table.cron, timezone=dt.UTC)
    end = _WEEK_START + dt.timedelta(days=8)
    shortest = math.inf
    previous: dt.datetime | None = None
    fire = trigger.get_next_fire_time(None, _WEEK_START)
    for _ in range(_MAX_FIRES):
        if fire is None or fire > end:
            break
        if previous is not None:
            shortest = min(shortest, (fire - previous).total_seconds())
            if shortest <= 60:  # a cron line's finest step: no need to look further
                break
        previous = fire
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(microseconds=1))
    return shortest


# --- finding destinations in a kind's table -------------------------------------------------


class Named(NamedTuple):
    """A destination a table names: its key path, how it is written, and the ``port`` of
    the entry holding it (a latency target's), which is part of what it names."""

    key: str
    fmt: Format
    value: str
    port: int | None

    @property
    def identity(self) -> tuple[str, int | None]:
        return self.value.strip(), self.port


def destinations_in(kind: str, table: msgspec.Struct, prefix: str) -> Iterator[Named]:
    """Every destination ``table`` names: the fields its kind marks (destinations.marker),
    in nested tables and lists too."""
    unmarked = _UNMARKED.get(kind, {})
    for field in _fields(type(table)):
        key = f"{prefix}.{field.encode_name}"
        value = getattr(table, field.name)
        yield from _walk(field.type, value, key, fmt=unmarked.get(field.name), unmarked=unmarked)


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> tuple[mi.Field, ...]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return info.fields


def _walk(
    t: mi.Type,
    value: Any,
    key: str,
    *,
    fmt: Format | None,
    unmarked: dict[str, Format],
    port: int | None = None,
) -> Iterator[Named]:
    if isinstance(t, mi.Metadata):
        fmt = (t.extra or {}).get(destinations.KEY, fmt)
        yield from _walk(t.type, value, key, fmt=fmt, unmarked=unmarked, port=port)
    elif isinstance(value, str):
        if fmt is not None:
            yield Named(key, fmt, value, port)
    elif isinstance(value, list) and isinstance(t, mi.ListType):
        for i, item in enumerate(value):
            yield from _walk(t.item_type, item, f"{key}[{i}]", fmt=fmt, unmarked=unmarked,
                             port=port)  # fmt: skip
    elif isinstance(value, msgspec.Struct):
        own_port = getattr(value, "port", None)
        inner = own_port if isinstance(own_port, int) else None
        for field in _fields(type(value)):
            inside, fmt = f"{key}.{field.encode_name}", unmarked.get(field.name)
            yield from _walk(field.type, getattr(value, field.name), inside, fmt=fmt,
                             unmarked=unmarked, port=inner)  # fmt: skip
