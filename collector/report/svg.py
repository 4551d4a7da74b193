"""Inline SVG charts: plain markup, no script, no external asset (the HTML stands alone).

Usage::

    svg_bars(["<0.5×", …], [12, 40, …], title="…", marker_index=4)
    svg_hbars([("VNPT fixed", 162.0, 150.0)], unit="Mbit/s")
    svg_hours(shares, medians, peak=(19, 23), title="…")
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

_W: Final = 640
_PAD_L: Final = 48
_PAD_B: Final = 34
_PAD_T: Final = 12
_BAR: Final = "#2f6fa8"
_TARGET: Final = "#c0392b"
_MUTED: Final = "#6b7280"


def _t(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="#222">{escape(text)}</text>'
    )


def _frame(height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {_W} {height}" '
        f'width="100%" style="max-width:{_W}px">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _compact(n: int) -> str:
    """A count in at most 4 characters (an hour's column is ~25 px wide)."""
    if n < 10_000:
        return str(n)
    return f"{n / 1000:.0f}k" if n < 1_000_000 else f"{n / 1_000_000:.0f}M"


def svg_bars(
    labels: Sequence[str],
    values: Sequence[int],
    *,
    title: str,
    marker_index: int | None = None,
    marker_label: str = "",
) -> str:
    """Vertical bars (counts); a red line before bar ``marker_index`` (the target)."""
    height = 220
    plot_h = height - _PAD_B - _PAD_T
    n = max(1, len(values))
    step = (_W - _PAD_L - 8) / n
    top = max([1, *values])
    body = [
        f'<line x1="{_PAD_L}" y1="{_PAD_T + plot_h}" x2="{_W - 4}" y2="{_PAD_T + plot_h}" '
        f'stroke="{_MUTED}"/>'
    ]
    body.append(_t(_PAD_L - 6, _PAD_T + 10, f"{top:,}", anchor="end", size=10))
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = _PAD_L + i * step + step * 0.15
        y = _PAD_T + plot_h - h
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{_BAR}">'
            f"<title>{escape(label)}: {value:,}</title></rect>"
        )
        body.append(_t(x + step * 0.35, y - 3, f"{value:,}", size=10))
        body.append(_t(x + step * 0.35, height - _PAD_B + 16, label, size=10))
    if marker_index is not None:
        x = _PAD_L + marker_index * step
        body.append(
            f'<line x1="{x:.1f}" y1="{_PAD_T}" x2="{x:.1f}" y2="{_PAD_T + plot_h}" '
            f'stroke="{_TARGET}" stroke-width="2" stroke-dasharray="5 3"/>'
        )
        body.append(_t(x + 4, _PAD_T + 10, marker_label, anchor="start", size=10))
    return _frame(height, title, body)


def svg_hbars(
    rows: Sequence[tuple[str, float | None, float | None]], *, title: str, unit: str
) -> str:
    """Horizontal bars (label, value, target): a red tick at each row's target."""
    row_h = 22
    height = _PAD_T + row_h * max(1, len(rows)) + 24
    # Wide enough for the longest label (~6.2 px a character at 11 px): a label cut at the
    # frame would not say which line it is.
    label_w = min(360, max(120, int(6.2 * max((len(r[0]) for r in rows), default=0)) + 10))
    top = max([1.0, *(v for _, v, _t in rows if v is not None), *(t for _, _v, t in rows if t)])
    scale = (_W - label_w - 60) / top
    body: list[str] = []
    for i, (label, value, target) in enumerate(rows):
        y = _PAD_T + i * row_h
        body.append(_t(label_w - 6, y + 15, label, anchor="end"))
        if value is not None:
            body.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{value * scale:.1f}" height="{row_h - 6}" '
                f'fill="{_BAR}"><title>{escape(label)}: {value:.1f} {escape(unit)}</title></rect>'
            )
            body.append(
                _t(label_w + value * scale + 4, y + 15, f"{value:.1f}", anchor="start", size=10)
            )
        if target:
            x = label_w + target * scale
            body.append(
                f'<line x1="{x:.1f}" y1="{y + 1}" x2="{x:.1f}" y2="{y + row_h - 1}" '
                f'stroke="{_TARGET}" stroke-width="2"/>'
            )
    body.append(_t(label_w, height - 6, f"0 … {top:.0f} {unit}", anchor="start", size=10))
    return _frame(height, title, body)


def svg_hours(
    shares: Sequence[float | None],
    medians: Sequence[float | None],
    *,
    title: str,
    peak: tuple[int, int],
    target: float | None,
    tests: Sequence[int] = (),
    tests_label: str = "n",
) -> str:
    """24 bars (share of tests at target, 0-1, left axis) and a line (median Mbit/s, scaled
    to the target or the largest median); peak hours shaded; under the hours, the tests of
    each hour (a share of 3 tests is not one of 3,000: the reader must see which)."""
    counts_h = 16 if tests else 0
    height = 230 + counts_h
    plot_h = height - _PAD_B - _PAD_T - counts_h
    step = (_W - _PAD_L - 8) / 24
    base = _PAD_T + plot_h
    body = [
        f'<rect x="{_PAD_L + peak[0] * step:.1f}" y="{_PAD_T}" '
        f'width="{(peak[1] - peak[0]) * step:.1f}" height="{plot_h}" fill="#fdebd0"/>',
        f'<line x1="{_PAD_L}" y1="{base}" x2="{_W - 4}" y2="{base}" stroke="{_MUTED}"/>',
        _t(_PAD_L - 6, _PAD_T + 10, "100 %", anchor="end", size=10),
        _t(_PAD_L - 6, base, "0", anchor="end", size=10),
    ]
    known = [m for m in medians if m is not None]
    top = max([target or 0.0, *known, 1.0])
    points: list[str] = []
    for hour in range(24):
        x = _PAD_L + hour * step
        s = shares[hour] if hour < len(shares) else None
        if s is not None:
            h = plot_h * s
            body.append(
                f'<rect x="{x + step * 0.15:.1f}" y="{base - h:.1f}" width="{step * 0.7:.1f}" '
                f'height="{h:.1f}" fill="{_BAR}" opacity="0.75"><title>{hour:02d}h: '
                f"{100 * s:.0f} %</title></rect>"
            )
        m = medians[hour] if hour < len(medians) else None
        if m is not None:
            points.append(f"{x + step / 2:.1f},{base - plot_h * m / top:.1f}")
        if hour % 3 == 0:
            body.append(_t(x + step / 2, base + 16, f"{hour:02d}", size=10))
        if tests:
            n = tests[hour] if hour < len(tests) else 0
            body.append(_t(x + step / 2, base + 32, _compact(n), size=8))
    body.append(_t(_W - 6, _PAD_T + 10, f"{top:.0f} Mbit/s", anchor="end", size=10))
    if tests:
        body.append(_t(_PAD_L - 6, base + 32, tests_label, anchor="end", size=8))
    if target:
        y = base - plot_h * target / top
        body.append(
            f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{_W - 4}" y2="{y:.1f}" stroke="{_TARGET}" '
            'stroke-dasharray="5 3"/>'
        )
    if len(points) > 1:
        body.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="#111" stroke-width="2"/>'
        )
    return _frame(height, title, body)
