"""Typed figures of the report: per commune, district, province and operator; verdicts.

Units are in the names; shares are 0-1; None = not measured (never 0). Usage::

    report.communes[0].access["fixed"].download.median_mbps
    report.communes[0].verdicts["download_fixed"]      # "met" | "not_met" | "not_measured"
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final, Literal

from probefleet.collector.coverage import (
    CoverageVerdict,
    MobileCoverageRule,
    MobileFinding,
    SurveySample,
)
from probefleet.collector.report.areas import AreaRegistry, MissingPolygon

Verdict = Literal["met", "not_met", "not_measured"]
Level = Literal["commune", "district", "province", "operator"]
ACCESS_TYPES: Final = ("fixed", "mobile")
# The plan items a probe fleet measures (plan-targets.md), in the report's order.
PLAN_ITEMS: Final = (
    "download_mobile",
    "download_fixed",
    "coverage_mobile",
    "coverage_fixed",
    "data_network",
    "ipv6",
    "services",
)


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Speed:
    """One direction on one access type: all hours, and the peak hours."""

    median_mbps: float | None = None
    p10_mbps: float | None = None
    tests: int = 0
    tests_with_target: int = 0
    tests_at_target: int = 0
    peak_median_mbps: float | None = None
    peak_p10_mbps: float | None = None
    peak_tests: int = 0
    peak_tests_at_target: int = 0

    @property
    def share_at_target(self) -> float | None:
        return share(self.tests_at_target, self.tests_with_target)


@dataclass
class Latency:
    rtt_median_ms: float | None = None
    jitter_ms: float | None = None
    loss_pct: float | None = None
    runs: int = 0


@dataclass
class AccessFigures:
    """An area's figures for one access type (fixed FTTH or mobile 4G/5G)."""

    access: str
    target_download_mbps: float | None
    download: Speed = field(default_factory=Speed)
    upload: Speed = field(default_factory=Speed)
    runs_ok: int = 0
    runs_failed: int = 0
    runs_skipped: int = 0
    latency: Latency = field(default_factory=Latency)

    @property
    def runs(self) -> int:
        return self.runs_ok + self.runs_failed + self.runs_skipped


@dataclass
class ServiceFigures:
    availability: float | None = None
    checks: int = 0
    total_median_ms: float | None = None


# What a verdict was computed from (verdicts.py sets it, i18n.Strings.basis says it):
# "median": the area's one median over all its tests; "no_hamlet_evidence": a hamlet item
# without survey points or declared coverage for the area's hamlets; "hamlets": hamlets
# covered (part) of the area's hamlets (whole), surveyed (tests); "hamlets_ftth": hamlets
# with declared FTTH (part) of the area's hamlets (whole); "data_network", "ipv6",
# "services": the commune-level figure (or, for a district or the province, its communes').
BasisRule = Literal[
    "median",
    "no_hamlet_evidence",
    "hamlets",
    "hamlets_ftth",
    "data_network",
    "ipv6",
    "services",
]


@dataclass
class Basis:
    """The basis of one verdict of one area, in figures; None / 0 = not measured."""

    rule: BasisRule
    median_mbps: float | None = None  # "median"
    tests: int = 0  # "median": tests in that median; "services": checks of the worst
    communes_tested: int = 0  # "median", districts and the province: communes in it
    share: float | None = None  # data network answered / IPv6-ready probes / availability
    part: int = 0  # answered runs, ready probes
    whole: int = 0  # runs, probes measured
    threshold: float | None = None  # the share the item needs (0-1)
    worst_service: str = ""  # "services": the least available service ...
    worst_commune: str = ""  # ... and, for a district or the province, where
    communes_met: int = 0  # districts and the province: their communes' verdicts
    communes_not_met: int = 0
    communes_not_measured: int = 0


@dataclass
class Area:
    """A commune, a district, the province, or an operator (province-wide)."""

    level: Level
    province: str = ""
    district: str = ""
    commune: str = ""
    operator: str = ""
    probes: int = 0  # in the inventory (communes) or seen (roll-ups count both)
    probes_seen: int = 0  # sent at least one health report in the period
    hours_seen: int = 0
    hours_expected: int = 0
    access: dict[str, AccessFigures] = field(default_factory=dict)
    ipv6_probes_ready: int = 0
    ipv6_probes_measured: int = 0
    ipv6_works_share: float | None = None
    ipv6_runs: int = 0
    services: dict[str, ServiceFigures] = field(default_factory=dict)
    data_network_runs: int = 0
    data_network_answered: int = 0
    data_network_rtt_median_ms: float | None = None
    communes: int = 0  # roll-ups: communes in the inventory
    communes_with_data: int = 0
    communes_connected: int = 0  # roll-ups: to the data network
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    bases: dict[str, Basis] = field(default_factory=dict)  # per plan item, like verdicts

    @property
    def name(self) -> str:
        return {
            "commune": self.commune,
            "district": self.district,
            "province": self.province,
            "operator": self.operator,
        }[self.level]

    @property
    def uptime(self) -> float | None:
        return share(self.hours_seen, self.hours_expected)

    @property
    def tests(self) -> int:
        return sum(a.download.tests for a in self.access.values())

    @property
    def has_data(self) -> bool:
        return (
            bool(self.probes_seen or self.tests or self.ipv6_runs or self.data_network_runs)
            or any(s.checks for s in self.services.values())
            or any(a.runs for a in self.access.values())
        )

    @property
    def data_network_share(self) -> float | None:
        return share(self.data_network_answered, self.data_network_runs)


@dataclass
class ServerRow:
    method: str
    server: str
    ip_version: str
    tests: int
    download_streams: float | None
    upload_streams: float | None
    download_duration_s: float | None
    upload_duration_s: float | None


@dataclass
class DeadLetterCount:
    stage: str
    reason: str
    count: int


@dataclass
class Exclusions:
    """What the statistics leave out, and why."""

    runs_total: int = 0
    skipped: int = 0
    skipped_busy: int = 0
    skipped_cross_traffic: int = 0
    failed: int = 0
    unsynced: int = 0  # measured with an unsynchronised clock (kept when re-based)
    rebased: int = 0
    estimated: int = 0  # time guessed from arrival: excluded
    deadletters: int | None = None  # None: the state directory could not be read
    deadletter_reasons: list[DeadLetterCount] = field(default_factory=list)
    quarantined_now: int | None = None
    state_note: str = ""


@dataclass
class Band:
    """Tests whose download was in [low, high) times the target (high None: no bound)."""

    low_ratio: float
    high_ratio: float | None
    tests: int


@dataclass
class Hour:
    hour: int
    median_mbps: float | None  # median of that hour's hourly medians over the period
    tests: int
    tests_at_target: int


@dataclass
class Methodology:
    timezone: str
    peak_start_hour: int
    peak_end_hour: int
    targets_year: int | None
    targets_source: str
    servers: list[ServerRow] = field(default_factory=list)
    exclusions: Exclusions = field(default_factory=Exclusions)
    data_network_targets: list[str] = field(default_factory=list)
    latency_targets: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)


@dataclass
class RadioRow:
    """Mobile downloads of one technology and/or operator (radio context at the test's
    start); "" = the result carried no radio context (an older agent, no modem reading)."""

    technology: str = ""  # radio_technology tag: gsm, umts, lte, nr5g_nsa, nr5g_sa
    operator_code: str = ""  # radio_operator tag: MCC+MNC, e.g. "45204"
    median_mbps: float | None = None
    p10_mbps: float | None = None
    tests: int = 0
    tests_at_target: int = 0


@dataclass
class MobileRadio:
    """A province's mobile tests split by radio technology and serving operator, from raw
    throughput points (whatever ``[report] source`` says: the rollups do not keep them)."""

    province: str
    by_technology: list[RadioRow] = field(default_factory=list)
    by_operator: list[RadioRow] = field(default_factory=list)
    by_operator_technology: list[RadioRow] = field(default_factory=list)

    @property
    def tests(self) -> int:
        return sum(r.tests for r in self.by_technology)


@dataclass
class MapInfo:
    """What the commune map was drawn from: the area file, and the inventory's communes it
    has no polygon for."""

    areas_file: str = ""
    registry: AreaRegistry | None = None
    codes: dict[tuple[str, str], str] = field(default_factory=dict)  # commune -> its code
    missing: list[MissingPolygon] = field(default_factory=list)


FtthVerdict = Literal["covered", "not_covered"]
CheckOutcome = Literal["agrees", "disagrees", "no_tests"]


@dataclass
class HamletCoverage:
    """One hamlet of the registry: mobile verdicts per serving operator (radio_operator) and
    for any operator; FTTH as declared (None: no declared-coverage file)."""

    code: str
    name: str
    commune_code: str
    commune: str
    district_code: str
    district: str
    mobile: dict[str, MobileFinding] = field(default_factory=dict)  # operator -> finding
    mobile_verdict: CoverageVerdict = "not_surveyed"  # any operator
    points_no_radio: int = 0  # good-fix points without a radio context: no operator's
    ftth: dict[str, dt.date] = field(default_factory=dict)  # operator -> declared since
    ftth_verdict: FtthVerdict | None = None


@dataclass
class OperatorCount:
    covered: int = 0
    surveyed: int = 0


@dataclass
class CoverageCount:
    """Hamlets covered / surveyed / total in one commune, district or the province."""

    level: Literal["commune", "district", "province"]
    code: str
    name: str
    district: str = ""  # a commune's district name
    hamlets: int = 0
    mobile_covered: int = 0  # by at least one operator
    mobile_surveyed: int = 0
    by_operator: dict[str, OperatorCount] = field(default_factory=dict)
    ftth_covered: int | None = None  # None: no declared-coverage file

    @property
    def mobile_share(self) -> float | None:
        return share(self.mobile_covered, self.hamlets)

    @property
    def ftth_share(self) -> float | None:
        return None if self.ftth_covered is None else share(self.ftth_covered, self.hamlets)


@dataclass
class FtthCheck:
    """A fixed probe of the inventory against the operators' declarations: its operator's
    declared FTTH where the probe is (its hamlet when the inventory gives lat/lon, else its
    commune)."""

    probe: str
    operator: str
    commune_code: str
    commune: str
    hamlet_code: str  # "" = only the commune is known
    outcome: CheckOutcome
    tests: int  # the commune's completed fixed tests in the period


@dataclass
class Coverage:
    """The plan's hamlet items (issue 22): every hamlet of the registry, the counts per
    area, and the FTTH cross-check."""

    rule: MobileCoverageRule
    target_mbps: float | None
    hamlets: list[HamletCoverage] = field(default_factory=list)
    areas: list[CoverageCount] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)  # radio_operator codes seen
    survey_points: int = 0  # good-fix points in a hamlet
    ftth_files: list[str] = field(default_factory=list)
    checks: list[FtthCheck] = field(default_factory=list)
    tracks: list[list[tuple[float, float]]] = field(default_factory=list)  # (lon, lat) per run


@dataclass
class Report:
    start: dt.datetime
    end: dt.datetime
    generated_at: dt.datetime
    targets_mbps: dict[str, float]  # download target per access type
    province: list[Area]
    districts: list[Area]
    communes: list[Area]
    operators: list[Area]
    methodology: Methodology
    bands: dict[str, list[Band]] = field(default_factory=dict)
    hours: dict[str, list[Hour]] = field(default_factory=dict)
    query_seconds: float = 0.0
    statements: int = 0
    mobile_radio: list[MobileRadio] = field(default_factory=list)
    map: MapInfo = field(default_factory=MapInfo)
    # Survey points read back per hamlet code (gather), and the verdicts made from them.
    survey: dict[str, list[SurveySample]] = field(default_factory=dict)
    survey_tracks: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # run_id
    coverage: Coverage | None = None

    @property
    def empty(self) -> bool:
        """No measurement at all in the period."""
        return not any(a.has_data for a in self.communes + self.province)
