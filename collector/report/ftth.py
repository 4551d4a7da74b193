"""FTTH coverage per hamlet as the operators declare it (CSV), and what fixed probes can say.

``[report] ftth_declared_files``: CSV files with the header ``hamlet_code,operator,ftth_since``
(one row per hamlet and operator; ``ftth_since`` an ISO date), usually one file per operator.
Every problem is listed at once with file and line; a hamlet code the registry does not have
is named. Usage::

    declared = load_declared([Path("vnpt.csv")], registry)       # ConfigError
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from probefleet.collector.report.areas import AreaRegistry
from probefleet.core.configkit import ConfigError

HEADER: Final = ("hamlet_code", "operator", "ftth_since")
MAX_FILE_BYTES: Final = 16 * 1024 * 1024
MAX_OPERATOR_CHARS: Final = 100
MAX_PROBLEMS_SHOWN: Final = 50


@dataclass(frozen=True, slots=True)
class Declared:
    hamlet_code: str
    operator: str  # as the file says; compared with the inventory's case-insensitively
    since: dt.date
    where: str  # file:line


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(path, [f"{size:,} bytes: at most {MAX_FILE_BYTES:,}"])
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            path, [f"cannot read the declared-coverage file: {exc.strerror}"]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text: {exc.reason}"]) from None


def parse_declared(text: str, where: str, hamlets: set[str]) -> tuple[list[Declared], list[str]]:
    """The rows of one file and its problems (``where``: the file's name)."""
    rows = csv.reader(io.StringIO(text))
    problems: list[str] = []
    out: list[Declared] = []
    header = next(rows, None)
    if header is None or tuple(h.strip() for h in header) != HEADER:
        return [], [f"{where}:1: the header must be {','.join(HEADER)}, got {header!r}"]
    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(HEADER):
            problems.append(f"{where}:{line}: {len(row)} columns, expected {len(HEADER)}")
            continue
        code, operator, since_text = (cell.strip() for cell in row)
        ok = True
        if code not in hamlets:
            problems.append(f"{where}:{line}: hamlet_code = {code!r}: no hamlet with that code")
            ok = False
        if not operator or len(operator) > MAX_OPERATOR_CHARS:
            problems.append(
                f"{where}:{line}: operator = {operator!r}: 1-{MAX_OPERATOR_CHARS} characters"
            )
            ok = False
        try:
            since = dt.date.fromisoformat(since_text)
        except ValueError:
            problems.append(f"{where}:{line}: ftth_since = {since_text!r}: not a date (YYYY-MM-DD)")
            ok = False
        key = (code, operator.casefold())
        if ok and key in seen:
            problems.append(
                f"{where}:{line}: hamlet {code} and operator {operator!r} already on line "
                f"{seen[key]}"
            )
            ok = False
        if ok:
            seen[key] = line
            out.append(Declared(code, operator, since, f"{where}:{line}"))
    return out, problems


def load_declared(paths: Sequence[Path], registry: AreaRegistry) -> list[Declared]:
    """Every file's rows; ConfigError with every problem of every file."""
    hamlets = {f.code for f in registry.at("hamlet")}
    out: list[Declared] = []
    problems: list[str] = []
    for path in paths:
        rows, found = parse_declared(_read(path), str(path), hamlets)
        out.extend(rows)
        problems.extend(found)
    seen: dict[tuple[str, str], str] = {}
    for row in out:
        key = (row.hamlet_code, row.operator.casefold())
        if key in seen and seen[key] != row.where:
            problems.append(
                f"{row.where}: hamlet {row.hamlet_code} and operator "
                f"{row.operator!r} already in {seen[key]}"
            )
        seen.setdefault(key, row.where)
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more problems")
        raise ConfigError(", ".join(str(p) for p in paths), shown)
    return out
