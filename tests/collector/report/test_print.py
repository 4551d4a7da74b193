"""The report as printed on A4 landscape, checked on the PDF's pages as images.

Headless Chromium prints the HTML (the reader's "Print"), poppler renders each page at 50
dpi, and the pixels are read here: nothing runs into the right margin (a cut table would),
every page is A4 landscape, the map's verdict colours are on the map's page, page 1 holds
the verdict table. The pages are kept under /tmp/shared/report-pages/ for the closing note.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from probefleet.collector.report.html import render_html
from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.style import CSS
from probefleet.collector.report.svgmap import VERDICT_FILL

from tests.collector.report import pdfpages as pp
from tests.collector.report import sample

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHARED = Path("/tmp/shared/report-pages")
DPI = 50
# The right margin is 10 mm (style.py @page); a strip of its outer 6 mm must stay blank.
STRIP_PX = round(6 / 25.4 * DPI)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _printed(tmp: Path, html: str, name: str) -> tuple[Path, list[pp.Image]]:
    path = tmp / f"{name}.html"
    path.write_text(html, encoding="utf-8")
    pdf = pp.print_pdf(path, tmp)
    return pdf, pp.render_pages(pdf, tmp, dpi=DPI)


def _margin_ink(page: pp.Image) -> list[int]:
    return page.ink_columns(page.width - STRIP_PX, page.width)


def _unscaled_title_pt(tmp: Path) -> float:
    """The title's height when nothing shrinks the page: the report's CSS, the title alone."""
    html = f"<html><head><style>{CSS}</style></head><body><h1>Báo cáo</h1></body></html>"
    pdf, _pages = _printed(tmp, html, "reference")
    return pp.first_word_height_pt(pdf)


def test_the_checks_see_a_table_too_wide_for_the_page(tmp_path: Path) -> None:
    """The checks below must be able to fail. Chromium prints a too-wide table either cut at
    the page edge (ink in the margin) or by shrinking the whole document to fit (a smaller
    title): here, shrunk."""
    wide = "<td style='white-space:nowrap'>" + "0123456789 " * 40 + "</td>"
    html = (
        f"<html><head><style>{CSS}</style></head><body><h1>Báo cáo</h1>"
        f"<table><tr>{wide}</tr></table></body></html>"
    )
    pdf, pages = _printed(tmp_path, html, "too-wide")
    shrunk = pp.first_word_height_pt(pdf) < 0.98 * _unscaled_title_pt(tmp_path)
    assert shrunk or _margin_ink(pages[0])
    # ... and a nowrap box wider than the page and not in a table: cut, ink to the edge.
    cut = "<div style='width:400mm;height:20mm;background:#000'></div>"
    html = f"<html><head><style>{CSS}</style></head><body><h1>Báo cáo</h1>{cut}</body></html>"
    pdf, pages = _printed(tmp_path, html, "cut")
    shrunk = pp.first_word_height_pt(pdf) < 0.98 * _unscaled_title_pt(tmp_path)
    assert shrunk or _margin_ink(pages[0])


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_printed_report_fits_a4_landscape(tmp_path: Path, lang: str) -> None:
    t = Strings(lang)  # type: ignore[arg-type]
    report = sample.build_report()
    pdf, pages = _printed(tmp_path, render_html(report, t), f"report-{lang}")

    # Not shrunk to fit: nothing in it is wider than the page.
    assert pp.first_word_height_pt(pdf) >= 0.98 * _unscaled_title_pt(tmp_path)
    sizes = pp.page_sizes_pt(pdf)
    assert len(sizes) == len(pages) >= 4
    for w, h in sizes:
        assert (w, h) == pytest.approx(pp.A4_LANDSCAPE_PT, abs=1.0)
    for i, page in enumerate(pages, 1):
        assert page.width > page.height, i
        assert not _margin_ink(page), f"page {i}: ink in the right margin: cut at the edge"

    first = pp.page_text(pdf, 1)
    assert t("verdicts") in first
    assert t("met") in first
    assert t("not_met") in first
    assert t("download_fixed").split(" (")[0] in " ".join(first.split())

    texts = [pp.page_text(pdf, i) for i in range(1, len(pages) + 1)]
    map_pages = [i for i, text in enumerate(texts) if t("map") in text]
    assert map_pages, "no page has the map"
    page = pages[map_pages[0]]
    for verdict in ("met", "not_met"):
        assert page.count_near(_rgb(VERDICT_FILL[verdict])) > 200, verdict
    # The inventory communes the area file lacks are named under the map (that page or the
    # next: the list flows on).
    assert "Đại Phước" in "".join(texts[map_pages[0] : map_pages[0] + 2])
    # The mobile by-hour chart prints its test counts (the hour 00's 120 tests).
    hours = next(text for text in texts if t("chart_hours") in text)
    assert t("chart_tests_row") in hours
    assert "120" in hours

    if lang == "vi":  # for the closing note: page 1, the map's page, a page of communes
        communes = next(i for i, text in enumerate(texts) if t("communes_table") in text)
        SHARED.mkdir(parents=True, exist_ok=True)
        for name, index in (("page1", 0), ("map", map_pages[0]), ("communes", communes)):
            shutil.copy(pages[index].path, SHARED / f"report-{name}-vi.png")
            big = pp.page_files(pdf, tmp_path, dpi=110, first=index + 1, last=index + 1)
            shutil.copy(big[0], SHARED / f"report-{name}-vi-110dpi.png")


def test_greyscale_print_tells_the_verdicts_apart() -> None:
    """Met, not met and not measured differ in lightness, not only in hue (a black and
    white print, a colour-blind reader): luma differs by at least 50 of 255."""
    met, not_met = _rgb(VERDICT_FILL["met"]), _rgb(VERDICT_FILL["not_met"])

    def luma(c: tuple[int, int, int]) -> float:
        return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]

    # not measured: white with grey hatching (mean luma well above the orange's)
    levels = sorted([luma(met), luma(not_met), 0.75 * 255 + 0.25 * luma(_rgb("#8a8a8a"))])
    assert all(b - a >= 50 for a, b in itertools.pairwise(levels)), levels
