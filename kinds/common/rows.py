"""Small conversions every kind's field table uses, so that types never change in InfluxDB."""

from __future__ import annotations


def f(value: float | None) -> float | None:
    """Floats are always written as floats: a 3 today and a 3.5 tomorrow must not conflict."""
    return None if value is None else float(value)


def ip(version: int | None) -> str | None:
    """An IP version as a tag value."""
    return None if version is None else str(version)


def as01(flag: bool) -> int:
    """A predicate as 0/1, so that mean() in InfluxQL is the share of runs where it held."""
    return 1 if flag else 0
