"""The hamlet items in the CSV and the JSON: the same rows as the HTML's coverage section.

CSV rows (after the area rows): ``level`` = ``hamlets_province`` / ``hamlets_district`` /
``hamlets_commune`` (hamlets covered / surveyed / total; ``mobile_operator`` empty = by any
operator, else one row per serving operator) and ``hamlet`` (one row per hamlet and
operator, plus its any-operator row). JSON: ``hamlet_coverage``.
"""

from __future__ import annotations

from typing import Any, Final

from probefleet.collector.report.model import Coverage, CoverageCount, HamletCoverage, Report

CSV_COLUMNS: Final = (
    "hamlet_code",
    "hamlet",
    "hamlets",
    "mobile_operator",
    "mobile_verdict",
    "mobile_points",
    "mobile_good_points",
    "mobile_stop_tests",
    "mobile_download_median_mbps",
    "hamlets_mobile_covered",
    "hamlets_mobile_surveyed",
    "hamlets_ftth_covered",
    "ftth_verdict",
    "ftth_operators",
)


def _place(count: CoverageCount) -> dict[str, Any]:
    if count.level == "commune":
        return {"district": count.district, "commune": count.name}
    return {"district": count.name} if count.level == "district" else {}


def count_rows(count: CoverageCount, province: str) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "level": f"hamlets_{count.level}",
        "province": province,
        **_place(count),
        "hamlets": count.hamlets,
        "hamlets_ftth_covered": count.ftth_covered,
    }
    rows = [
        dict(
            base,
            hamlets_mobile_covered=count.mobile_covered,
            hamlets_mobile_surveyed=count.mobile_surveyed,
        )
    ]
    for operator, by in sorted(count.by_operator.items()):
        rows.append(
            dict(
                base,
                mobile_operator=operator,
                hamlets_mobile_covered=by.covered,
                hamlets_mobile_surveyed=by.surveyed,
            )
        )
    return rows


def hamlet_rows(h: HamletCoverage, province: str) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "level": "hamlet",
        "province": province,
        "district": h.district,
        "commune": h.commune,
        "hamlet_code": h.code,
        "hamlet": h.name,
        "ftth_verdict": h.ftth_verdict,
        "ftth_operators": " ".join(sorted(h.ftth)),
    }
    rows = [dict(base, mobile_verdict=h.mobile_verdict)]
    for operator, f in sorted(h.mobile.items()):
        rows.append(
            dict(
                base,
                mobile_operator=operator,
                mobile_verdict=f.verdict,
                mobile_points=f.points,
                mobile_good_points=f.good_points,
                mobile_stop_tests=f.stop_tests,
                mobile_download_median_mbps=f.download_median_mbps,
            )
        )
    return rows


def csv_rows(report: Report) -> list[dict[str, Any]]:
    c = report.coverage
    if c is None:
        return []
    province = report.province[0].province if report.province else ""
    rows = [r for count in c.areas for r in count_rows(count, province)]
    return rows + [r for h in c.hamlets for r in hamlet_rows(h, province)]


def _count_doc(count: CoverageCount) -> dict[str, Any]:
    return {
        "level": count.level,
        "code": count.code or None,
        "name": count.name or None,
        "district": count.district or None,
        "hamlets": count.hamlets,
        "mobile": {
            "covered": count.mobile_covered,
            "surveyed": count.mobile_surveyed,
            "covered_share": count.mobile_share,
            "by_operator": {
                op: {"covered": by.covered, "surveyed": by.surveyed}
                for op, by in sorted(count.by_operator.items())
            },
        },
        "ftth": None
        if count.ftth_covered is None
        else {"covered": count.ftth_covered, "covered_share": count.ftth_share},
    }


def _hamlet_doc(h: HamletCoverage) -> dict[str, Any]:
    return {
        "code": h.code,
        "name": h.name,
        "commune_code": h.commune_code,
        "commune": h.commune,
        "district_code": h.district_code or None,
        "district": h.district or None,
        "mobile_verdict": h.mobile_verdict,
        "mobile": {
            op: {
                "verdict": f.verdict,
                "points": f.points,
                "good_points": f.good_points,
                "good_share": f.good_share,
                "stop_tests": f.stop_tests,
                "download_median_mbps": f.download_median_mbps,
            }
            for op, f in sorted(h.mobile.items())
        },
        "points_without_radio": h.points_no_radio,
        "ftth_verdict": h.ftth_verdict,
        "ftth_declared": {op: since.isoformat() for op, since in sorted(h.ftth.items())},
    }


def coverage_doc(coverage: Coverage | None) -> dict[str, Any] | None:
    if coverage is None:
        return None
    rule = coverage.rule
    return {
        "rule": {
            "min_points": rule.min_points,
            "share_pct": rule.share_pct,
            "technologies": list(rule.technologies),
            "rsrp_min_dbm": rule.rsrp_min_dbm,
            "snr_min_db": rule.snr_min_db,
            "download_target_mbps": coverage.target_mbps,
        },
        "survey_points": coverage.survey_points,
        "operators": coverage.operators,
        "ftth_declared_files": coverage.ftth_files,
        "areas": [_count_doc(c) for c in coverage.areas],
        "hamlets": [_hamlet_doc(h) for h in coverage.hamlets],
        "ftth_checks": [vars(c) for c in coverage.checks],
    }
