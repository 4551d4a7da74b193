"""CSV and JSON writers: the same figures as the HTML, with stable English keys.

CSV: one row per area and access type (``level`` = commune, district, province, operator),
areas without data included with ``has_data`` = 0, then the hamlet items' rows
(coverage_tables.py); ``basis_<item>`` says in the report's
language what ``verdict_<item>`` was computed from. JSON: the whole report, one document.
Shares are 0-1; None is an empty CSV cell and a JSON null.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from typing import Any, Final

from probefleet.collector.report import coverage_tables
from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.model import (
    PLAN_ITEMS,
    AccessFigures,
    Area,
    RadioRow,
    Report,
    Speed,
)
from probefleet.collector.report.radio import operator_label, technology_label

CSV_COLUMNS: Final = (
    "level",
    "province",
    "district",
    "commune",
    "operator",
    "has_data",
    "probes",
    "probes_seen",
    "uptime_share",
    "access",
    "target_download_mbps",
    "runs_ok",
    "runs_failed",
    "runs_skipped",
    "download_tests",
    "download_median_mbps",
    "download_p10_mbps",
    "download_tests_at_target",
    "download_share_at_target",
    "download_peak_median_mbps",
    "download_peak_tests",
    "upload_tests",
    "upload_median_mbps",
    "upload_p10_mbps",
    "upload_peak_median_mbps",
    "latency_rtt_median_ms",
    "latency_jitter_ms",
    "latency_loss_pct",
    "ipv6_probes_ready",
    "ipv6_probes_measured",
    "ipv6_works_share",
    "data_network_runs",
    "data_network_reachable_share",
    "services_min_availability",
    "services_worst_service",
    "services_worst_commune",
    "services_worst_availability",
    *(f"verdict_{item}" for item in PLAN_ITEMS),
    *(f"basis_{item}" for item in PLAN_ITEMS),
    *coverage_tables.CSV_COLUMNS,  # the hamlet rows (coverage_tables.py)
)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _speed(s: Speed) -> dict[str, Any]:
    return {
        "median_mbps": s.median_mbps,
        "p10_mbps": s.p10_mbps,
        "tests": s.tests,
        "tests_with_target": s.tests_with_target,
        "tests_at_target": s.tests_at_target,
        "share_at_target": s.share_at_target,
        "peak_median_mbps": s.peak_median_mbps,
        "peak_p10_mbps": s.peak_p10_mbps,
        "peak_tests": s.peak_tests,
        "peak_tests_at_target": s.peak_tests_at_target,
    }


def _access(a: AccessFigures) -> dict[str, Any]:
    return {
        "target_download_mbps": a.target_download_mbps,
        "runs_ok": a.runs_ok,
        "runs_failed": a.runs_failed,
        "runs_skipped": a.runs_skipped,
        "download": _speed(a.download),
        "upload": _speed(a.upload),
        "latency": {
            "rtt_median_ms": a.latency.rtt_median_ms,
            "jitter_ms": a.latency.jitter_ms,
            "loss_pct": a.latency.loss_pct,
            "runs": a.latency.runs,
        },
    }


def _min_availability(area: Area) -> float | None:
    values = [s.availability for s in area.services.values() if s.availability is not None]
    return min(values) if values else None


def _bases(area: Area, t: Strings) -> dict[str, Any]:
    """Per plan item: the basis in figures, and in the report's words (``text``)."""
    return {
        item: {**dataclasses.asdict(b), "text": t.basis(b, area.level)}
        for item, b in area.bases.items()
    }


def area_doc(area: Area, t: Strings) -> dict[str, Any]:
    return {
        "level": area.level,
        "name": area.name,
        "province": area.province,
        "district": area.district,
        "commune": area.commune,
        "operator": area.operator,
        "has_data": area.has_data,
        "probes": area.probes,
        "probes_seen": area.probes_seen,
        "hours_seen": area.hours_seen,
        "hours_expected": area.hours_expected,
        "uptime_share": area.uptime,
        "access": {k: _access(v) for k, v in sorted(area.access.items())},
        "ipv6": {
            "probes_ready": area.ipv6_probes_ready,
            "probes_measured": area.ipv6_probes_measured,
            "works_share": area.ipv6_works_share,
            "runs": area.ipv6_runs,
        },
        "data_network": {
            "runs": area.data_network_runs,
            "runs_answered": area.data_network_answered,
            "reachable_share": area.data_network_share,
            "rtt_median_ms": area.data_network_rtt_median_ms,
        },
        "services": {
            name: {
                "availability": s.availability,
                "checks": s.checks,
                "total_median_ms": s.total_median_ms,
            }
            for name, s in sorted(area.services.items())
        },
        "communes": area.communes,
        "communes_with_data": area.communes_with_data,
        "verdicts": dict(area.verdicts),
        "verdict_basis": _bases(area, t),
    }


def _radio_rows(rows: list[RadioRow]) -> list[dict[str, Any]]:
    return [
        {
            "technology": r.technology or None,  # null: no radio context
            "technology_label": technology_label(r.technology) if r.technology else None,
            "operator_code": r.operator_code or None,
            "operator_label": operator_label(r.operator_code) if r.operator_code else None,
            "tests": r.tests,
            "median_mbps": r.median_mbps,
            "p10_mbps": r.p10_mbps,
            "tests_at_target": r.tests_at_target,
        }
        for r in rows
    ]


def _mobile_radio(report: Report) -> list[dict[str, Any]]:
    return [
        {
            "province": m.province,
            "source": "raw points",
            "tests": m.tests,
            "by_technology": _radio_rows(m.by_technology),
            "by_operator": _radio_rows(m.by_operator),
            "by_operator_technology": _radio_rows(m.by_operator_technology),
        }
        for m in report.mobile_radio
    ]


def _map(report: Report) -> dict[str, Any]:
    info = report.map
    return {
        "areas_file": info.areas_file or None,
        "synthetic": info.registry.synthetic if info.registry else None,
        "commune_codes": [
            {"district": d, "commune": c, "code": code}
            for (d, c), code in sorted(info.codes.items())
        ],
        "communes_without_polygon": [
            {"district": m.district, "commune": m.commune, "reason": m.reason, "why": m.text}
            for m in info.missing
        ],
    }


def render_json(report: Report, t: Strings) -> str:
    m = report.methodology
    ex = m.exclusions
    doc = {
        "report": "probefleet annual compliance report",
        "lang": t.lang,
        "period": {"from": _iso(report.start), "to": _iso(report.end)},
        "generated_at": _iso(report.generated_at),
        "empty": report.empty,
        "notes": [t("empty_period")] if report.empty else [],
        "targets_download_mbps": report.targets_mbps,
        "verdict_labels": {v: t(v) for v in ("met", "not_met", "not_measured")},
        "plan_items": {item: t(item) for item in PLAN_ITEMS},
        "province": [area_doc(a, t) for a in report.province],
        "districts": [area_doc(a, t) for a in report.districts],
        "communes": [area_doc(a, t) for a in report.communes],
        "communes_without_data": [c.commune for c in report.communes if not c.has_data],
        "operators": [area_doc(a, t) for a in report.operators],
        "mobile_radio": _mobile_radio(report),
        "map": _map(report),
        "hamlet_coverage": coverage_tables.coverage_doc(report.coverage),
        "charts": {
            "download_bands": {
                access: [
                    {"low_ratio": b.low_ratio, "high_ratio": b.high_ratio, "tests": b.tests}
                    for b in bands
                ]
                for access, bands in sorted(report.bands.items())
            },
            "download_by_hour": {
                access: [
                    {
                        "hour": h.hour,
                        "median_of_hourly_medians_mbps": h.median_mbps,
                        "tests": h.tests,
                        "tests_at_target": h.tests_at_target,
                    }
                    for h in hours
                ]
                for access, hours in sorted(report.hours.items())
            },
        },
        "methodology": {
            "timezone": m.timezone,
            "peak_hours": [m.peak_start_hour, m.peak_end_hour],
            "targets_year": m.targets_year,
            "targets_source": m.targets_source,
            "data_network_targets": m.data_network_targets,
            "latency_targets": m.latency_targets,
            "services": m.services,
            "servers": [vars(s) for s in m.servers],
            "exclusions": {
                "runs_total": ex.runs_total,
                "failed": ex.failed,
                "skipped": ex.skipped,
                "skipped_busy": ex.skipped_busy,
                "skipped_cross_traffic": ex.skipped_cross_traffic,
                "unsynced": ex.unsynced,
                "rebased": ex.rebased,
                "estimated": ex.estimated,
                "quarantined_now": ex.quarantined_now,
                "deadletters": ex.deadletters,
                "deadletter_reasons": [vars(d) for d in ex.deadletter_reasons],
                "state_note": ex.state_note,
            },
        },
        "statements": report.statements,
        "query_seconds": round(report.query_seconds, 3),
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


def render_csv(report: Report, t: Strings) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for area in [*report.province, *report.districts, *report.communes, *report.operators]:
        base: dict[str, Any] = {
            "level": area.level,
            "province": area.province,
            "district": area.district,
            "commune": area.commune,
            "operator": area.operator,
            "has_data": area.has_data,
            "probes": area.probes,
            "probes_seen": area.probes_seen,
            "uptime_share": area.uptime,
            "ipv6_probes_ready": area.ipv6_probes_ready,
            "ipv6_probes_measured": area.ipv6_probes_measured,
            "ipv6_works_share": area.ipv6_works_share,
            "data_network_runs": area.data_network_runs,
            "data_network_reachable_share": area.data_network_share,
            "services_min_availability": _min_availability(area),
            **{f"verdict_{i}": area.verdicts.get(i, "") for i in PLAN_ITEMS},
            **{f"basis_{i}": t.basis(b, area.level) for i, b in area.bases.items()},
        }
        worst = area.bases.get("services")
        if worst is not None and worst.worst_service:
            base.update(
                services_worst_service=worst.worst_service,
                services_worst_commune=worst.worst_commune,
                services_worst_availability=worst.share,
            )
        for access in sorted(area.access) or [""]:
            row = dict(base, access=access)
            a = area.access.get(access)
            if a is not None:
                d, u = a.download, a.upload
                row.update(
                    target_download_mbps=a.target_download_mbps,
                    runs_ok=a.runs_ok,
                    runs_failed=a.runs_failed,
                    runs_skipped=a.runs_skipped,
                    download_tests=d.tests,
                    download_median_mbps=d.median_mbps,
                    download_p10_mbps=d.p10_mbps,
                    download_tests_at_target=d.tests_at_target,
                    download_share_at_target=d.share_at_target,
                    download_peak_median_mbps=d.peak_median_mbps,
                    download_peak_tests=d.peak_tests,
                    upload_tests=u.tests,
                    upload_median_mbps=u.median_mbps,
                    upload_p10_mbps=u.p10_mbps,
                    upload_peak_median_mbps=u.peak_median_mbps,
                    latency_rtt_median_ms=a.latency.rtt_median_ms,
                    latency_jitter_ms=a.latency.jitter_ms,
                    latency_loss_pct=a.latency.loss_pct,
                )
            writer.writerow({k: _cell(row.get(k)) for k in CSV_COLUMNS})
    for row in coverage_tables.csv_rows(report):
        writer.writerow({k: _cell(row.get(k)) for k in CSV_COLUMNS})
    return out.getvalue()
