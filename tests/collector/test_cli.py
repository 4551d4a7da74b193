"""`probe-collector run` and `deadletters`: config and state problems end cleanly, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.collector.helpers import ROOT


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probefleet.collector.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )


def _config(tmp_path: Path, inventory: str) -> Path:
    (tmp_path / "inventory.toml").write_text(inventory)
    path = tmp_path / "collector.toml"
    path.write_text(
        "[files]\n"
        f'inventory = "{tmp_path / "inventory.toml"}"\n'
        f'targets = "{ROOT / "config/targets.sample.toml"}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
    )
    return path


def test_run_exits_2_naming_the_inventory_problem(tmp_path: Path) -> None:
    config = _config(tmp_path, '[probes.p-1]\ncommune = "A"\n')
    proc = _cli("run", "--config", str(config))
    assert proc.returncode == 2, proc.stderr
    assert "probes.p-1.province: is required" in proc.stderr
    assert "inventory.toml" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_deadletters_without_state_says_so(tmp_path: Path) -> None:
    config = _config(tmp_path, "")
    proc = _cli("deadletters", "--config", str(config))
    assert proc.returncode == 1
    assert "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_the_new_subcommands() -> None:
    proc = _cli("--help")
    assert proc.returncode == 0
    assert "run" in proc.stdout
    assert "deadletters" in proc.stdout


def test_fleet_without_state_lists_the_inventory_as_never_seen(tmp_path: Path) -> None:
    config = _config(tmp_path, '[probes.p-1]\ncommune = "A"\nprovince = "B"\n')
    proc = _cli("fleet", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "no collector state" in proc.stderr
    assert "p-1" in proc.stdout
    assert "never seen" in proc.stdout
    assert "0 of 1 probes online" in proc.stdout


def test_alerts_without_state_says_so(tmp_path: Path) -> None:
    config = _config(tmp_path, "")
    proc = _cli("alerts", "--config", str(config))
    assert proc.returncode == 1
    assert "alerting is off" in proc.stderr
    assert "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_fleet_and_alerts() -> None:
    proc = _cli("--help")
    assert "fleet" in proc.stdout
    assert "alerts" in proc.stdout
