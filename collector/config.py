"""The collector's config file (TOML): its shape and every default, in one place.

See ``config/collector.sample.toml`` for the annotated version. Load with :func:`load_config`;
it raises :class:`agent.configkit.ConfigError` listing every problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from agent import config as agent_config
from agent import configkit
from agent.measurements.base import Section


class MqttSection(agent_config.MqttSection, frozen=True, kw_only=True):
    """The agent's connection settings, plus what a persistent, shared consumer needs."""

    username: str = "collector"
    # Fixed, so the broker keeps this collector's session (and queue) across restarts.
    client_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = (
        "probefleet-collector"
    )
    # Longer than any outage we mean to survive: a week.
    session_expiry_s: Annotated[int, msgspec.Meta(ge=60, le=2**32 - 1)] = 7 * 86_400
    # Un-acked messages the broker may hand us at once (MQTT v5 receive maximum).
    receive_maximum: Annotated[int, msgspec.Meta(ge=1, le=65_535)] = 1000
    # Empty: a plain subscription. A name: a shared one ($share/<group>/...) for scale-out.
    share_group: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{0,64}$")] = ""


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


class FilesSection(Section, frozen=True, kw_only=True):
    # Probe -> commune, district, operator and access type per interface.
    inventory: str = "/etc/probefleet/inventory.toml"
    # The plan's targets (fixed 150 Mbit/s, mobile 60 Mbit/s download, ...).
    targets: str = "/etc/probefleet/targets.toml"
    # Local fsynced spool while InfluxDB is down, and the dead-letter store.
    state_dir: str = "/var/lib/probefleet-collector"


class CollectorConfig(Section, frozen=True, kw_only=True):
    mqtt: MqttSection = msgspec.field(default_factory=MqttSection)
    influxdb: InfluxSection = msgspec.field(default_factory=InfluxSection)
    files: FilesSection = msgspec.field(default_factory=FilesSection)
    log: agent_config.LogSection = msgspec.field(default_factory=agent_config.LogSection)

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
