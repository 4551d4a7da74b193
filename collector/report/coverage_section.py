"""The HTML report's hamlet coverage section: counts per area, every hamlet, the map.

Usage (html.py)::

    coverage_section(report, t)     # "" when the report has no hamlet registry at all
"""

from __future__ import annotations

import dataclasses
from typing import Final

from probefleet.collector.report.areas import AreaRegistry
from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.model import Coverage, CoverageCount, Report
from probefleet.collector.report.radio import operator_label
from probefleet.collector.report.sections import nb, td, th
from probefleet.collector.report.svgmap import svg_map

# The map's three fills are the verdict palette's (svgmap.py): covered = met, not covered =
# not met, not surveyed = hatched like not measured.
AS_MAP: Final = {"covered": "met", "not_covered": "not_met", "not_surveyed": "not_measured"}


def _frac(t: Strings, part: int | None, whole: int) -> str:
    return "–" if part is None else f"{t.num(part, 0)} / {t.num(whole, 0)}"


def _area_name(t: Strings, c: CoverageCount) -> str:
    if c.level == "province":
        return t("province")
    return c.name if c.level == "district" else f"{c.name} ({c.district})" if c.district else c.name


def _counts(t: Strings, coverage: Coverage) -> str:
    ops = coverage.operators
    head = [
        th(t("coverage_area")),
        th(t("coverage_hamlets"), "num"),
        th(t("coverage_mobile_any"), "num"),
    ]
    head += [th(operator_label(op), "num") for op in ops]
    head += [
        th(t("coverage_kpi"), "num"),
        th(t("coverage_ftth"), "num"),
        th(t("coverage_kpi"), "num"),
    ]
    rows = []
    for c in coverage.areas:
        cells = [
            td(_area_name(t, c)),
            td(t.num(c.hamlets, 0), "num"),
            td(f"{t.num(c.mobile_covered, 0)} / {t.num(c.mobile_surveyed, 0)}", "num"),
        ]
        for op in ops:
            by = c.by_operator.get(op)
            cells.append(td(_frac(t, by.covered, by.surveyed) if by else "–", "num"))
        cells += [
            td(t.pct(c.mobile_share), "num"),
            td(_frac(t, c.ftth_covered, c.hamlets), "num"),
            td(t.pct(c.ftth_share), "num"),
        ]
        rows.append(f'<tr class="cov-{c.level}">{"".join(cells)}</tr>')
    return (
        f'<table id="coverage-areas"><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _hamlets(t: Strings, coverage: Coverage) -> str:
    head = [
        th(t("coverage_hamlet")),
        th(t("commune")),
        th(t("mobile")),
        th(t("operator")),
        th(t("coverage_points"), "num"),
        th(t("coverage_stop"), "num"),
        th(t("coverage_ftth_by")),
    ]
    rows = []
    for h in coverage.hamlets:
        ops = sorted(h.mobile.items())
        detail = "; ".join(f"{operator_label(op)}: {t(f.verdict)}" for op, f in ops) or "–"
        points = "; ".join(f"{t.num(f.points, 0)} ({t.num(f.good_points, 0)})" for _, f in ops)
        stop = "; ".join(
            f"{t.num(f.download_median_mbps)} Mbit/s" for _, f in ops if f.download_median_mbps
        )
        ftth = ", ".join(f"{op} ({since.isoformat()})" for op, since in sorted(h.ftth.items()))
        if h.ftth_verdict is None:
            ftth = "–"
        rows.append(
            f'<tr data-code="{h.code}" data-verdict="{h.mobile_verdict}">'
            + td(f"{h.name} ({h.code})")
            + td(h.commune)
            + td(t(h.mobile_verdict), f"v-{AS_MAP[h.mobile_verdict]}")
            + td(detail)
            + td(points or "–", "num")
            + td(stop or "–", "num")
            + td(ftth or t("not_covered"))
            + "</tr>"
        )
    return (
        f'<table id="coverage-hamlets"><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def hamlet_map(registry: AreaRegistry, coverage: Coverage, t: Strings) -> str:
    """The communes that have hamlets, their hamlets filled by the mobile verdict (the
    commune map's drawing, one level down: hamlets as its areas, communes as its outlines)."""
    communes = {h.commune_code for h in coverage.hamlets}
    view = AreaRegistry(
        registry.path,
        tuple(dataclasses.replace(f, level="commune") for f in registry.at("hamlet"))
        + tuple(
            dataclasses.replace(f, level="district")
            for f in registry.at("commune")
            if f.code in communes
        ),
        registry.synthetic,
        registry.source,
    )
    legend = {AS_MAP[v]: t(v) for v in AS_MAP}
    verdicts = {h.code: AS_MAP[h.mobile_verdict] for h in coverage.hamlets}
    title = t("coverage_map")
    chart = svg_map(
        view,
        verdicts,
        title=title,
        legend=legend,
        map_id="hamlets",
        width=640,
        tracks=coverage.tracks,
    )
    return f'<figure id="coverage-map"><figcaption><b>{nb(title)}</b></figcaption>{chart}</figure>'


def coverage_section(report: Report, t: Strings) -> str:
    coverage = report.coverage
    registry = report.map.registry
    if coverage is None or registry is None:
        return f'<p class="sub" id="coverage-none">{nb(t("coverage_none"))}</p>'
    rule = coverage.rule
    rule_text = t("coverage_rule").format(
        min_points=rule.min_points,
        share_pct=t.num(rule.share_pct, 0),
        technologies=", ".join(rule.technologies),
        rsrp=t.num(rule.rsrp_min_dbm, 0),
        snr=t.num(rule.snr_min_db, 0),
        target=t.num(coverage.target_mbps, 0),
    )
    parts = [
        f'<p class="sub">{nb(rule_text)}</p>',
        _counts(t, coverage),
        hamlet_map(registry, coverage, t),
        _hamlets(t, coverage),
    ]
    if coverage.checks:
        rows = "".join(
            "<tr>"
            + td(c.probe)
            + td(c.operator)
            + td(c.commune)
            + td(c.hamlet_code or "–")
            + td(t(c.outcome))
            + td(t.num(c.tests, 0), "num")
            + "</tr>"
            for c in coverage.checks
        )
        head = "".join(
            th(x)
            for x in (
                t("coverage_probe"),
                t("operator"),
                t("commune"),
                t("coverage_hamlet"),
                t("coverage_check"),
                t("coverage_fixed_tests"),
            )
        )
        parts.append(
            f"<h3>{nb(t('coverage_checks'))}</h3>"
            f"<p class='sub'>{nb(t('coverage_checks_note'))}</p>"
            f'<table id="coverage-checks"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    return "".join(parts)
