"""The report as printed: headless Chromium's PDF, poppler's page images, pixels in plain Python.

No imaging library: pdftoppm writes 8-bit RGB PNGs, decoded here with zlib (the five PNG
filters of RFC 2083). Usage::

    pdf = print_pdf(html_path, workdir)
    size_pt = page_size_pt(pdf)                  # (841.92, 594.96): A4 landscape
    pages = render_pages(pdf, workdir, dpi=50)   # [Image, ...] one per page
    pages[0].ink_columns(x0, x1)                 # columns with a non-white pixel
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

A4_LANDSCAPE_PT = (841.89, 595.28)


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (Debian package {package}; make system-deps)")
    return found


def print_pdf(html: Path, workdir: Path) -> Path:
    """``html`` printed by headless Chromium as the reader's browser would (CSS @page)."""
    pdf = workdir / f"{html.stem}.pdf"
    proc = subprocess.run(
        [_tool("chromium", "chromium"), "--headless", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={workdir / 'chromium-print'}",
         "--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert pdf.exists(), proc.stderr[-2000:]
    return pdf


def page_sizes_pt(pdf: Path) -> list[tuple[float, float]]:
    """(width, height) in points of every page (``pdfinfo -l``)."""
    out = subprocess.run(
        [_tool("pdfinfo", "poppler-utils"), "-f", "1", "-l", "9999", str(pdf)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    sizes = re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", out)
    return [(float(w), float(h)) for w, h in sizes]


def page_text(pdf: Path, page: int) -> str:
    return subprocess.run(
        [_tool("pdftotext", "poppler-utils"), "-f", str(page), "-l", str(page), "-layout",
         str(pdf), "-"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip


def first_word_height_pt(pdf: Path) -> float:
    """The height of page 1's first word box (``pdftotext -bbox``): the document's scale.
    Chromium shrinks a whole document whose content is wider than the page ("fit to
    width") instead of cutting it: a smaller title than a reference print says so."""
    out = subprocess.run(
        [_tool("pdftotext", "poppler-utils"), "-f", "1", "-l", "1", "-bbox", str(pdf), "-"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    found = re.search(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)"', out)
    assert found, out[:500]
    return float(found.group(2)) - float(found.group(1))


@dataclass
class Image:
    width: int
    height: int
    rgb: bytes  # width * height * 3
    path: Path

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = 3 * (y * self.width + x)
        return self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]

    def ink_columns(self, x0: int, x1: int, *, threshold: int = 235) -> list[int]:
        """Columns in [x0, x1) holding a pixel darker than ``threshold`` in any channel."""
        found = []
        for x in range(x0, x1):
            for y in range(self.height):
                if min(self.pixel(x, y)) < threshold:
                    found.append(x)
                    break
        return found

    def count_near(self, colour: tuple[int, int, int], tolerance: int = 12) -> int:
        """Pixels within ``tolerance`` of ``colour`` in every channel."""
        r0, g0, b0 = colour
        n = 0
        data = self.rgb
        for i in range(0, len(data), 3):
            if (
                abs(data[i] - r0) <= tolerance
                and abs(data[i + 1] - g0) <= tolerance
                and abs(data[i + 2] - b0) <= tolerance
            ):
                n += 1
        return n


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(path: Path) -> Image:
    """An 8-bit RGB or RGBA, non-interlaced PNG (what pdftoppm -png writes) -> RGB pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    width = height = 0
    channels = 3
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"{path}: PNG depth {depth}, colour {colour}: not 8-bit RGB(A)")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray()
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        filt = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride if filt else 0):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if filt == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif filt == 4:
                line[i] = (line[i] + _paeth(a, b, c)) & 0xFF
        prev = line
        if channels == 3:
            out += line
        else:
            for i in range(0, stride, 4):
                out += line[i : i + 3]
    return Image(width, height, bytes(out), path)


def page_files(
    pdf: Path, workdir: Path, *, dpi: int, first: int = 1, last: int = 9999
) -> list[Path]:
    """Pages ``first``..``last`` of ``pdf`` as PNG files (``pdftoppm -r dpi -png``)."""
    prefix = workdir / f"{pdf.stem}-{dpi}dpi"
    subprocess.run(
        [_tool("pdftoppm", "poppler-utils"), "-r", str(dpi), "-f", str(first), "-l", str(last),
         "-png", str(pdf), str(prefix)],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return sorted(workdir.glob(f"{prefix.name}-*.png"), key=lambda p: int(p.stem.rsplit("-")[-1]))


def render_pages(pdf: Path, workdir: Path, *, dpi: int = 50) -> list[Image]:
    """Every page of ``pdf`` as a decoded image."""
    return [decode_png(p) for p in page_files(pdf, workdir, dpi=dpi)]
