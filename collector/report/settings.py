"""The report's settings: a small TOML file (``config/report.sample.toml``), all optional.

Usage::

    settings = load_settings(path)        # ConfigError: every problem, key and file
    settings = ReportSettings()            # the defaults
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

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
    # The commune map's boundaries: a GeoJSON area registry (README, *The area registry*),
    # relative to this file's directory. Empty: the report has no map, and says so.
    areas_file: str = ""
    # The operators' declared FTTH coverage per hamlet: CSV files (hamlet_code, operator,
    # ftth_since), relative to this file's directory (README, *Hamlet coverage*). Empty: the
    # FTTH hamlet item is "not measured".
    ftth_declared_files: list[str] = []

    def problems(self) -> list[str]:
        """The cross-key rules the types cannot say, one line per problem (key = value: why)."""
        return cross_key_problems(msgspec.structs.asdict(self), "report.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def cross_key_problems(table: dict[str, Any], prefix: str = "") -> list[str]:
    """Rules across keys of a raw ``[report]`` table; values of the wrong type are skipped
    (configkit reports those), so this runs before the struct exists."""
    found: list[str] = []
    start, end = table.get("peak_start_hour"), table.get("peak_end_hour")
    start = queries.PEAK_START_HOUR if start is None else start
    end = queries.PEAK_END_HOUR if end is None else end
    if _is_int(start) and _is_int(end) and start >= end:
        found.append(
            f"{prefix}peak_start_hour = {start}: must be before {prefix}peak_end_hour ({end})"
        )
    zone = table.get("timezone")
    if isinstance(zone, str):
        try:
            ZoneInfo(zone)
        except (ValueError, KeyError, OSError):
            found.append(
                f"{prefix}timezone = {zone!r}: not an IANA time zone (e.g. {queries.LOCAL_TZ!r})"
            )
    return found


class ReportFile(Section, frozen=True, kw_only=True):
    report: ReportSettings = msgspec.field(default_factory=ReportSettings)

    def resolve(self, env: dict[str, str], problems: list[str], base: Path) -> ReportFile:
        """Cross-key rules; appends to ``problems`` rather than stopping (configkit.load)."""
        problems.extend(self.report.problems())
        if self.report.ftth_declared_files and not self.report.areas_file:
            problems.append(
                "report.ftth_declared_files: needs report.areas_file (the hamlets they name)"
            )

        def near(name: str) -> str:
            # Relative to the settings file, as a reader of the file expects.
            return name if not name or Path(name).is_absolute() else str(base / name)

        fixed = msgspec.structs.replace(
            self.report,
            areas_file=near(self.report.areas_file),
            ftth_declared_files=[near(f) for f in self.report.ftth_declared_files],
        )
        return msgspec.structs.replace(self, report=fixed)


def load_settings(path: Path | None) -> ReportSettings:
    """The ``[report]`` table of ``path`` (None: the defaults)."""
    if path is None:
        return ReportSettings()
    try:
        return configkit.load(path, ReportFile).report
    except configkit.ConfigError as exc:
        # A wrong type stops configkit before resolve(): add the cross-key problems of the
        # raw table, so that the file's every problem is listed at once.
        extra = [p for p in _raw_problems(path) if p not in exc.problems]
        if not extra:
            raise
        raise configkit.ConfigError(path, [*exc.problems, *extra]) from None


def _raw_problems(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []  # configkit already said why
    table = data.get("report")
    return cross_key_problems(table, "report.") if isinstance(table, dict) else []
