"""What imports what: the core imports neither program, the collector loads no agent code
(no measurement, no runtime), the agent loads no collector code. Checked in fresh
interpreters, on the modules really loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KIND_FOLDERS = sorted(
    p.parent.name for p in (ROOT / "kinds").glob("*/__init__.py") if p.parent.name != "common"
)
# What the collector may load of a kind's folder: its declaration, payload and field table.
SHARED_KIND_MODULES = {"", ".payload", ".fields"}


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, cwd="/", timeout=60, check=True,
    )  # fmt: skip
    return set(json.loads(out.stdout.splitlines()[-1]))


def _agent_code(modules: set[str]) -> set[str]:
    kind_code = {
        m
        for m in modules
        for kind in KIND_FOLDERS
        if m.startswith(f"probefleet.kinds.{kind}")
        and m.removeprefix(f"probefleet.kinds.{kind}") not in SHARED_KIND_MODULES
    }
    helpers = {
        m
        for m in modules
        if m.startswith("probefleet.kinds.common.") and m != "probefleet.kinds.common.rows"
    }
    return kind_code | helpers | {m for m in modules if m.startswith("probefleet.agent")}


@pytest.mark.parametrize(
    "code",
    [
        "import probefleet.collector.service",
        "from probefleet.collector.cli import main",
        "import probefleet.collector.report.run",
        # a result decoded and turned into points: the registry's kinds, still no agent code
        "from probefleet.collector import points; from probefleet.core import wire;"
        "import pathlib; r = wire.decode_result(pathlib.Path("
        f"{str(ROOT / 'tests/golden/result-throughput.json')!r}).read_bytes())",
    ],
)
def test_the_collector_loads_no_agent_measurement_or_runtime_module(code: str) -> None:
    modules = loaded_after(code)
    assert "probefleet.collector" in modules
    assert _agent_code(modules) == set()
    # (dnspython is left out: paho imports it for SRV look-ups wherever it is installed)
    for third_party in ("apscheduler", "psutil", "speedtest", "icmplib"):
        assert third_party not in modules, f"{third_party} loaded by the collector"


def test_the_agent_loads_no_collector_module() -> None:
    modules = loaded_after(
        "import probefleet.agent.daemon, probefleet.agent.cli; from probefleet import kinds;"
        "kinds.measurements()"
    )
    assert {m for m in modules if m.startswith("probefleet.collector")} == set()
    assert "influxdb_client" not in modules
    assert "probefleet.kinds.throughput.measure" in modules  # the check sees real loading


def test_the_core_imports_neither_program_nor_the_kinds() -> None:
    modules = loaded_after(
        "import probefleet.core.wire, probefleet.core.configkit, probefleet.core.mqtt"
    )
    assert {
        m for m in modules if m.startswith("probefleet.") and not m.startswith("probefleet.core")
    } == set()
    assert "paho" not in modules  # only when a client is made


def test_no_generic_top_level_name_is_importable_from_an_install() -> None:
    modules = loaded_after("import probefleet.agent.cli, probefleet.collector.cli")
    for name in ("agent", "collector", "core", "kinds", "grafana"):
        assert name not in modules
