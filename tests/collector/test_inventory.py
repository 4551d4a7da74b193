"""Inventory and targets files: the samples load, every problem is named with file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from probefleet.collector.inventory import Enrichment, load_inventory, load_targets
from probefleet.core import configkit

from tests.collector.helpers import ROOT

INVENTORY_SAMPLE = ROOT / "config" / "inventory.sample.toml"
TARGETS_SAMPLE = ROOT / "config" / "targets.sample.toml"


def test_inventory_sample_loads() -> None:
    inventory = load_inventory(INVENTORY_SAMPLE)
    enrichment = Enrichment(inventory)
    probe = enrichment.probe("dongnai-tanphu-01")
    assert probe is not None
    assert (probe.commune, probe.province, probe.district) == ("Tân Phú", "Đồng Nai", None)
    link = enrichment.interface("dongnai-tanphu-01", "wwan0")
    assert link is not None
    assert (link.operator, link.access) == ("Viettel", "mobile")
    assert enrichment.interface("dongnai-tanphu-01", "eth9") is None
    assert enrichment.probe("nobody") is None


def test_targets_sample_holds_the_2025_plan() -> None:
    targets = load_targets(TARGETS_SAMPLE)
    assert targets.year == 2025
    assert targets.for_access("fixed") is targets.fixed
    assert (targets.fixed.download_mbps, targets.mobile.download_mbps) == (150.0, 60.0)
    assert targets.fixed.upload_mbps is None
    assert targets.for_access(None) is None


def _problems(tmp_path: Path, text: str, loader: str) -> tuple[str, list[str]]:
    path = tmp_path / f"{loader}.toml"
    path.write_text(text)
    with pytest.raises(configkit.ConfigError) as caught:
        (load_inventory if loader == "inventory" else load_targets)(path)
    assert caught.value.path == str(path)
    return str(caught.value), caught.value.problems


BAD_INVENTORY = """\
[probes.Bad_Id]
commune = "X"
province = "Y"

[probes.ok-1]
commune = ""
province = "Đồng Nai"
lat = 95.0
colour = "red"

[probes.ok-1.interfaces.eth0]
operator = "VNPT"
access = "ftth"

[probes.ok-2]
province = "Đồng Nai"
lat = 10.0
"""


def test_every_inventory_problem_is_named(tmp_path: Path) -> None:
    text, problems = _problems(tmp_path, BAD_INVENTORY, "inventory")
    expected = [
        "probes.Bad_Id",
        "probes.ok-1.commune = '': must be 1-100 characters, no control characters",
        "probes.ok-1.lat = 95.0: must be <= 90",
        "probes.ok-1.colour = 'red': unknown key",
        "probes.ok-1.interfaces.eth0.access = 'ftth': expected one of 'fixed', 'mobile'",
        "probes.ok-2.commune: is required",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert "inventory.toml" in text


def test_lat_without_lon_is_a_problem(tmp_path: Path) -> None:
    _, problems = _problems(
        tmp_path, '[probes.p-1]\ncommune = "A"\nprovince = "B"\nlat = 10.0\n', "inventory"
    )
    assert problems == ["probes.p-1: give both lat and lon, or neither"]


def test_every_targets_problem_is_named(tmp_path: Path) -> None:
    text = "year = 1999\n[fixed]\ndownload_mbps = -5\nupload = 3\n[mobile]\nlatency_ms = 10\n"
    _, problems = _problems(tmp_path, text, "targets")
    for want in [
        "year = 1999: must be >= 2000",
        "fixed.download_mbps = -5: must be > 0",
        "fixed.upload = 3: unknown key; did you mean 'upload_mbps'?",
        "mobile.download_mbps: is required",
    ]:
        assert any(p.startswith(want) for p in problems), (want, problems)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(configkit.ConfigError, match="cannot read the file"):
        load_targets(tmp_path / "nope.toml")
    _, problems = _problems(tmp_path, "[probes\n", "inventory")
    assert "not valid TOML" in problems[0]
