"""The standalone HTML report: inline CSS and SVG, no script, no external asset.

Usage::

    text = render_html(report, Strings("vi"))
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Final
from zoneinfo import ZoneInfo

from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.model import PLAN_ITEMS, AccessFigures, Area, Report
from probefleet.collector.report.svg import svg_bars, svg_hbars, svg_hours

_CSS: Final = """
body{font-family:"Noto Sans","DejaVu Sans",Arial,sans-serif;margin:24px;color:#1f2937}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}p.sub{color:#4b5563;margin:0 0 12px}
table{border-collapse:collapse;font-size:12px;margin:6px 0 12px}
th,td{border:1px solid #d1d5db;padding:3px 6px;text-align:right;vertical-align:top}
th{background:#f3f4f6}td.l,th.l{text-align:left}
.met{background:#d1fae5;color:#065f46}.not_met{background:#fee2e2;color:#991b1b}
.not_measured{background:#f3f4f6;color:#6b7280}.v{font-weight:600;text-align:center}
.note{background:#fff7ed;border:1px solid #fdba74;padding:8px 12px}
.charts{display:flex;flex-wrap:wrap;gap:24px}.charts figure{margin:0;width:640px}
figcaption{font-size:12px;color:#4b5563}
td.basis,span.basis{font-weight:400;font-size:11px;text-align:left}span.basis{display:block}
"""


def _td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>"


def _th(text: str, cls: str = "") -> str:
    return f'<th class="{cls}">{escape(text)}</th>' if cls else f"<th>{escape(text)}</th>"


def _verdict(t: Strings, verdict: str) -> str:
    return f'<td class="v {verdict}">{escape(t.verdict(verdict))}</td>'


def _verdict_with_basis(t: Strings, area: Area, item: str) -> str:
    """The verdict, and under it what it was computed from (the reader must not guess)."""
    verdict = area.verdicts.get(item, "not_measured")
    basis = area.bases.get(item)
    said = f'<span class="basis">{escape(t.basis(basis, area.level))}</span>' if basis else ""
    return f'<td class="v {verdict}">{escape(t.verdict(verdict))}{said}</td>'


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


def _area_table(t: Strings, areas: list[Area], *, name_cols: tuple[str, ...]) -> str:
    """One row per area and access type; operators get the speed columns only (probes,
    IPv6, services and verdicts belong to places, not to operators)."""
    places = name_cols != ("operator",)
    head = [_th(t(c), "l") for c in name_cols]
    if places:
        head += [_th(t("probes_seen")), _th(t("uptime"))]
    head.append(_th(t("access"), "l"))
    for key, unit in _ACCESS_HEAD:
        head.append(_th(f"{t(key)}{' (' + unit + ')' if unit else ''}"))
    if places:
        head += [_th(t("ipv6_ready")), _th(t("data_network_reach"))]
        head += [_th(t("service_availability"))]
    rows = []
    for area in areas:
        names = [_td(getattr(area, c) or "–", "l") for c in name_cols]
        accesses = sorted(area.access) or [""]
        if not area.has_data:
            span = len(head) - len(names)
            rows.append(
                "<tr>" + "".join(names) + f'<td class="l not_measured" colspan="{span}">'
                f"{escape(t('no_data'))} ({area.probes} {escape(t('probes').lower())})</td></tr>"
            )
            continue
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
        for i, access in enumerate(accesses):
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
    return (
        "<table><thead><tr>"
        + "".join(head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


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


def _charts(t: Strings, report: Report) -> str:
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
        figures.append(
            f"<figure>{chart}"
            f"<figcaption>{escape(title)}. {escape(t('chart_bands_note'))}</figcaption></figure>"
        )
    ops = [
        (f"{o.operator} · {t(a.access)}", a.download.median_mbps, a.target_download_mbps)
        for o in report.operators
        for a in (o.access[k] for k in sorted(o.access))
    ]
    if ops:
        title = t("chart_operators")
        figures.append(
            f"<figure>{svg_hbars(ops, title=title, unit='Mbit/s')}"
            f"<figcaption>{escape(title)} (Mbit/s)</figcaption></figure>"
        )
    m = report.methodology
    for access, hours in sorted(report.hours.items()):
        shares = [h.tests_at_target / h.tests if h.tests else None for h in hours]
        title = f"{t('chart_hours')} — {t(access)}"
        chart = svg_hours(
            shares,
            [h.median_mbps for h in hours],
            title=title,
            peak=(m.peak_start_hour, m.peak_end_hour),
            target=report.targets_mbps.get(access),
        )
        figures.append(
            f"<figure>{chart}<figcaption>{escape(title)} ({escape(m.timezone)}). "
            f"{escape(t('chart_hours_note'))}</figcaption></figure>"
        )
    if not figures:
        return f"<p>{escape(t('no_data'))}</p>"
    return '<div class="charts">' + "".join(figures) + "</div>"


def _methodology(t: Strings, report: Report) -> str:
    m = report.methodology
    ex = m.exclusions
    parts = [f"<p>{escape(t('method_text'))}</p><ul>"]
    parts.append(
        f"<li>{escape(t('peak_hours'))}: {m.peak_start_hour:02d}:00–{m.peak_end_hour:02d}:00 "
        f"({escape(m.timezone)})</li>"
    )
    targets = ", ".join(
        f"{t(a)} ≥ {t.num(v, 0)} Mbit/s" for a, v in sorted(report.targets_mbps.items())
    )
    parts.append(
        f"<li>{escape(t('targets_file'))}: {escape(targets or '–')} "
        f"{escape(str(m.targets_year or ''))} — {escape(m.targets_source)}</li>"
    )
    if m.data_network_targets:
        parts.append(
            f"<li>{escape(t('data_network'))}: {escape(', '.join(m.data_network_targets))}</li>"
        )
    parts.append(f"<li>{escape(t('verdict_rules'))}</li>")
    parts.append(f"<li>{escape(t('unknown_probes_note'))}</li></ul>")
    parts.append(f"<h3>{escape(t('servers'))}</h3>")
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
    parts.append(f"<h3>{escape(t('exclusions'))}</h3><table><tbody>")

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
        parts.append(f"<p class='sub'>{escape(ex.state_note)}</p>")
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


def render_html(report: Report, t: Strings) -> str:
    period = period_text(report, t)
    out = [
        f'<!DOCTYPE html><html lang="{t.lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(t('title'))} — {escape(period)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(t('title'))}</h1><p class='sub'>{escape(t('subtitle'))}</p>",
        f"<p>{escape(t('period'))}: <b>{escape(period)}</b> · {escape(t('generated'))}: "
        f"{escape(t.date(report.generated_at))} UTC</p>",
    ]
    if report.empty:
        out.append(f'<p class="note" id="empty-period">{escape(t("empty_period"))}</p>')
    out.append(f"<h2>{escape(t('verdicts'))}</h2>{_summary(t, report)}")
    out.append(f"<h2>{escape(t('province_table'))}</h2>")
    out.append(_area_table(t, report.province, name_cols=("province",)))
    out.append(_verdict_table(t, report.province, name_cols=("province",)))
    if report.districts:
        out.append(f"<h2>{escape(t('districts_table'))}</h2>")
        out.append(_area_table(t, report.districts, name_cols=("district",)))
        out.append(_verdict_table(t, report.districts, name_cols=("district",)))
    out.append(f"<h2>{escape(t('communes_table'))}</h2>")
    out.append(_area_table(t, report.communes, name_cols=("district", "commune")))
    out.append(_verdict_table(t, report.communes, name_cols=("district", "commune")))
    missing = [c for c in report.communes if not c.has_data]
    out.append(f"<h3>{escape(t('communes_without_data'))}: {len(missing)}</h3>")
    out.append(
        '<p id="communes-without-data">'
        + (escape(", ".join(c.commune for c in missing)) if missing else escape(t("none")))
        + "</p>"
    )
    out.append(f"<h2>{escape(t('operators_table'))}</h2>")
    out.append(_area_table(t, report.operators, name_cols=("operator",)))
    out.append(f"<h2>{escape(t('charts'))}</h2>{_charts(t, report)}")
    out.append(f"<h2>{escape(t('methodology'))}</h2>{_methodology(t, report)}")
    out.append(
        f"<p class='sub'>{escape(t('queries_note'))}: {report.statements} InfluxQL, "
        f"{report.query_seconds:.1f} s · probefleet</p></body></html>"
    )
    return "\n".join(out)
