"""InfluxDB points as plain values, and their line protocol (escaping, types, nanoseconds).

A :class:`Point` is what :func:`collector.points.points_from` returns: no InfluxDB client
involved, so parsing is testable without a database. Field types are fixed by the Python
type: ``float`` -> float (always written with a decimal point or exponent), ``int`` ->
integer (``5i``), ``bool`` -> boolean, ``str`` -> string. Tag values and string fields are
sanitised (control characters and backslashes become U+FFFD) because line protocol cannot
carry them safely; empty tag values are left out (InfluxDB refuses them).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

FieldValue = float | int | bool | str

_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f\\]")
_TAG_SPECIAL: Final = re.compile(r"[ ,=]")
_REPLACEMENT: Final = "\ufffd"


def _clean(text: str) -> str:
    return _UNSAFE.sub(_REPLACEMENT, text) if _UNSAFE.search(text) else text


@functools.lru_cache(maxsize=65_536)
def escape_key(text: str) -> str:
    """A tag key, tag value or field key: commas, equals signs and spaces escaped.

    Cached: tag values repeat endlessly (probe ids, communes, targets), and this is the
    collector's hottest function."""
    text = _clean(text)
    if _TAG_SPECIAL.search(text):
        text = text.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")
    return text


@functools.lru_cache(maxsize=65_536)
def _quote(text: str) -> str:
    return '"' + _clean(text).replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=65_536)
def _tag(key: str, value: str) -> str:
    return f"{escape_key(key)}={escape_key(value)}"


@functools.lru_cache(maxsize=1024)
def escape_measurement(text: str) -> str:
    text = _clean(text)
    return text.replace(",", r"\,").replace(" ", r"\ ")


def format_field(value: FieldValue) -> str:
    # Exact type checks: bool is a subclass of int, and they are faster than isinstance.
    kind = type(value)
    if kind is float:
        return repr(value)  # shortest round-trip form; "148.72", "1e+20", always a float
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return f"{value}i"
    if isinstance(value, str):
        return _quote(value)
    raise TypeError(f"unsupported field value {value!r}")


@dataclass(frozen=True, slots=True)
class Point:
    """One InfluxDB point. ``tags`` are sorted by key (InfluxDB's own order) and unique."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, FieldValue], ...]
    time_ns: int

    @classmethod
    def build(
        cls,
        measurement: str,
        tags: dict[str, str | None],
        fields: dict[str, FieldValue | None],
        time_ns: int,
    ) -> Point:
        """None and empty tags and None fields are left out; floats stay floats."""
        # List comprehensions, not generators: this runs for every point of every result.
        kept_tags = sorted([(k, v) for k, v in tags.items() if v])
        kept_fields = tuple([(k, v) for k, v in fields.items() if v is not None])
        return cls(measurement, tuple(kept_tags), kept_fields, time_ns)

    @property
    def series(self) -> str:
        """What InfluxDB identifies a series by (with the time, a point's identity): the
        line's head as written, sanitised and escaped — "a\\x00b" and "a\\tb" are one
        series. Cached, and the same string :meth:`line` uses."""
        return _head(self.measurement, self.tags)

    def tag(self, key: str) -> str | None:
        return dict(self.tags).get(key)

    def field(self, key: str) -> FieldValue | None:
        return dict(self.fields).get(key)

    def line(self) -> str:
        # The collector's hottest code (several points per result): the head is cached per
        # series, and the common field types are formatted inline rather than by a call.
        body = []
        for key, value in self.fields:
            kind = type(value)
            if kind is float:
                text = repr(value)
            elif kind is int:
                text = f"{value}i"
            else:
                text = format_field(value)
            body.append(_field_key(key) + text)
        return f"{_head(self.measurement, self.tags)} {','.join(body)} {self.time_ns}"


@functools.lru_cache(maxsize=65_536)
def _head(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """Measurement and tags: the same for every point of a series."""
    return ",".join([escape_measurement(measurement), *[_tag(k, v) for k, v in tags]])


@functools.lru_cache(maxsize=4096)
def _field_key(key: str) -> str:
    return escape_key(key) + "="
