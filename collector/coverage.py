"""Hamlet coverage as data: the rules (the targets file's ``[coverage]``) and the verdicts.

Mobile (per hamlet and serving operator, from survey points): **not surveyed** with fewer
than ``min_points`` points with a good fix in the hamlet; else **covered** when at least
``share_pct`` % of them are "good" — on one of ``technologies`` (4G/5G), RSRP at least
``rsrp_min_dbm`` and, where the modem reports it, SINR at least ``snr_min_db`` — and, where
stop tests were run (points with ``download_mbps``), their median meets the mobile download
target; else **not covered**. "Not surveyed" is never "covered". A point without RSRP is
not good (no evidence of signal). Usage::

    rule = targets.coverage.mobile
    mobile_verdict(points_of_one_hamlet_and_operator, rule, target_mbps=60.0)
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Final, Literal

import msgspec
from probefleet.core import wire
from probefleet.core.configkit import Section

CoverageVerdict = Literal["covered", "not_covered", "not_surveyed"]
VERDICTS: Final[tuple[CoverageVerdict, ...]] = ("covered", "not_covered", "not_surveyed")


class MobileCoverageRule(Section, frozen=True, kw_only=True):
    """When survey points make a hamlet covered by an operator's mobile broadband."""

    min_points: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 20
    share_pct: Annotated[float, msgspec.Meta(gt=0, le=100)] = 90.0
    technologies: list[wire.Technology] = msgspec.field(
        default_factory=lambda: ["lte", "nr5g_nsa", "nr5g_sa"]
    )
    rsrp_min_dbm: Annotated[float, msgspec.Meta(ge=-160, le=0)] = -110.0
    snr_min_db: Annotated[float, msgspec.Meta(ge=-50, le=60)] = 0.0

    def __post_init__(self) -> None:
        if not self.technologies:
            raise msgspec.ValidationError('`technologies`: name at least one (e.g. "lte")')


class CoverageTargets(Section, frozen=True, kw_only=True):
    mobile: MobileCoverageRule = msgspec.field(default_factory=MobileCoverageRule)


@dataclass(frozen=True, slots=True)
class SurveySample:
    """One survey point of a hamlet, as the report reads it back (None: not reported)."""

    operator: str  # radio_operator (MCC+MNC); "" without a radio context
    technology: str  # radio_technology; "" without one
    rsrp_dbm: float | None = None
    nr_rsrp_dbm: float | None = None
    snr_db: float | None = None
    nr_snr_db: float | None = None
    download_mbps: float | None = None


def is_good(point: SurveySample, rule: MobileCoverageRule) -> bool:
    """On 4G/5G with enough signal. 5G SA has no LTE leg: its NR figures count first."""
    if point.technology not in rule.technologies:
        return False
    if point.technology == "nr5g_sa":
        rsrp = point.nr_rsrp_dbm if point.nr_rsrp_dbm is not None else point.rsrp_dbm
        snr = point.nr_snr_db if point.nr_snr_db is not None else point.snr_db
    else:
        rsrp = point.rsrp_dbm if point.rsrp_dbm is not None else point.nr_rsrp_dbm
        snr = point.snr_db if point.snr_db is not None else point.nr_snr_db
    if rsrp is None or rsrp < rule.rsrp_min_dbm:
        return False
    return snr is None or snr >= rule.snr_min_db


@dataclass(frozen=True, slots=True)
class MobileFinding:
    """One hamlet and operator: the verdict and what it was computed from."""

    verdict: CoverageVerdict
    points: int
    good_points: int
    stop_tests: int
    download_median_mbps: float | None

    @property
    def good_share(self) -> float | None:
        return self.good_points / self.points if self.points else None


def mobile_verdict(
    points: Iterable[SurveySample], rule: MobileCoverageRule, target_mbps: float | None
) -> MobileFinding:
    found = list(points)
    good = sum(1 for p in found if is_good(p, rule))
    downloads = [p.download_mbps for p in found if p.download_mbps is not None]
    median = statistics.median(downloads) if downloads else None
    weak = 100.0 * good < rule.share_pct * len(found)
    slow = median is not None and target_mbps is not None and median < target_mbps
    verdict: CoverageVerdict
    if len(found) < rule.min_points:
        verdict = "not_surveyed"
    else:
        verdict = "not_covered" if weak or slow else "covered"
    return MobileFinding(verdict, len(found), good, len(downloads), median)


def any_operator(findings: Iterable[MobileFinding]) -> CoverageVerdict:
    """A hamlet is covered when one operator covers it; surveyed when one was surveyed."""
    verdicts = {f.verdict for f in findings}
    if "covered" in verdicts:
        return "covered"
    return "not_covered" if "not_covered" in verdicts else "not_surveyed"
