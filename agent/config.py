"""The agent's config file (TOML): its shape and every default, in one place.

See ``config/agent.sample.toml`` for the annotated version a technician edits. Load with
:func:`load_config`; it raises :class:`agent.configkit.ConfigError` listing every problem.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self

import msgspec
from probefleet import kinds
from probefleet.agent.budget import BudgetConfig
from probefleet.agent.gate import GateConfig
from probefleet.core import configkit, wire
from probefleet.core.configkit import Section
from probefleet.core.mqtt import MqttSection
from probefleet.kinds.base import Schedule
from probefleet.kinds.common import destinations


class ProbeSection(Section, frozen=True, kw_only=True):
    # The probe's identity on the wire, its MQTT username and its InfluxDB tag.
    id: wire.ProbeId
    # Spool, sequence counter and data-budget ledger live here; keep it on persistent storage.
    state_dir: str = "/var/lib/probefleet"


class InterfaceSection(Section, frozen=True, kw_only=True):
    name: wire.IfName
    access: wire.Access
    # Monthly data budget for metered (mobile) links; 0 means unmetered.
    monthly_budget_mb: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 0
    # Bind measurements on this link to this local address too (empty: the interface only).
    source_address: str = ""


class MeasurementsBase(Section, frozen=True, kw_only=True):
    """``[measurements]``: one table per registered kind (its ``[measurements.<kind>]``).
    Each kind owns its table's shape and defaults (its Measurement's ``config_type``); the
    struct with one field per kind is derived from the registry (:func:`config_type`)."""

    def of(self, kind: wire.Kind) -> Schedule:
        """The table of ``kind``: enabled, interval, cron, interface and its own options."""
        table: Schedule = getattr(self, kind)
        return table

    if TYPE_CHECKING:  # a field per kind, made at run time: statically, any name is a table

        def __getattr__(self, kind: str) -> Any: ...


class ScheduleSection(Section, frozen=True, kw_only=True):
    """[schedule]: how runs are spread and what happens when they cannot start on time."""

    # Each run starts up to this many seconds after its slot, at random (RIPE Atlas's spread).
    # The slot itself is shifted by a fixed offset derived from the probe id, so 200 probes
    # on the same interval do not hit one server in the same second.
    jitter_s: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 30
    # A run that could not start within this many seconds of its time (agent stopped, clock
    # jumped, a long test before it) is recorded as a skipped result instead.
    misfire_grace_s: Annotated[int, msgspec.Meta(ge=5, le=86_400)] = 300
    # A bandwidth test waits at most this long for another one to end, then is skipped.
    heavy_wait_s: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 900
    # Measure only once the kernel says the clock is synchronised (NTP). false: a clock that
    # is merely sane (after 2025) is enough; results then say synced = false.
    require_synced_clock: bool = True


class SpoolSection(Section, frozen=True, kw_only=True):
    """[spool]: the on-disk outbox of results not yet stored centrally."""

    # Disk budget of the spool's results (payload bytes). When full, the oldest health
    # results go first, then the oldest of other kinds; each one counted and reported.
    max_mb: Annotated[float, msgspec.Meta(ge=0.1, le=100_000.0)] = 100.0
    # Results published and awaiting the broker's PUBACK at any time (the MQTT window).
    window: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    # Results published but not yet confirmed stored by the collector; beyond it the
    # agent waits for StoredAcks (a week of backlog is drained in steps of this size).
    max_unconfirmed: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500
    # Publish again a result the broker accepted but the collector did not confirm within
    # this many seconds (a broker that lost it, an ack that got lost).
    ack_timeout_s: Annotated[float, msgspec.Meta(ge=1.0, le=86_400.0)] = 600.0
    # Try again this long after a PUBACK refused a result (no subscriber, not authorised).
    retry_s: Annotated[float, msgspec.Meta(ge=0.1, le=3600.0)] = 30.0
    # While the disk refuses results (full, failing), they wait in memory, up to this many
    # MB of payload; beyond it the oldest go (health first), each one counted (reason
    # "disk_full"). They are spooled, oldest first, as soon as the disk takes them again.
    memory_max_mb: Annotated[float, msgspec.Meta(ge=0.01, le=1000.0)] = 16.0
    # Kept free in the state dir (a file, reserve.bin): deleted when the agent stops while
    # the disk is full, so that the results held in memory can still be spooled. 0: none.
    reserve_mb: Annotated[float, msgspec.Meta(ge=0.0, le=1000.0)] = 4.0


class RadioSection(Section, frozen=True, kw_only=True):
    """[radio]: the radio context (technology, operator, signal, cell) that results measured
    on a mobile interface carry, read from ModemManager over D-Bus."""

    # Attach a `radio` context to results measured on a mobile interface. A collector older
    # than this field refuses such results (they are dead-lettered): upgrade the centre
    # first; false for a fleet whose collectors are older. The radio kind runs either way.
    attach: bool = True
    # The D-Bus bus ModemManager is on: "system", "session" or an address (unix:path=...).
    bus: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] = "system"
    # Seconds between the modem's refreshes of its extended signal figures (RSRP, RSRQ,
    # SNR ...), set once per modem with Modem.Signal.Setup; 0: leave the modem as it is.
    signal_rate_s: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 10
    # Each D-Bus call waits at most this long (a read makes at most seven).
    timeout_s: Annotated[float, msgspec.Meta(ge=0.05, le=30.0)] = 2.0


class Overlay(msgspec.Struct, frozen=True, kw_only=True):
    """What the centre's remote config changed, as agent.limits judged it. Never read from
    a file: agent.fleet attaches it to the config in force (:class:`RemoteInForce`)."""

    # Kinds whose [measurements.<kind>] table the centre changed: their heavy runs count
    # against [remote] max_monthly_mb.
    kinds: frozenset[str] = frozenset()
    # Kinds whose remote config names destinations the file does not, each with the hosts
    # the file does name for it: every address their runs connect to is checked.
    guarded: dict[str, frozenset[str]] = {}


NO_OVERLAY = Overlay()


class RemoteSection(Section, frozen=True, kw_only=True):
    """[remote]: what the centre's remote config and commands may make this probe do. Only
    this file sets it (the centre cannot); the file's own values are never capped."""

    # Hosts the centre may point measurements at beyond those this file names: a name,
    # "*.domain" (its subdomains), an address or a network ("203.0.113.0/24").
    allow_destinations: Annotated[list[str], msgspec.Meta(max_length=256)] = []
    # Private, loopback, link-local, CGNAT, multicast and reserved addresses (the office
    # LAN, the router) are refused to the centre, also when a name resolves to one, unless
    # this is true or allow_destinations lists a network of such addresses.
    allow_private: bool = False
    # Caps on the bandwidth tests the centre sets: streams per direction, seconds a direction
    # sends (duration_s + the longest its warm-up may take), the least spacing of runs (a
    # schedule's, and of commanded runs).
    max_streams: Annotated[int, msgspec.Meta(ge=1, le=64)] = 8
    max_duration_s: Annotated[float, msgspec.Meta(gt=0.0, le=120.0)] = 30.0
    min_interval_s: Annotated[int, msgspec.Meta(ge=10, le=31 * 86_400)] = 900
    # Bandwidth-test traffic per calendar month (UTC) from runs the centre asked for or
    # scheduled; beyond it they are skipped until the month ends.
    max_monthly_mb: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] = 100_000
    # Commands accepted per hour (any kind); the rest are dropped and logged.
    max_commands_per_hour: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 60

    def overlay(self) -> Overlay:
        """What the centre's config changed (nothing: the file alone is in force)."""
        return NO_OVERLAY


class RemoteInForce(RemoteSection, frozen=True, kw_only=True):
    """[remote] of the file, with the overlay of the remote config in force."""

    centre: Overlay = NO_OVERLAY

    def overlay(self) -> Overlay:
        return self.centre


class AgentConfigBase(Section, frozen=True, kw_only=True):
    """The whole file. Decode with :func:`config_type` (or ``AgentConfig``): this base
    leaves ``[measurements]`` without its per-kind tables."""

    probe: ProbeSection
    mqtt: MqttSection = msgspec.field(default_factory=MqttSection)
    interfaces: list[InterfaceSection] = []
    measurements: MeasurementsBase = msgspec.field(default_factory=MeasurementsBase)
    schedule: ScheduleSection = msgspec.field(default_factory=ScheduleSection)
    gate: GateConfig = msgspec.field(default_factory=GateConfig)
    budget: BudgetConfig = msgspec.field(default_factory=BudgetConfig)
    spool: SpoolSection = msgspec.field(default_factory=SpoolSection)
    remote: RemoteSection = msgspec.field(default_factory=RemoteSection)
    radio: RadioSection = msgspec.field(default_factory=RadioSection)
    log: configkit.LogSection = msgspec.field(default_factory=configkit.LogSection)

    def resolve(self, env: dict[str, str], problems: list[str], base: Path) -> Self:
        """Cross-key rules and secrets; appends to ``problems`` rather than stopping."""
        names = [i.name for i in self.interfaces]
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append(f"interfaces[{i}].name = {name!r}: declared twice")
        for kind in kinds.names():
            wanted = self.measurements.of(kind).interface
            if wanted and wanted not in names:
                problems.append(
                    f"measurements.{kind}.interface = {wanted!r}: not in [[interfaces]] "
                    f"(declared: {', '.join(names) or 'none'})"
                )
            cron = self.measurements.of(kind).cron
            if cron:
                why = cron_problem(cron)
                if why:
                    problems.append(f"measurements.{kind}.cron = {cron!r}: {why}")
        for i, entry in enumerate(self.remote.allow_destinations):
            try:
                destinations.Policy([entry])
            except ValueError as exc:
                problems.append(f"remote.allow_destinations[{i}] = {entry!r}: {exc}")
        bus = self.radio.bus
        if bus not in ("system", "session") and not bus.startswith(("unix:", "tcp:")):
            problems.append(
                f'radio.bus = {bus!r}: expected "system", "session" or a D-Bus address '
                "(unix:path=... or tcp:host=...,port=...)"
            )
        mqtt = self.mqtt.resolved(env, base, problems)
        mqtt = msgspec.structs.replace(mqtt, username=mqtt.username or self.probe.id)
        return msgspec.structs.replace(self, mqtt=mqtt)


def cron_problem(line: str) -> str | None:
    """Why ``line`` is not a crontab line APScheduler accepts, or None."""
    if len(line.split()) != 5:
        return "expected 5 fields (minute hour day month weekday)"
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(line, timezone="UTC")
    except ValueError as exc:
        return str(exc)
    return None


@functools.cache
def _types(
    specs: tuple[kinds.KindSpec, ...],
) -> tuple[type[AgentConfigBase], type[MeasurementsBase]]:
    tables = []
    for spec in specs:
        table = spec.measurement().config_type
        tables.append((spec.name, table, msgspec.field(default_factory=table)))
    options: dict[str, Any] = {"frozen": True, "kw_only": True, "forbid_unknown_fields": True}
    section = msgspec.defstruct(
        "MeasurementsSection", tables, bases=(MeasurementsBase,), module=__name__, **options
    )
    whole = msgspec.defstruct(
        "AgentConfig",
        [("measurements", section, msgspec.field(default_factory=section))],
        bases=(AgentConfigBase,),
        module=__name__,
        **options,
    )
    return whole, section  # type: ignore[return-value]  # defstruct is typed as Struct


def config_type() -> type[AgentConfigBase]:
    """The config file's struct for the kinds registered now (made once per registry)."""
    return _types(tuple(kinds.SPECS.values()))[0]


def load_config(path: Path, env: dict[str, str] | None = None) -> AgentConfig:
    return configkit.load(path, config_type(), env=env)


if TYPE_CHECKING:
    AgentConfig = AgentConfigBase
    MeasurementsSection = MeasurementsBase
else:  # the registry's kinds, as at import (config_type() follows later registrations)
    AgentConfig, MeasurementsSection = _types(tuple(kinds.SPECS.values()))
