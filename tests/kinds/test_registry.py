"""The registry is the one list of kinds: every kind folder is registered, and everything
that names kinds (wire, config, CLI, collector rows, docs, packaging) agrees with it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import msgspec
import pytest
from probefleet import kinds
from probefleet.agent.cli import build_parser
from probefleet.agent.config import MeasurementsSection, config_type
from probefleet.collector.inventory import Enrichment, InventoryFile
from probefleet.collector.points import parse, points_from
from probefleet.core import wire
from probefleet.kinds import samples
from probefleet.kinds.base import Row, Schedule

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = sorted(
    p.parent.name for p in (ROOT / "kinds").glob("*/__init__.py") if p.parent.name != "common"
)
GOLDEN = ROOT / "tests" / "golden"


def test_every_kind_folder_is_registered_under_its_own_name() -> None:
    assert sorted(kinds.names()) == FOLDERS
    for name, spec in kinds.SPECS.items():
        assert spec.folder == (ROOT / "kinds" / name).resolve()
        assert spec.result.__struct_config__.tag == name
        assert spec.measurement().name == name


def test_registering_the_same_name_twice_is_refused() -> None:
    spec = kinds.spec("latency")
    with pytest.raises(ValueError, match="registered twice"):
        kinds.register(
            kinds.KindSpec(spec.name, spec.result, spec.rows, spec.measurement, spec.folder)
        )
    assert kinds.spec("latency") is spec


@pytest.mark.parametrize("name", kinds.names())
def test_each_kind_has_the_parts_of_its_folder(name: str) -> None:
    spec = kinds.spec(name)
    for part in ("payload.py", "fields.py", "measure.py", "sample.toml", "README.md"):
        assert (spec.folder / part).is_file(), f"kinds/{name}/{part} is missing"
    assert list((spec.folder / "tests").glob("test_*.py")), f"kinds/{name}/tests/ has no test"
    table = tomllib.loads(spec.sample.read_text())["measurements"]
    assert list(table) == [name], f"kinds/{name}/sample.toml documents {list(table)}"
    # The fragment is a valid table of the kind's own config, with every key of it.
    decoded = msgspec.convert(table[name], spec.measurement().config_type)
    assert set(table[name]) == set(msgspec.structs.asdict(decoded)), name


def test_the_config_has_one_table_per_kind_and_nothing_else() -> None:
    fields = set(MeasurementsSection.__struct_fields__)
    assert fields == set(kinds.names())
    for name in kinds.names():
        assert issubclass(kinds.spec(name).measurement().config_type, Schedule)
    assert config_type() is config_type()  # made once per registry, not per load


def test_the_agents_sample_config_is_assembled_from_the_kinds() -> None:
    sample = ROOT / "config" / "agent.sample.toml"
    assert samples.assembled(sample.read_text()) == sample.read_text(), (
        "config/agent.sample.toml is stale: run `make samples`"
    )


def test_probe_agent_measure_offers_exactly_the_registered_kinds() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    measure = sub.choices["measure"]  # type: ignore[index]
    name = next(a for a in measure._actions if a.dest == "name")
    assert list(name.choices) == list(kinds.names())


@pytest.mark.parametrize("name", kinds.names())
def test_a_golden_of_each_kind_becomes_its_rows_and_points(name: str) -> None:
    raw = (GOLDEN / f"result-{name}.json").read_bytes()
    doc = json.loads(raw)
    topics = wire.Topics()
    parsed = parse(topics.result(doc["probe_id"], name), raw, topics)
    assert isinstance(parsed.result, kinds.spec(name).result)
    rows = kinds.spec(name).rows(parsed.result.data)
    assert rows
    assert all(isinstance(r, Row) for r in rows)
    points = points_from(parsed.result, parsed.probe, Enrichment(InventoryFile(probes={}), None))
    assert [p.measurement for p in points] == [name] * len(rows)


def test_the_shared_distribution_ships_every_kind_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(project["tool"]["setuptools"]["packages"])
    for folder in [*FOLDERS, "common"]:
        assert f"probefleet.kinds.{folder}" in packages, f"pyproject.toml: add kinds/{folder}"
