"""Met / not met / not measured, per plan item (plan-targets.md) and area, with its basis.

- download_mobile / download_fixed: the area's median download (all hours, as i-Speed
  reports medians) against the targets file's download_mbps for that access type. For a
  district or the province this is one median over all its tests, not a vote of communes:
  the basis gives the tests and communes in it, and the communes' own verdicts beside it.
- coverage_mobile / coverage_fixed: the plan counts hamlets (thôn, ấp, khu phố). A probe at
  the commune office says nothing about a hamlet, so these are "not measured" here,
  whatever the office probe measured; hamlet_coverage.apply_coverage then sets them from
  survey points (mobile) and the operators' declared coverage (FTTH) where those exist: met
  when every hamlet of the area is covered (the plan's 100 %), else not met.
- data_network: a commune is connected when ``data_network_min_share`` of its runs to the
  data network's targets got an answer.
- ipv6: a probe is ready when IPv6 worked end to end in ``ipv6_ready_min_share`` of its
  runs; an area meets the item when the share of ready probes reaches the targets file's
  ``ipv6.works_pct`` (100 % when it sets none).
- services: every provincial service available in ``service_min_availability`` of checks;
  the basis names the least available service (and, above a commune, its commune).

A district or the province meets a commune-level item (data network, services) when every
commune measured meets it, and at least one was measured.
"""

from __future__ import annotations

from probefleet.collector.inventory import TargetsFile
from probefleet.collector.report.model import Area, Basis, Report, Verdict
from probefleet.collector.report.settings import ReportSettings

COVERAGE_ITEMS = ("coverage_mobile", "coverage_fixed")
COMMUNE_ITEMS = ("data_network", "services")


def _cmp(value: float | None, threshold: float | None) -> Verdict:
    if value is None or threshold is None:
        return "not_measured"
    return "met" if value >= threshold else "not_met"


def _all(verdicts: list[Verdict]) -> Verdict:
    measured = [v for v in verdicts if v != "not_measured"]
    if not measured:
        return "not_measured"
    return "met" if all(v == "met" for v in measured) else "not_met"


def _count(basis: Basis, verdicts: list[Verdict]) -> Basis:
    basis.communes_met = verdicts.count("met")
    basis.communes_not_met = verdicts.count("not_met")
    basis.communes_not_measured = verdicts.count("not_measured")
    return basis


def _worst_service(areas: list[Area]) -> tuple[str, str, float, int] | None:
    """(service, commune, availability, checks) of the least available service."""
    found = [
        (s.availability, name, a.commune, s.checks)
        for a in areas
        for name, s in sorted(a.services.items())
        if s.checks and s.availability is not None
    ]
    if not found:
        return None
    availability, name, commune, checks = min(found, key=lambda f: f[0])
    return name, commune, availability, checks


def _services_basis(areas: list[Area], threshold: float) -> Basis:
    basis = Basis("services", threshold=threshold)
    worst = _worst_service(areas)
    if worst is not None:
        basis.worst_service, basis.worst_commune, basis.share, basis.tests = worst
    return basis


def commune_level(area: Area, settings: ReportSettings) -> dict[str, Verdict]:
    services = [
        _cmp(s.availability, settings.service_min_availability)
        for s in area.services.values()
        if s.checks
    ]
    threshold = settings.data_network_min_share
    area.bases["data_network"] = Basis(
        "data_network",
        share=area.data_network_share,
        part=area.data_network_answered,
        whole=area.data_network_runs,
        threshold=threshold,
    )
    area.bases["services"] = _services_basis([area], settings.service_min_availability)
    return {
        "coverage_mobile": "not_measured",
        "coverage_fixed": "not_measured",
        "data_network": _cmp(area.data_network_share, threshold),
        "services": _all(services) if services else "not_measured",
    }


def apply_verdicts(report: Report, settings: ReportSettings, targets: TargetsFile | None) -> None:
    works_pct = targets.ipv6.works_pct if targets and targets.ipv6.works_pct is not None else 100.0
    for commune in report.communes:
        commune.verdicts.update(commune_level(commune, settings))
    for area in [*report.communes, *report.districts, *report.province]:
        members = [
            c
            for c in report.communes
            if c.province == area.province
            and (area.level == "province" or c.district == area.district)
        ]
        for access in ("mobile", "fixed"):
            item = f"download_{access}"
            figures = area.access.get(access)
            median = figures.download.median_mbps if figures else None
            area.verdicts[item] = _cmp(median, report.targets_mbps.get(access))
            area.bases[item] = Basis(
                "median",
                median_mbps=median,
                tests=figures.download.tests if figures else 0,
                threshold=report.targets_mbps.get(access),
            )
        ready = (
            area.ipv6_probes_ready / area.ipv6_probes_measured
            if area.ipv6_probes_measured
            else None
        )
        area.verdicts["ipv6"] = _cmp(None if ready is None else 100.0 * ready, works_pct)
        area.bases["ipv6"] = Basis(
            "ipv6",
            share=ready,
            part=area.ipv6_probes_ready,
            whole=area.ipv6_probes_measured,
            threshold=works_pct / 100.0,
        )
        for item in COVERAGE_ITEMS:
            area.verdicts[item] = "not_measured"
            area.bases[item] = Basis("no_hamlet_evidence")
        if area.level == "commune":
            continue
        area.communes = len(members)
        area.communes_with_data = sum(1 for c in members if c.has_data)
        area.communes_connected = sum(1 for c in members if c.verdicts["data_network"] == "met")
        for access in ("mobile", "fixed"):
            item = f"download_{access}"
            basis = _count(area.bases[item], [c.verdicts[item] for c in members])
            basis.communes_tested = sum(
                1 for c in members if access in c.access and c.access[access].download.tests
            )
        area.bases["data_network"] = Basis(
            "data_network",
            share=area.data_network_share,
            part=area.data_network_answered,
            whole=area.data_network_runs,
            threshold=settings.data_network_min_share,
        )
        area.bases["services"] = _services_basis(members, settings.service_min_availability)
        for item in (*COVERAGE_ITEMS, *COMMUNE_ITEMS, "ipv6"):
            verdicts = [c.verdicts[item] for c in members]
            if item != "ipv6":
                area.verdicts[item] = _all(verdicts)
            _count(area.bases[item], verdicts)
