"""Met / not met / not measured, per plan item (plan-targets.md) and area.

- download_mobile / download_fixed: the area's median download (all hours, as i-Speed
  reports medians) against the targets file's download_mbps for that access type.
- coverage_mobile / coverage_fixed: a commune is covered when its probe completed at least
  one test on that access type; failed runs only: not met; no runs: not measured.
- data_network: a commune is connected when ``data_network_min_share`` of its runs to the
  data network's targets got an answer.
- ipv6: a probe is ready when IPv6 worked end to end in ``ipv6_ready_min_share`` of its
  runs; an area meets the item when the share of ready probes reaches the targets file's
  ``ipv6.works_pct`` (100 % when it sets none).
- services: every provincial service available in ``service_min_availability`` of checks.

A district or the province meets a commune-level item (coverage, data network, services)
when every commune measured meets it, and at least one was measured.
"""

from __future__ import annotations

from probefleet.collector.inventory import TargetsFile
from probefleet.collector.report.model import Area, Report, Verdict
from probefleet.collector.report.settings import ReportSettings


def _cmp(value: float | None, threshold: float | None) -> Verdict:
    if value is None or threshold is None:
        return "not_measured"
    return "met" if value >= threshold else "not_met"


def _coverage(area: Area, access: str) -> Verdict:
    figures = area.access.get(access)
    if figures is None or figures.runs_ok + figures.runs_failed == 0:
        return "not_measured"
    return "met" if figures.download.tests > 0 else "not_met"


def _all(verdicts: list[Verdict]) -> Verdict:
    measured = [v for v in verdicts if v != "not_measured"]
    if not measured:
        return "not_measured"
    return "met" if all(v == "met" for v in measured) else "not_met"


def commune_level(area: Area, settings: ReportSettings) -> dict[str, Verdict]:
    services = [
        _cmp(s.availability, settings.service_min_availability)
        for s in area.services.values()
        if s.checks
    ]
    return {
        "coverage_mobile": _coverage(area, "mobile"),
        "coverage_fixed": _coverage(area, "fixed"),
        "data_network": _cmp(area.data_network_share, settings.data_network_min_share),
        "services": _all(services) if services else "not_measured",
    }


def apply_verdicts(report: Report, settings: ReportSettings, targets: TargetsFile | None) -> None:
    works_pct = targets.ipv6.works_pct if targets and targets.ipv6.works_pct is not None else 100.0
    for commune in report.communes:
        commune.verdicts.update(commune_level(commune, settings))
    for area in [*report.communes, *report.districts, *report.province]:
        for access in ("mobile", "fixed"):
            figures = area.access.get(access)
            median = figures.download.median_mbps if figures else None
            area.verdicts[f"download_{access}"] = _cmp(median, report.targets_mbps.get(access))
        ready = (
            100.0 * area.ipv6_probes_ready / area.ipv6_probes_measured
            if area.ipv6_probes_measured
            else None
        )
        area.verdicts["ipv6"] = _cmp(ready, works_pct)
        if area.level == "commune":
            continue
        members = [
            c
            for c in report.communes
            if c.province == area.province
            and (area.level == "province" or c.district == area.district)
        ]
        area.communes = len(members)
        area.communes_with_data = sum(1 for c in members if c.has_data)
        area.communes_connected = sum(1 for c in members if c.verdicts["data_network"] == "met")
        for item in ("coverage_mobile", "coverage_fixed", "data_network", "services"):
            area.verdicts[item] = _all([c.verdicts[item] for c in members])
