"""The standalone HTML report: inline CSS and SVG, no script, no external asset.

Usage::

    text = render_html(report, Strings("vi"))
"""

from __future__ import annotations

import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

from probefleet.collector.report.coverage_section import coverage_section
from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.model import PLAN_ITEMS, AccessFigures, Area, Report
from probefleet.collector.report.sections import map_section, nb, radio_section, td, th
from probefleet.collector.report.style import CSS
from probefleet.collector.report.svg import svg_bars, svg_hbars, svg_hours


def _td(text: str, cls: str = "") -> str:
    return td(text, cls)


def _th(text: str, cls: str = "") -> str:
    return th(text, cls)


def _verdict(t: Strings, verdict: str) -> str:
    return f'<td class="v {verdict}">{nb(t.verdict(verdict))}</td>'


def _verdict_with_basis(t: Strings, area: Area, item: str) -> str:
    """The verdict, and under it what it was computed from (the reader must not guess)."""
    verdict = area.verdicts.get(item, "not_measured")
    basis = area.bases.get(item)
    said = f'<span class="basis">{nb(t.basis(basis, area.level))}</span>' if basis else ""
    return f'<td class="v {verdict}">{nb(t.verdict(verdict))}{said}</td>'


def _worst_service(t: Strings, area: Area) -> str:
    """The least available service, named (and where, above a commune): "0,0 % (DVC,
    Nhơn Trạch)"; a bare number would not say which service to fix."""
    b = area.bases.get("services")
    if b is None or not b.worst_service:
        return "–"
    where = f", {b.worst_commune}" if area.level != "commune" and b.worst_commune else ""
    return f"{t.pct(b.share)} ({b.worst_service}{where})"


def _access_cells(t: Strings, a: AccessFigures | None) -> list[str]:
    if a is None:
        return [_td("–")] * 10
    d, u, lat = a.download, a.upload, a.latency
    return [
        _td(f"{d.tests:,}"),
        _td(t.num(d.median_mbps)),
        _td(t.num(d.p10_mbps)),
        _td(t.pct(d.share_at_target)),
        _td(t.num(d.peak_median_mbps)),
        _td(t.num(u.median_mbps)),
        _td(t.num(u.p10_mbps)),
        _td(t.num(lat.rtt_median_ms)),
        _td(t.num(lat.jitter_ms)),
        _td(t.num(lat.loss_pct, 2)),
    ]


_ACCESS_HEAD: Final = (
    ("tests", ""),
    ("download_median", "Mbit/s"),
    ("download_p10", "Mbit/s"),
    ("share_at_target", ""),
    ("peak_median", "Mbit/s"),
    ("upload_median", "Mbit/s"),
    ("upload_p10", "Mbit/s"),
    ("latency", "ms"),
    ("jitter", "ms"),
    ("loss", "%"),
)


def _area_head(t: Strings, name_cols: tuple[str, ...], places: bool) -> list[str]:
    head = [_th(t(c), "l") for c in name_cols]
    if places:
        head += [_th(t("probes_seen")), _th(t("uptime"))]
    head.append(_th(t("access"), "l"))
    for key, unit in _ACCESS_HEAD:
        head.append(_th(f"{t(key)}{' (' + unit + ')' if unit else ''}"))
    if places:
        head += [_th(t("ipv6_ready")), _th(t("data_network_reach"))]
        head += [_th(t("service_availability"))]
    return head


def _area_rows(t: Strings, area: Area, name_cols: tuple[str, ...], width: int) -> list[str]:
    """The rows of one area: one per access type (``width``: the table's columns)."""
    places = name_cols != ("operator",)
    names = [_td(getattr(area, c) or "–", "l") for c in name_cols]
    if not area.has_data:
        span = width - len(names)
        return [
            "<tr>" + "".join(names) + f'<td class="l not_measured" colspan="{span}">'
            f"{nb(t('no_data'))} ({area.probes} {nb(t('probes').lower())})</td></tr>"
        ]
    common = [
        _td(f"{area.probes_seen}/{max(area.probes, area.probes_seen)}"),
        _td(t.pct(area.uptime)),
    ]
    tail = [
        _td(f"{area.ipv6_probes_ready}/{area.ipv6_probes_measured}"),
        _td(t.pct(area.data_network_share)),
        _td(_worst_service(t, area), "l"),
    ]
    if not places:
        common, tail = [], []
    rows = []
    for i, access in enumerate(sorted(area.access) or [""]):
        label = t(access) if access else "–"
        cells = _access_cells(t, area.access.get(access))
        first = i == 0
        rows.append(
            "<tr>"
            + "".join(names if first else [_td("", "l")] * len(names))
            + "".join(common if first else [_td("")] * len(common))
            + _td(label, "l")
            + "".join(cells)
            + "".join(tail if first else [_td("")] * len(tail))
            + "</tr>"
        )
    return rows


def _area_table(t: Strings, areas: list[Area], *, name_cols: tuple[str, ...]) -> str:
    """One row per area and access type; operators get the speed columns only (probes,
    IPv6, services and verdicts belong to places, not to operators)."""
    head = _area_head(t, name_cols, name_cols != ("operator",))
    # One tbody per area: its access rows stay on one page.
    blocks = [
        '<tbody class="area">' + "".join(_area_rows(t, area, name_cols, len(head))) + "</tbody>"
        for area in areas
    ]
    return "<table><thead><tr>" + "".join(head) + "</tr></thead>" + "".join(blocks) + "</table>"


def _chip(t: Strings, area: Area, item: str) -> str:
    verdict = area.verdicts.get(item, "not_measured")
    basis = area.bases.get(item)
    said = f'<span class="basis">{nb(t.basis(basis, area.level))}</span>' if basis else ""
    return (
        f'<div class="chip v {verdict}" data-item="{item}">{nb(t("short_" + item))}: '
        f"<b>{nb(t.verdict(verdict))}</b>{said}</div>"
    )


def _commune_table(t: Strings, communes: list[Area]) -> str:
    """Each commune's figures and, right under them in the same unbreakable block, its
    verdicts with their bases: the reader never turns pages to match the two."""
    name_cols = ("district", "commune")
    head = _area_head(t, name_cols, True)
    blocks = []
    for area in communes:
        rows = _area_rows(t, area, name_cols, len(head))
        chips = "".join(_chip(t, area, item) for item in PLAN_ITEMS)
        rows.append(
            f'<tr class="vrow"><td class="l">{nb(t("commune_verdicts"))}</td>'
            f'<td class="wrap" colspan="{len(head) - 1}"><div class="chips">{chips}</div>'
            "</td></tr>"
        )
        where = nb(area.commune)
        blocks.append(f'<tbody class="area" data-commune="{where}">{"".join(rows)}</tbody>')
    return "<table><thead><tr>" + "".join(head) + "</tr></thead>" + "".join(blocks) + "</table>"


def _verdict_table(t: Strings, areas: list[Area], *, name_cols: tuple[str, ...]) -> str:
    """One row per area, one column per plan item: met / not met / not measured."""
    head = [_th(t(c), "l") for c in name_cols] + [_th(t(item)) for item in PLAN_ITEMS]
    rows = [
        "<tr>"
        + "".join(_td(getattr(area, c) or "–", "l") for c in name_cols)
        + "".join(_verdict_with_basis(t, area, item) for item in PLAN_ITEMS)
        + "</tr>"
        for area in areas
    ]
    return (
        "<table><thead><tr>"
        + "".join(head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _summary(t: Strings, report: Report) -> str:
    province = report.province[0] if report.province else None
    rows = []
    targets = {
        "download_mobile": f"≥ {t.num(report.targets_mbps.get('mobile'), 0)} Mbit/s",
        "download_fixed": f"≥ {t.num(report.targets_mbps.get('fixed'), 0)} Mbit/s",
        "coverage_mobile": "100 %",
        "coverage_fixed": "100 %",
        "data_network": "100 %",
        "ipv6": "–",
        "services": "–",
    }
    for item in PLAN_ITEMS:
        counts = {v: 0 for v in ("met", "not_met", "not_measured")}
        for c in report.communes:
            counts[c.verdicts.get(item, "not_measured")] += 1
        verdict = province.verdicts.get(item, "not_measured") if province else "not_measured"
        basis = province.bases.get(item) if province else None
        rows.append(
            f'<tr data-item="{item}">'
            + _td(t(item), "l")
            + _td(targets[item])
            + _verdict(t, verdict)
            + _td(t.basis(basis, "province") if basis else "–", "basis")
            + _td(str(counts["met"]))
            + _td(str(counts["not_met"]))
            + _td(str(counts["not_measured"]))
            + "</tr>"
        )
    head = "".join(
        [
            _th(t("plan_item"), "l"),
            _th(t("target")),
            _th(f"{t('verdict')} ({t('province')})"),
            _th(t("basis"), "l"),
            _th(f"{t('commune')}: {t('met')}"),
            _th(t("not_met")),
            _th(t("not_measured")),
        ]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figure(chart: str, caption: str) -> str:
    return f"<figure>{chart}<figcaption>{caption}</figcaption></figure>"


def _band_charts(t: Strings, report: Report) -> list[str]:
    figures = []
    for access, bands in sorted(report.bands.items()):
        labels = [
            f"{b.low_ratio:g}–{b.high_ratio:g}×"
            if b.high_ratio is not None
            else f"≥{b.low_ratio:g}×"
            for b in bands
        ]
        marker = next((i for i, b in enumerate(bands) if b.low_ratio == 1.0), None)
        target = report.targets_mbps.get(access)
        title = f"{t('chart_bands')} — {t(access)}"
        chart = svg_bars(
            labels,
            [b.tests for b in bands],
            title=title,
            marker_index=marker,
            marker_label=f"{t.num(target, 0)} Mbit/s",
        )
        total = sum(b.tests for b in bands)
        caption = f"{nb(title)} ({t.num(total, 0)} {nb(t('tests').lower())}). "
        figures.append(_figure(chart, caption + nb(t("chart_bands_note"))))
    return figures


def _hour_charts(t: Strings, report: Report) -> list[str]:
    m = report.methodology
    figures = []
    for access, hours in sorted(report.hours.items()):
        shares = [h.tests_at_target / h.tests if h.tests else None for h in hours]
        title = f"{t('chart_hours')} — {t(access)}"
        chart = svg_hours(
            shares,
            [h.median_mbps for h in hours],
            title=title,
            peak=(m.peak_start_hour, m.peak_end_hour),
            target=report.targets_mbps.get(access),
            tests=[h.tests for h in hours],
            tests_label=t("chart_tests_row"),
        )
        total = sum(h.tests for h in hours)
        caption = (
            f"{nb(title)} ({nb(m.timezone)}; {t.num(total, 0)} "
            f"{nb(t('tests').lower())}). {nb(t('chart_hours_note'))}"
        )
        figures.append(_figure(chart, caption))
    return figures


def _operator_chart(t: Strings, report: Report) -> list[str]:
    ops = [
        (
            f"{o.operator} · {t(a.access)} (n={a.download.tests:,})",
            a.download.median_mbps,
            a.target_download_mbps,
        )
        for o in report.operators
        for a in (o.access[k] for k in sorted(o.access))
    ]
    if not ops:
        return []
    title = t("chart_operators")
    return [_figure(svg_hbars(ops, title=title, unit="Mbit/s"), f"{nb(title)} (Mbit/s)")]


def _charts(figures: list[str]) -> str:
    return '<div class="charts">' + "".join(figures) + "</div>" if figures else ""


def _methodology(t: Strings, report: Report) -> str:
    m = report.methodology
    ex = m.exclusions
    parts = [f"<p>{nb(t('method_text'))}</p><p>{nb(t('method_where'))}</p><ul>"]
    parts.append(
        f"<li>{nb(t('peak_hours'))}: {m.peak_start_hour:02d}:00–{m.peak_end_hour:02d}:00 "
        f"({nb(m.timezone)})</li>"
    )
    targets = ", ".join(
        f"{t(a)} ≥ {t.num(v, 0)} Mbit/s" for a, v in sorted(report.targets_mbps.items())
    )
    parts.append(
        f"<li>{nb(t('targets_file'))}: {nb(targets or '–')} "
        f"{nb(str(m.targets_year or ''))} — {nb(m.targets_source)}</li>"
    )
    if m.data_network_targets:
        parts.append(f"<li>{nb(t('data_network'))}: {nb(', '.join(m.data_network_targets))}</li>")
    parts.append(f"<li>{nb(t('verdict_rules'))}</li>")
    parts.append(f"<li>{nb(t('unknown_probes_note'))}</li></ul>")
    parts.append(f"<h3>{nb(t('servers'))}</h3>")
    rows = "".join(
        "<tr>"
        + _td(s.method, "l")
        + _td(s.server, "l")
        + _td(s.ip_version)
        + _td(f"{s.tests:,}")
        + _td(f"{t.num(s.download_streams, 0)} / {t.num(s.upload_streams, 0)}")
        + _td(f"{t.num(s.download_duration_s)} / {t.num(s.upload_duration_s)}")
        + "</tr>"
        for s in m.servers
    )
    head = "".join(
        _th(t(k), "l" if k in ("method", "server") else "")
        for k in ("method", "server", "ip_version", "tests", "streams", "durations")
    )
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    parts.append(f"<h3>{nb(t('exclusions'))}</h3><table><tbody>")

    def line(key: str, value: int | None, indent: bool = False) -> None:
        label = ("— " if indent else "") + t(key)
        shown = f"{value:,}" if value is not None else t("deadletters_unknown")
        parts.append("<tr>" + _td(label, "l") + _td(shown) + "</tr>")

    line("runs_total", ex.runs_total)
    line("failed", ex.failed)
    line("skipped", ex.skipped)
    line("skipped_busy", ex.skipped_busy, True)
    line("skipped_cross_traffic", ex.skipped_cross_traffic, True)
    line("unsynced", ex.unsynced)
    line("rebased", ex.rebased, True)
    line("estimated", ex.estimated, True)
    line("quarantined", ex.quarantined_now)
    line("deadletters", ex.deadletters)
    parts.append("</tbody></table>")
    if ex.state_note:
        parts.append(f"<p class='sub'>{nb(ex.state_note)}</p>")
    if ex.deadletter_reasons:
        rows = "".join(
            "<tr>" + _td(d.stage, "l") + _td(d.reason, "l") + _td(f"{d.count:,}") + "</tr>"
            for d in ex.deadletter_reasons
        )
        head = _th(t("stage"), "l") + _th(t("reason"), "l") + _th(t("count"))
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return "".join(parts)


def period_text(report: Report, t: Strings) -> str:
    """The period on the province's clock, last day included (the end is exclusive)."""
    zone = ZoneInfo(report.methodology.timezone)
    start = report.start.astimezone(zone)
    end = report.end.astimezone(zone)
    if start.time() == end.time() == dt.time():
        last = end - dt.timedelta(days=1)
        return f"{t.day(start)} – {t.day(last)} ({report.methodology.timezone})"
    return f"{t.date(start)} – {t.date(end)} ({report.methodology.timezone})"


def _section(title: str, body: str, *, sid: str, newpage: bool = False) -> str:
    cls = ' class="newpage"' if newpage else ""
    return f'<section id="{sid}"{cls}><h2>{nb(title)}</h2>{body}</section>'


def render_html(report: Report, t: Strings) -> str:
    """The document, in the order a reader at the Province wants it: the verdicts (page 1),
    the map, the province's figures with the charts that explain them, mobile by
    technology and operator, districts, communes (figures and verdicts together),
    operators, the methodology."""
    period = period_text(report, t)
    out = [
        f'<!DOCTYPE html><html lang="{t.lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{nb(t('title'))} — {nb(period)}</title><style>{CSS}</style></head><body>",
        f"<h1>{nb(t('title'))}</h1><p class='sub'>{nb(t('subtitle'))}</p>",
        f"<p>{nb(t('period'))}: <b>{nb(period)}</b> · {nb(t('generated'))}: "
        f"{nb(t.date(report.generated_at))} UTC</p>",
    ]
    if report.empty:
        out.append(f'<p class="note" id="empty-period">{nb(t("empty_period"))}</p>')
    out.append(_section(t("verdicts"), _summary(t, report), sid="verdicts"))
    # No forced break: on page 1 beside the verdicts when it fits (break-inside: avoid
    # moves it whole to page 2 when it does not).
    out.append(_section(t("map"), map_section(report, t), sid="map"))
    province = (
        _area_table(t, report.province, name_cols=("province",))
        + _verdict_table(t, report.province, name_cols=("province",))
        + _charts(_band_charts(t, report) + _hour_charts(t, report))
    )
    out.append(_section(t("province_table"), province, sid="province", newpage=True))
    out.append(_section(t("radio_table"), radio_section(report, t), sid="radio"))
    out.append(_section(t("coverage_title"), coverage_section(report, t), sid="coverage"))
    if report.districts:
        districts = _area_table(t, report.districts, name_cols=("district",)) + _verdict_table(
            t, report.districts, name_cols=("district",)
        )
        out.append(_section(t("districts_table"), districts, sid="districts"))
    missing = [c for c in report.communes if not c.has_data]
    communes = (
        _commune_table(t, report.communes)
        + f"<h3>{nb(t('communes_without_data'))}: {len(missing)}</h3>"
        + '<p id="communes-without-data">'
        + (nb(", ".join(c.commune for c in missing)) if missing else nb(t("none")))
        + "</p>"
    )
    out.append(_section(t("communes_table"), communes, sid="communes", newpage=True))
    operators = _area_table(t, report.operators, name_cols=("operator",)) + _charts(
        _operator_chart(t, report)
    )
    out.append(_section(t("operators_table"), operators, sid="operators"))
    out.append(_section(t("methodology"), _methodology(t, report), sid="methodology"))
    out.append(
        f"<p class='sub'>{nb(t('queries_note'))}: {report.statements} InfluxQL, "
        f"{report.query_seconds:.1f} s · probefleet</p></body></html>"
    )
    return "\n".join(out)
