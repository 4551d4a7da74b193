"""Two sections of the HTML report: the commune map, and mobile by technology and operator.

Usage (html.py)::

    map_section(report, t)      # two maps (fixed, mobile download verdicts) and the legend
    radio_section(report, t)    # the mobile tests split by radio_technology / radio_operator
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.model import MobileRadio, RadioRow, Report, share
from probefleet.collector.report.radio import operator_label, technology_label
from probefleet.collector.report.svgmap import svg_map

MAP_ITEMS = ("download_fixed", "download_mobile")


def nb(text: str) -> str:
    """Escaped text whose numbers stay with their unit: "99,3 %" never breaks."""
    out = escape(text)
    for unit in (" %", " Mbit/s", " ms", " s)", " s /"):
        out = out.replace(unit, "\u00a0" + unit[1:])
    return out


def td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{nb(text)}</td>' if cls else f"<td>{nb(text)}</td>"


def th(text: str, cls: str = "") -> str:
    return f'<th class="{cls}">{nb(text)}</th>' if cls else f"<th>{nb(text)}</th>"


def map_section(report: Report, t: Strings) -> str:
    info = report.map
    registry = info.registry
    if registry is None:
        return f'<p class="sub" id="map-none">{nb(t("map_none"))}</p>'
    legend = {v: t(v) for v in ("met", "not_met", "not_measured")}
    figures = []
    for item in MAP_ITEMS:
        verdicts = {
            info.codes[(c.district, c.commune)]: c.verdicts.get(item, "not_measured")
            for c in report.communes
            if (c.district, c.commune) in info.codes
        }
        title = t("map_of").format(item=t(item))
        chart = svg_map(registry, verdicts, title=title, legend=legend, map_id=item)
        figures.append(f"<figure><figcaption><b>{nb(title)}</b></figcaption>{chart}</figure>")
    parts = []
    if registry.synthetic:
        # Said before the maps, on their page: a reader must not take them for real.
        parts.append(f'<p class="note" id="map-synthetic">{nb(t("map_synthetic"))}</p>')
    parts.append(f'<div class="maps">{"".join(figures)}</div>')
    parts.append(f'<p class="sub">{nb(t("map_note"))}</p>')
    said = f"{t('map_source')}: {Path(info.areas_file).name}"  # not the server's paths
    if registry.source:
        said += f" — {registry.source}"
    parts.append(f'<p class="sub">{nb(said)}</p>')
    if info.missing:
        items = "".join(
            f"<li>{nb(m.commune)}{nb(f' ({m.district})') if m.district else ''}: "
            f"{nb(t('map_why_' + m.reason).format(detail=m.detail))}</li>"
            for m in info.missing
        )
        parts.append(
            f'<div class="missing" id="map-missing"><b>{nb(t("map_missing"))}: '
            f"{len(info.missing)}</b><ul>{items}</ul></div>"
        )
    return "".join(parts)


def _tech(t: Strings, row: RadioRow) -> str:
    return technology_label(row.technology) if row.technology else t("no_radio_context")


def _op(t: Strings, row: RadioRow) -> str:
    return operator_label(row.operator_code) if row.operator_code else t("no_radio_context")


def _table(t: Strings, head: list[str], rows: list[list[str]]) -> str:
    left = {head[0], t("technology")}
    heads = "".join(th(h, "l" if h in left else "") for h in head)
    body = "".join("<tr>" + "".join(rows_) + "</tr>" for rows_ in rows)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"


def _figures(t: Strings, row: RadioRow, whole: int) -> list[str]:
    return [
        td(t.num(row.tests, 0)),
        td(t.pct(share(row.tests, whole))),
        td(t.num(row.median_mbps)),
        td(t.num(row.p10_mbps)),
        td(t.pct(share(row.tests_at_target, row.tests))),
    ]


def _one(t: Strings, split: MobileRadio) -> str:
    total = split.tests
    figures = [
        t("tests"),
        t("share_of_tests"),
        f"{t('download_median')} (Mbit/s)",
        f"{t('download_p10')} (Mbit/s)",
        t("share_at_target"),
    ]
    by_tech = _table(
        t,
        [t("technology"), *figures],
        [[td(_tech(t, r), "l"), *_figures(t, r, total)] for r in split.by_technology],
    )
    by_op = _table(
        t,
        [t("operator"), *figures],
        [[td(_op(t, r), "l"), *_figures(t, r, total)] for r in split.by_operator],
    )
    per_op = {r.operator_code: r.tests for r in split.by_operator}
    both = _table(
        t,
        [t("operator"), t("technology"), t("tests"), t("share_of_operator_tests"),
         f"{t('download_median')} (Mbit/s)", t("share_at_target")],
        [
            [
                td(_op(t, r), "l"),
                td(_tech(t, r), "l"),
                td(t.num(r.tests, 0)),
                td(t.pct(share(r.tests, per_op.get(r.operator_code, 0)))),
                td(t.num(r.median_mbps)),
                td(t.pct(share(r.tests_at_target, r.tests))),
            ]
            for r in split.by_operator_technology
        ],
    )  # fmt: skip
    return (
        f'<div class="side keep"><div><h3>{nb(t("radio_by_technology"))}</h3>{by_tech}</div>'
        f"<div><h3>{nb(t('radio_by_operator'))}</h3>{by_op}</div></div>"
        f'<div class="keep"><h3>{nb(t("radio_by_both"))}</h3>{both}</div>'
    )


def radio_section(report: Report, t: Strings) -> str:
    splits = [s for s in report.mobile_radio if s.tests]
    if not splits:
        return f'<p id="radio-none">{nb(t("radio_none"))}</p>'
    parts = [f'<p class="sub">{nb(t("radio_note"))}</p>']
    for split in splits:
        if len(splits) > 1:
            parts.append(f"<h3>{nb(split.province)}</h3>")
        parts.append(f'<div class="radio" data-province="{nb(split.province)}">')
        parts.append(_one(t, split))
        parts.append("</div>")
    return "".join(parts)
