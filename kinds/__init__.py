"""The registry of measurement kinds: one line per kind, everything else derived from it.

A kind is one folder, ``kinds/<kind>/``: its payload on the wire (payload.py), its InfluxDB
field table (fields.py, documented in README.md), its agent code and helpers (measure.py
...), its ``[measurements.<kind>]`` sample (sample.toml) and its tests (tests/). Its
``__init__.py`` declares a :class:`KindSpec`; the one line below registers it. From the
registry come the wire's result union and topic check, the agent's ``[measurements]``
config tables and ``probe-agent measure``, the collector's rows, and the JSON Schema.

Importing this package loads the kinds' payloads and field tables only (the collector needs
no more); :func:`measurements` loads the agent's code.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Final

import msgspec
from probefleet.kinds import dns, health, ipv6, latency, ookla, radio, service, survey, throughput
from probefleet.kinds.base import KindSpec, Link, Measurement, Row, Schedule

# name -> spec, in the order the agent's config, help texts and the schema list them.
SPECS: Final[dict[str, KindSpec]] = {}


def register(spec: KindSpec) -> None:
    """Add a kind (the registry's one line per kind, below); derived views are rebuilt."""
    if spec.name in SPECS and SPECS[spec.name] is not spec:
        raise ValueError(f"measurement kind {spec.name!r} is registered twice")
    tag = spec.result.__struct_config__.tag
    if tag != spec.name:
        raise ValueError(f"kind {spec.name!r}: its result class is tagged {tag!r}")
    SPECS[spec.name] = spec
    result_union.cache_clear()


def unregister(name: str) -> None:
    """Remove a kind (tests that register one of their own)."""
    del SPECS[name]
    result_union.cache_clear()


def names() -> tuple[str, ...]:
    """Every registered kind, in registry order."""
    return tuple(SPECS)


def spec(kind: str) -> KindSpec:
    """The spec of a registered kind; KeyError names the kinds there are."""
    try:
        return SPECS[kind]
    except KeyError:
        raise KeyError(f"unknown measurement kind {kind!r} (known: {', '.join(SPECS)})") from None


def result_types() -> dict[str, type[msgspec.Struct]]:
    """kind -> its wire result class."""
    return {name: s.result for name, s in SPECS.items()}


@functools.cache
def result_union() -> Any:
    """The tagged union of every registered kind's result class, for decoding: msgspec reads
    "kind" first and decodes the rest with that kind's class."""
    return functools.reduce(operator.or_, (s.result for s in SPECS.values()))


def measurements() -> dict[str, type[Measurement[Any]]]:
    """kind -> the agent's Measurement class (imports every kind's agent code)."""
    return {name: s.measurement() for name, s in SPECS.items()}


__all__ = [
    "SPECS",
    "KindSpec",
    "Link",
    "Measurement",
    "Row",
    "Schedule",
    "measurements",
    "names",
    "register",
    "result_types",
    "result_union",
    "spec",
    "unregister",
]


# The registry: one line per kind.
for _spec in (
    throughput.SPEC,
    ookla.SPEC,
    latency.SPEC,
    dns.SPEC,
    ipv6.SPEC,
    service.SPEC,
    health.SPEC,
    radio.SPEC,
    survey.SPEC,
):
    register(_spec)
