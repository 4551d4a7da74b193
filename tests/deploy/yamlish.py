"""Just enough YAML for deploy/central/compose.yaml, without a YAML library in the test
dependencies: block mappings, block lists of scalars, JSON-style flow lists and quoted
strings, comments. Anything else is an error, so the compose file stays in this subset."""

from __future__ import annotations

import json
import re
from typing import Any


def _scalar(text: str, where: str) -> Any:
    text = text.strip()
    if text.startswith(("[", '"')):
        # A JSON value, then perhaps a comment.
        value, end = json.JSONDecoder().raw_decode(text)
        rest = text[end:].strip()
        if rest and not rest.startswith("#"):
            raise ValueError(f"{where}: unexpected {rest!r} after the value")
        return value
    if text.startswith(("{", "'", "|", ">", "&", "*", "!")):
        raise ValueError(f"{where}: {text[:20]!r}: outside the YAML subset tests/deploy reads")
    return re.split(r"\s+#", text, maxsplit=1)[0].strip()


def load(text: str) -> Any:
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError(f"line {number}: tab in indentation")
        lines.append((len(raw) - len(raw.lstrip(" ")), stripped, number))
    value, pos = _block(lines, 0, 0)
    if pos != len(lines):
        raise ValueError(f"line {lines[pos][2]}: unexpected indentation")
    return value


def _block(lines: list[tuple[int, str, int]], pos: int, indent: int) -> tuple[Any, int]:
    if lines[pos][1].startswith("- "):
        items: list[Any] = []
        while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
            items.append(_scalar(lines[pos][1][2:], f"line {lines[pos][2]}"))
            pos += 1
        return items, pos
    mapping: dict[str, Any] = {}
    while pos < len(lines) and lines[pos][0] == indent:
        _, text, number = lines[pos]
        key, sep, rest = text.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
            raise ValueError(f"line {number}: not 'key: value': {text!r}")
        if key in mapping:
            raise ValueError(f"line {number}: {key!r} given twice")
        pos += 1
        if rest.strip() and not rest.strip().startswith("#"):
            mapping[key] = _scalar(rest, f"line {number}")
        elif pos < len(lines) and lines[pos][0] > indent:
            mapping[key], pos = _block(lines, pos, lines[pos][0])
        else:
            mapping[key] = None
    return mapping, pos
