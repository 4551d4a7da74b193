"""The fleet inventory (probe -> commune, operator per interface) and the plan's targets.

Both are TOML files (``files.inventory``, ``files.targets``), loaded and checked like the
config: every problem at once, each with the file and the key (:class:`ConfigError`).
Samples: ``config/inventory.sample.toml``, ``config/targets.sample.toml``. Usage::

    enrichment = Enrichment(load_inventory(path), load_targets(path))
    enrichment.probe("dongnai-tanphu-01")          # ProbeInfo, or None: unknown probe
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
from probefleet.collector.coverage import CoverageTargets
from probefleet.core import configkit, wire
from probefleet.core.configkit import Section

if TYPE_CHECKING:
    from probefleet.collector.hamlets import HamletIndex

# Tag values: short, printable, no control characters (they end up in every point).
TagText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\\]+\Z",
        description="1-100 characters, no control characters or backslashes",
    ),
]
Mbps = Annotated[float, msgspec.Meta(gt=0, le=100_000)]

_S = TypeVar("_S", bound=msgspec.Struct)


class InterfaceInfo(Section, frozen=True, kw_only=True):
    """One uplink of a probe: who provides it and whether it is fixed (FTTH) or mobile."""

    operator: TagText
    access: wire.Access


class ProbeInfo(Section, frozen=True, kw_only=True):
    commune: TagText
    province: TagText
    # Districts were abolished in the 2025 reorganisation; kept for older inventories.
    district: TagText | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    interfaces: dict[wire.IfName, InterfaceInfo] = {}


class InventoryFile(Section, frozen=True, kw_only=True):
    probes: dict[wire.ProbeId, ProbeInfo] = {}


class AccessTargets(Section, frozen=True, kw_only=True):
    """What the plan expects of one access type; only the download target is required."""

    download_mbps: Mbps
    upload_mbps: Mbps | None = None
    latency_ms: Annotated[float, msgspec.Meta(gt=0, le=60_000)] | None = None
    loss_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None


class Ipv6Targets(Section, frozen=True, kw_only=True):
    # Share of probes (%) whose IPv6 works end to end that the plan expects.
    works_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None


class TargetsFile(Section, frozen=True, kw_only=True):
    year: Annotated[int, msgspec.Meta(ge=2000, le=2100)]
    source: Annotated[str, msgspec.Meta(max_length=300)] = ""
    fixed: AccessTargets
    mobile: AccessTargets
    ipv6: Ipv6Targets = msgspec.field(default_factory=Ipv6Targets)
    # Hamlet coverage (ấp, thôn, khu phố) from survey points: collector/coverage.py.
    coverage: CoverageTargets = msgspec.field(default_factory=CoverageTargets)

    def for_access(self, access: str | None) -> AccessTargets | None:
        if access == "fixed":
            return self.fixed
        if access == "mobile":
            return self.mobile
        return None


def _load(path: Path, cls: type[_S]) -> _S:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise configkit.ConfigError(path, [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise configkit.ConfigError(path, [f"not UTF-8 text: {exc.reason}"]) from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise configkit.ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return configkit.build(data, cls, path)


def load_inventory(path: Path) -> InventoryFile:
    """Read and check an inventory file; ConfigError lists every problem with its key."""
    inventory = _load(path, InventoryFile)
    problems = [
        f"probes.{probe_id}: give both lat and lon, or neither"
        for probe_id, info in inventory.probes.items()
        if (info.lat is None) != (info.lon is None)
    ]
    if problems:
        raise configkit.ConfigError(path, problems)
    return inventory


def load_targets(path: Path) -> TargetsFile:
    """Read and check a targets file; ConfigError lists every problem with its key."""
    return _load(path, TargetsFile)


@dataclass(frozen=True)
class Enrichment:
    """What the collector adds to a probe's results: where it is, whose lines, the targets.

    ``targets`` None: no target fields are written (e.g. in tests of other things);
    ``hamlets`` None: survey points get no hamlet tags (no ``[files] areas``)."""

    inventory: InventoryFile = field(default_factory=InventoryFile)
    targets: TargetsFile | None = None
    hamlets: HamletIndex | None = None

    def probe(self, probe_id: str) -> ProbeInfo | None:
        return self.inventory.probes.get(probe_id)

    def interface(self, probe_id: str, interface: str | None) -> InterfaceInfo | None:
        info = self.inventory.probes.get(probe_id)
        if info is None or interface is None:
            return None
        return info.interfaces.get(interface)
