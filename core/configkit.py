"""TOML config files -> typed, frozen structs, with every problem reported at once.

Both programs describe their config as msgspec Structs whose defaults live in the class
definitions (the one place defaults are written). :func:`load` reads a file, walks it against
the struct types and collects *every* problem — unknown key, wrong type, out-of-range value,
missing key — each with the file, the dotted key path and the value, before it builds
anything. Secrets are resolved while loading, never at import time: see :func:`read_secret`.

Usage::

    cfg = configkit.load(Path("agent.toml"), AgentConfig)   # raises ConfigError
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
import msgspec.inspect as mi

_C = TypeVar("_C", bound=msgspec.Struct)


class Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base of every config table: unknown keys are errors, values immutable once loaded."""


class LogSection(Section, frozen=True, kw_only=True):
    """``[log]``, the same in both programs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ConfigError(Exception):
    """One or more problems in a config file; ``problems`` holds one line per problem."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{self.path}: {len(problems)} config {noun}:\n{lines}")


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict) else "{...}"
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(t: mi.Type) -> str:
    names: dict[type, str] = {
        mi.IntType: "an integer",
        mi.FloatType: "a number",
        mi.StrType: "a string",
        mi.BoolType: "true or false",
        mi.ListType: "a list",
        mi.DictType: "a table",
        mi.StructType: "a table",
    }
    if isinstance(t, mi.LiteralType):
        return "one of " + ", ".join(repr(v) for v in t.values)
    if isinstance(t, mi.UnionType):
        return " or ".join(_type_name(x) for x in t.types if not isinstance(x, mi.NoneType))
    return names.get(type(t), type(t).__name__)


def _bounds(t: Any, value: float | int) -> str | None:
    if t.ge is not None and value < t.ge:
        return f"must be >= {t.ge}"
    if t.gt is not None and value <= t.gt:
        return f"must be > {t.gt}"
    if t.le is not None and value > t.le:
        return f"must be <= {t.le}"
    if t.lt is not None and value >= t.lt:
        return f"must be < {t.lt}"
    return None


def _check(value: Any, t: mi.Type, key: str, out: list[tuple[str, Any, str]]) -> None:
    """Append (key, value, reason) for every problem in ``value`` against type ``t``."""

    def bad(reason: str) -> None:
        out.append((key, value, reason))

    if isinstance(t, mi.Metadata):  # Annotated[..., Meta(description=...)]: look inside
        inner: list[tuple[str, Any, str]] = []
        _check(value, t.type, key, inner)
        described = (t.extra_json_schema or {}).get("description")
        for k, v, why in inner:
            plain = f"must be {described}" if described and why.startswith("must match") else why
            out.append((k, v, plain))
        return
    if isinstance(t, mi.AnyType):
        return
    if isinstance(t, mi.UnionType):
        options = [x for x in t.types if not isinstance(x, mi.NoneType)]
        trials: list[list[tuple[str, Any, str]]] = []
        for option in options:
            found: list[tuple[str, Any, str]] = []
            _check(value, option, key, found)
            if not found:
                return
            trials.append(found)
        # One option: its own, precise complaint. Several: say what was expected.
        if len(options) == 1:
            out.extend(trials[0])
        else:
            bad(f"expected {_type_name(t)}")
        return
    if isinstance(t, mi.StructType):
        if not isinstance(value, dict):
            bad("expected a table")
            return
        _check_struct(value, t, key, out)
        return
    if isinstance(t, mi.BoolType):
        if not isinstance(value, bool):
            bad("expected true or false")
        return
    if isinstance(t, mi.IntType):
        if not isinstance(value, int) or isinstance(value, bool):
            bad("expected an integer")
        elif limit := _bounds(t, value):
            bad(limit)
        return
    if isinstance(t, mi.FloatType):
        if not isinstance(value, int | float) or isinstance(value, bool):
            bad("expected a number")
        elif not math.isfinite(value):
            bad("must be a finite number")
        elif limit := _bounds(t, value):
            bad(limit)
        return
    if isinstance(t, mi.StrType):
        if not isinstance(value, str):
            bad("expected a string")
        elif t.pattern is not None and not re.search(t.pattern, value):
            # Patterns end in \Z (Python's $ allows a final newline); people read $.
            shown = t.pattern[:-2] + "$" if t.pattern.endswith("\\Z") else t.pattern
            bad(f"must match {shown}")
        elif t.min_length is not None and len(value) < t.min_length:
            bad("must not be empty" if t.min_length == 1 else f"needs {t.min_length}+ chars")
        elif t.max_length is not None and len(value) > t.max_length:
            bad(f"must be at most {t.max_length} characters")
        return
    if isinstance(t, mi.LiteralType):
        if value not in t.values or isinstance(value, bool) != isinstance(t.values[0], bool):
            bad(f"expected {_type_name(t)}")
        return
    if isinstance(t, mi.ListType):
        if not isinstance(value, list):
            bad("expected a list")
            return
        if t.max_length is not None and len(value) > t.max_length:
            bad(f"at most {t.max_length} entries")
        if t.min_length is not None and len(value) < t.min_length:
            bad(f"at least {t.min_length} entries")
        for i, item in enumerate(value):
            _check(item, t.item_type, f"{key}[{i}]", out)
        return
    if isinstance(t, mi.DictType):
        if not isinstance(value, dict):
            bad("expected a table")
            return
        for k, item in value.items():
            _check(k, t.key_type, f"{key}.{k}", out)
            _check(item, t.value_type, f"{key}.{k}", out)
        return
    bad(f"unsupported config type {type(t).__name__}")  # a bug in our structs, not the file


def _check_struct(
    table: dict[str, Any], t: mi.StructType, prefix: str, out: list[tuple[str, Any, str]]
) -> None:
    fields = {f.encode_name: f for f in t.fields}
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        field = fields.get(name)
        if field is None:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append((key, value, f"unknown key{hint}"))
            continue
        _check(value, field.type, key, out)
    for name, field in fields.items():
        if field.required and name not in table:
            key = f"{prefix}.{name}" if prefix else name
            out.append((key, None, "is required"))


def problems_in(data: dict[str, Any], cls: type[msgspec.Struct]) -> list[tuple[str, Any, str]]:
    """Every (key path, value, reason) wrong in ``data`` as config of type ``cls``."""
    found: list[tuple[str, Any, str]] = []
    _check_struct(data, mi.type_info(cls), "", found)  # type: ignore[arg-type]
    return found


def _format(key: str, value: Any, reason: str) -> str:
    return f"{key}: {reason}" if value is None else f"{key} = {_show(value)}: {reason}"


def build(data: dict[str, Any], cls: type[_C], source: Path | str = "<config>") -> _C:
    """Check ``data`` against ``cls`` and build it, or raise ConfigError with every problem."""
    found = problems_in(data, cls)
    if found:
        raise ConfigError(source, [_format(*p) for p in found])
    try:
        return msgspec.convert(data, cls, str_keys=True)
    except msgspec.ValidationError as exc:
        # Cross-field rules raised by a struct's __post_init__ ("`key` ..." messages).
        raise ConfigError(source, [str(exc).replace(" - at `$`", "")]) from None


def load(path: Path, cls: type[_C], *, env: dict[str, str] | None = None) -> _C:
    """Read the TOML file ``path`` into ``cls``, then call its ``resolve(env, problems, dir)``
    (when it has one) for cross-key rules and secrets."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    cfg = build(data, cls, path)
    resolve = getattr(cfg, "resolve", None)
    if resolve is not None:
        env = dict(os.environ) if env is None else env
        problems: list[str] = []
        cfg = resolve(env, problems, path.parent)
        if problems:
            raise ConfigError(path, problems)
    return cfg


def add_config_option(
    parser: argparse.ArgumentParser, program: str, default: Path, *, fallback: str = ""
) -> None:
    """``--config FILE`` on a subcommand, the same in every one of both programs' CLIs.
    ``fallback``: what is used when the default file is absent (then ``args.config`` is None
    unless given)."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None if fallback else default,
        metavar="FILE",
        help=f"{program} config (default {default}{', or ' + fallback if fallback else ''})",
    )


def read_secret(
    *,
    key: str,
    value: str,
    file_value: str,
    env_name: str,
    env: dict[str, str],
    base: Path,
    problems: list[str],
) -> str:
    """The secret for ``key``, first found of: env ``NAME``, env ``NAME_FILE``,
    ``<key>_file`` in the config, ``<key>`` in the config. Files are read whole, one trailing
    newline stripped (what ``echo secret > file`` leaves)."""
    if env.get(env_name):
        return env[env_name]
    for origin, file_name in (
        (f"${env_name}_FILE", env.get(f"{env_name}_FILE", "")),
        (f"{key}_file", file_value),
    ):
        if file_name:
            secret_path = base / Path(file_name).expanduser()
            try:
                return secret_path.read_text(encoding="utf-8").removesuffix("\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                problems.append(f"{origin} = {str(secret_path)!r}: cannot read: {reason}")
                return ""
    return value


def field_paths(cls: type[msgspec.Struct]) -> Iterable[str]:
    """Every dotted key a config struct accepts (tables themselves excluded; the keys of an
    array of tables appear once, as ``interfaces.name``)."""

    def walk(t: mi.StructType, prefix: str) -> Iterable[str]:
        for f in t.fields:
            key = f"{prefix}{f.encode_name}"
            inner = _struct_of(f.type)
            if inner is not None:
                yield from walk(inner, key + ".")
            else:
                yield key

    yield from walk(mi.type_info(cls), "")  # type: ignore[arg-type]


def _struct_of(t: mi.Type) -> mi.StructType | None:
    """The struct inside ``t`` (itself, an optional one, or a list's items), if any."""
    if isinstance(t, mi.StructType):
        return t
    if isinstance(t, mi.ListType):
        return _struct_of(t.item_type)
    if isinstance(t, mi.UnionType):
        for x in t.types:
            if isinstance(x, mi.StructType):
                return x
    return None
