"""The report's settings: a small TOML file (``config/report.sample.toml``), all optional.

Usage::

    settings = load_settings(path)        # ConfigError names the key and the file
    settings = ReportSettings()            # the defaults
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec
from probefleet.collector import queries
from probefleet.core import configkit
from probefleet.core.configkit import Section

Share = Annotated[float, msgspec.Meta(ge=0, le=1)]
Hour = Annotated[int, msgspec.Meta(ge=0, le=24)]


class ReportSettings(Section, frozen=True, kw_only=True):
    """What the plan leaves to the Department: how to read its targets from probe data."""

    # The province's clock, for hours of the day and peak hours (IANA name).
    timezone: str = queries.LOCAL_TZ
    # Peak hours [start, end) on that clock; SamKnows/Ofcom use 19-23 (7-11 pm).
    peak_start_hour: Hour = queries.PEAK_START_HOUR
    peak_end_hour: Hour = queries.PEAK_END_HOUR
    # Latency targets (the agent's [[measurements.latency.targets]] host) on the provincial
    # specialised data network (Truyền số liệu chuyên dùng), e.g. the data centre's address
    # on it. Empty: that plan item is "not measured".
    data_network_targets: list[str] = []
    # A commune counts as connected to that network when this share of runs got an answer.
    data_network_min_share: Share = 0.95
    # Latency figures use these targets; empty = every target except the data network's.
    latency_targets: list[str] = []
    # Provincial services ([[measurements.service.checks]] name); empty = every service.
    services: list[str] = []
    # A service counts as available from a commune at this share of checks up.
    service_min_availability: Share = 0.99
    # A probe counts as IPv6-ready when IPv6 worked end to end in this share of its runs.
    ipv6_ready_min_share: Share = 0.5
    # Where the figures come from: "rollups" (the collector's daily rollups; whole days
    # only), "raw" (every point: exact medians, slow over a year), "auto" (rollups when the
    # period is whole days and its first and last day are rolled up, else raw).
    source: Literal["auto", "rollups", "raw"] = "auto"

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


class ReportFile(Section, frozen=True, kw_only=True):
    report: ReportSettings = msgspec.field(default_factory=ReportSettings)


def load_settings(path: Path | None) -> ReportSettings:
    """The ``[report]`` table of ``path`` (None: the defaults)."""
    if path is None:
        return ReportSettings()
    return configkit.load(path, ReportFile).report
