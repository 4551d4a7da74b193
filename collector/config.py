"""The collector's config file (TOML): its shape and every default, in one place.

See ``config/collector.sample.toml`` for the annotated version. Load with :func:`load_config`;
it raises :class:`probefleet.core.configkit.ConfigError` listing every problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
from probefleet.collector.cardinality import CardinalitySection
from probefleet.core import configkit, mqtt
from probefleet.core.configkit import Section


class MqttSection(mqtt.MqttSection, frozen=True, kw_only=True):
    """The shared connection settings, plus what a persistent, shared consumer needs."""

    username: str = "collector"
    # Fixed, so the broker keeps this collector's session (and queue) across restarts.
    client_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}\Z")] = (
        "probefleet-collector"
    )
    # Longer than any outage we mean to survive: a week.
    session_expiry_s: Annotated[int, msgspec.Meta(ge=60, le=2**32 - 1)] = 7 * 86_400
    # Un-acked messages the broker may hand us at once (MQTT v5 receive maximum). A batch
    # is written at half of it: bigger windows mean bigger, cheaper batches (measured in
    # bench/bench_collector.py: 1000 gave ~3,700 results/s, 10000 ~7,000-10,000, 2 cores).
    receive_maximum: Annotated[int, msgspec.Meta(ge=1, le=65_535)] = 10_000
    # Empty: a plain subscription. A name: a shared one ($share/<group>/...) for scale-out.
    share_group: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{0,64}\Z")] = ""
    # Statuses and Last Wills on a connection of their own, so that they never wait behind
    # a results backlog (false: on the results connection, as before 0.x — then presence
    # lags with the results). It logs in as status_username (empty: "<username>-status")
    # with the same password; on a broker with use_username_as_clientid its client id is
    # that username, so the broker needs that login (deploy/: enrol.py service ...).
    status_connection: bool = True
    status_client_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{0,64}\Z")] = ""
    status_username: str = ""
    # The collector publishes a ping to itself on the results connection this often: it
    # comes back behind everything queued for us, so its round trip is our lag (README).
    lag_ping_s: Annotated[float, msgspec.Meta(ge=0.1, le=3600)] = 5.0

    def status_id(self) -> str:
        """The status connection's client id (default "<client_id>-status")."""
        return self.status_client_id or f"{self.client_id[:57]}-status"

    def status_user(self) -> str:
        return self.status_username or (f"{self.username}-status" if self.username else "")


class InfluxSection(Section, frozen=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://")] = "http://localhost:8086"
    org: str = "probefleet"
    bucket: Annotated[str, msgspec.Meta(min_length=1)] = "probefleet"
    # Secret: env PROBEFLEET_INFLUXDB_TOKEN or PROBEFLEET_INFLUXDB_TOKEN_FILE win over these.
    token: str = ""
    token_file: str = ""
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0
    batch_max_points: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5000
    batch_max_latency_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 200
    # A failing write is retried with back-off this long, then the batch goes to the local
    # fsynced spool (state_dir) and is replayed, oldest first, once InfluxDB answers again.
    spool_after_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 10.0


class FilesSection(Section, frozen=True, kw_only=True):
    # Probe -> commune, district, operator and access type per interface.
    inventory: str = "/etc/probefleet/inventory.toml"
    # The plan's targets (fixed 150 Mbit/s, mobile 60 Mbit/s download, ...).
    targets: str = "/etc/probefleet/targets.toml"
    # Local fsynced spool while InfluxDB is down, and the dead-letter store.
    state_dir: str = "/var/lib/probefleet-collector"
    # Alert rules, silences and notifiers (sample: config/alerts.sample.toml); empty = off.
    alerts: str = ""
    # The area registry (GeoJSON, collector/report/README.md): survey points get the tag of
    # the hamlet they lie in. Empty: no hamlet tags.
    areas: str = ""


class SequencesSection(Section, frozen=True, kw_only=True):
    """Per-probe sequence tracking: StoredAck after every write, ResendRequest for gaps."""

    # A missing seq is asked for only after this long (results may arrive out of order).
    resend_grace_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 60.0
    # The same gap is asked for again at most this often ...
    resend_interval_s: Annotated[float, msgspec.Meta(ge=1, le=86_400)] = 300.0
    # ... and this many times; then it waits (the probe re-publishes what it holds, and
    # its held_from_seq settles what it does not): never given up, never acknowledged.
    resend_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 12
    # Resend requests published per second at most, over the whole fleet.
    resend_max_per_s: Annotated[float, msgspec.Meta(gt=0, le=10_000)] = 20.0


class ClockSection(Section, frozen=True, kw_only=True):
    """Results from probes whose clock is not synchronised are re-based on their boot."""

    # A "synchronised" timestamp this far ahead of the collector's clock is not trusted.
    max_future_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 300.0
    # A "synchronised" result whose measured_at - uptime differs from its boot's known start
    # by more than this (plus 100 ppm of its uptime) had its clock stepped: it is re-based.
    step_tolerance_s: Annotated[float, msgspec.Meta(ge=0.001, le=86_400)] = 1.0
    # Unsynchronised results wait this long for their boot's time to become known, then are
    # written with a time estimated from when they arrived.
    quarantine_max_s: Annotated[float, msgspec.Meta(ge=0, le=30 * 86_400)] = 86_400.0


class DeadLettersSection(Section, frozen=True, kw_only=True):
    """Rejected messages, kept with the reason in state_dir/deadletters.sqlite."""

    # Payload bytes kept per message (the wire limit: any legal message is kept whole).
    payload_max_bytes: Annotated[int, msgspec.Meta(ge=0, le=1 << 24)] = 65_536
    # The oldest are deleted beyond this many rows ...
    max_rows: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)] = 100_000
    # ... or beyond this many megabytes of kept payloads and reasons, whichever comes first;
    # the file shrinks again as they go (a flood of 60 kB junk grew it at 30-40 MB/s).
    max_mb: Annotated[float, msgspec.Meta(ge=1.0, le=1_000_000.0)] = 512.0


class PresenceSection(Section, frozen=True, kw_only=True):
    """Online / offline per probe, from its status topic (and Last Will) and its results."""

    # A probe that says it is online but sent nothing for this long is "silent" (offline).
    # Make it a few health intervals; with N collectors sharing the stream, N times that.
    offline_after_s: Annotated[float, msgspec.Meta(ge=10, le=30 * 86_400)] = 900.0


class MetricsSection(Section, frozen=True, kw_only=True):
    """The collector's own points in InfluxDB: ``collector`` and ``presence``."""

    # How often; 0 writes none (they are still logged once a minute).
    interval_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 60.0


class RollupsSection(Section, frozen=True, kw_only=True):
    """Hourly and daily aggregates written as results arrive (collector/rollups_*.py), read
    by the annual report and the Year dashboard instead of every raw point."""

    enabled: bool = True
    # Buckets touched since the last flush are written as a new part of their hour.
    flush_s: Annotated[float, msgspec.Meta(ge=10, le=3600)] = 600.0
    # The province's clock: daily rollups are local days, peak hours local hours (keep them
    # equal to the report's [report] timezone and peak hours).
    timezone: str = "Asia/Ho_Chi_Minh"
    peak_start_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 19
    peak_end_hour: Annotated[int, msgspec.Meta(ge=1, le=24)] = 23
    # A local day is compacted into daily rollups this long after it ends (late parts of
    # the last flush land first).
    compact_grace_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 7200.0

    def __post_init__(self) -> None:
        if self.peak_start_hour >= self.peak_end_hour:
            raise msgspec.ValidationError(
                f"`peak_start_hour` ({self.peak_start_hour}) must be before "
                f"`peak_end_hour` ({self.peak_end_hour})"
            )
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.timezone)
        except (ValueError, KeyError, OSError):
            raise msgspec.ValidationError(
                f"`timezone`: {self.timezone!r} is not an IANA time zone"
            ) from None


class CollectorConfig(Section, frozen=True, kw_only=True):
    mqtt: MqttSection = msgspec.field(default_factory=MqttSection)
    influxdb: InfluxSection = msgspec.field(default_factory=InfluxSection)
    files: FilesSection = msgspec.field(default_factory=FilesSection)
    sequences: SequencesSection = msgspec.field(default_factory=SequencesSection)
    clock: ClockSection = msgspec.field(default_factory=ClockSection)
    deadletters: DeadLettersSection = msgspec.field(default_factory=DeadLettersSection)
    cardinality: CardinalitySection = msgspec.field(default_factory=CardinalitySection)
    presence: PresenceSection = msgspec.field(default_factory=PresenceSection)
    metrics: MetricsSection = msgspec.field(default_factory=MetricsSection)
    rollups: RollupsSection = msgspec.field(default_factory=RollupsSection)
    log: configkit.LogSection = msgspec.field(default_factory=configkit.LogSection)

    def resolve(self, env: dict[str, str], problems: list[str], base: Path) -> CollectorConfig:
        """Cross-key rules and secrets; appends to ``problems`` rather than stopping."""
        token = configkit.read_secret(
            key="influxdb.token",
            value=self.influxdb.token,
            file_value=self.influxdb.token_file,
            env_name="PROBEFLEET_INFLUXDB_TOKEN",
            env=env,
            base=base,
            problems=problems,
        )
        return msgspec.structs.replace(
            self,
            mqtt=self.mqtt.resolved(env, base, problems),
            influxdb=msgspec.structs.replace(self.influxdb, token=token),
        )


def load_config(path: Path, env: dict[str, str] | None = None) -> CollectorConfig:
    return configkit.load(path, CollectorConfig, env=env)
