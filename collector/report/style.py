"""The report's stylesheet: the screen, and print on A4 landscape.

Print rules, and why: a table never wider than the page (cells wrap; long words break
anywhere rather than run off the edge), a number never split from its unit (html.py puts a
no-break space between them; number cells do not wrap), a table's head repeated on every
page it spans and kept with its first rows, a commune's figures and verdicts in one block
that does not break, a chart kept whole and beside the table it explains.
"""

from __future__ import annotations

from typing import Final

from probefleet.collector.report.svgmap import VERDICT_FILL, VERDICT_TINT

CSS: Final = (
    """
body{font-family:"Noto Sans","DejaVu Sans",Arial,sans-serif;margin:24px;color:#1f2937}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}p.sub{color:#4b5563;margin:0 0 12px}
table{border-collapse:collapse;font-size:12px;margin:6px 0 12px;max-width:100%}
th,td{border:1px solid #d1d5db;padding:3px 5px;text-align:right;vertical-align:top}
td{white-space:nowrap}
th{background:#f3f4f6;white-space:normal;font-weight:600}
td.l,th.l{text-align:left}
td.l,td.basis,td.wrap,span.basis{white-space:normal;overflow-wrap:anywhere}
.v{font-weight:600;text-align:center;white-space:normal}
"""
    + "".join(
        f".{v}{{background:{VERDICT_TINT[v]};color:#111}}"
        for v in ("met", "not_met", "not_measured")
    )
    + f"""
.met{{border-left:4px solid {VERDICT_FILL["met"]}}}
.not_met{{border-left:4px solid {VERDICT_FILL["not_met"]}}}
.not_measured{{border-left:4px dashed #8a8a8a}}
.note{{background:#fff7ed;border:1px solid #fdba74;padding:8px 12px}}
.charts{{display:flex;flex-wrap:wrap;gap:16px 24px;align-items:flex-start}}
.charts figure{{margin:0;width:620px;max-width:100%}}
.maps{{display:flex;flex-wrap:wrap;gap:16px 24px}}.maps figure{{margin:0;width:500px}}
.side{{display:flex;flex-wrap:wrap;gap:0 24px;align-items:flex-start}}
figcaption{{font-size:12px;color:#4b5563}}
td.basis,span.basis{{font-weight:400;font-size:11px;text-align:left}}span.basis{{display:block}}
tr.vrow td{{background:#fafafa}}
.chips{{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:3px}}
.chip{{padding:2px 4px;font-size:11px;text-align:left;white-space:normal}}
.chip b{{display:block}}
.missing{{color:#92400e}}
@page{{size:A4 landscape;margin:10mm 10mm 11mm 10mm}}
@media print{{
body{{margin:0;font-size:11px}}
h1{{font-size:18px}}h2{{font-size:15px;margin:12px 0 6px}}h3{{font-size:13px;margin:10px 0 4px}}
table{{font-size:9px;margin:4px 0 8px}}th,td{{padding:2px 3px}}
td.basis,span.basis,.chip{{font-size:8.5px}}figcaption{{font-size:9px}}
.chips{{grid-template-columns:repeat(7,minmax(0,1fr))}}
thead{{display:table-header-group}}
tr,figure,tbody.area,.keep{{break-inside:avoid}}
h2,h3{{break-after:avoid}}
section.newpage{{break-before:page}}
.note{{padding:3px 8px;margin:4px 0}}
.charts figure{{width:48%}}.maps figure{{width:34%}}
.charts,.maps{{break-inside:avoid}}
*{{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
}}
"""
)
