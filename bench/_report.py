"""Side-by-side benchmark lines: ours vs a reference from the same run, with the ratio."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable


def machine() -> str:
    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max): what :func:`line` prints for each side."""
    return statistics.median(values), min(values), max(values)


def rate(fn: Callable[[], int], repeat: int) -> tuple[float, float, float]:
    """Run ``fn`` (which returns how many items it handled) ``repeat`` times: items/s as
    (median, min, max)."""
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        items = fn()
        rates.append(items / (time.perf_counter() - start))
    return spread(rates)


def header() -> None:
    print(f"machine: {machine()}")
    print(f"{'benchmark':<30} {'ours':>14} {'reference':>14} {'ratio':>7}   unit")


def line(
    name: str,
    ours: tuple[float, float, float],
    ref: tuple[float, float, float],
    unit: str,
    note: str,
) -> None:
    print(
        f"{name:<30} {ours[0]:>14,.0f} {ref[0]:>14,.0f} {ours[0] / ref[0]:>7.2f}   {unit}"
        f"  (ref: {note}; ours {ours[1]:,.0f}-{ours[2]:,.0f})"
    )
