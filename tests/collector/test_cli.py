"""`probe-collector run`, `check`, `validate`, `report` and `deadletters`: config, file and
state problems end cleanly, every one named, no traceback."""

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


def test_fleet_adds_the_collectors_lag_before_calling_a_probe_silent(tmp_path: Path) -> None:
    """Issue 18: quiet while the collector is behind (its newest ping back, in the state) is
    the collector's lag, not the probe's silence."""
    import json
    import time

    from probefleet.collector import lag
    from probefleet.collector.presence import ProbePresence
    from probefleet.collector.statedb import StateDB

    config = _config(tmp_path, '[probes.p-1]\ncommune = "A"\nprovince = "B"\n')
    now = time.time()
    quiet = ProbePresence(status="online", status_s=now - 2000, last_seen_s=now - 2000)
    db = StateDB(tmp_path / "state")
    db.save_presence({"p-1": quiet})
    db.set_meta(lag.THROUGH_KEY, str(now - 3600))  # taken nothing for an hour
    db.close()
    behind = _cli("fleet", "--config", str(config), "--format", "json")
    assert behind.returncode == 0, behind.stderr
    db = StateDB(tmp_path / "state")
    db.set_meta(lag.THROUGH_KEY, str(now))  # caught up: the quiet is the probe's
    db.close()
    caught_up = _cli("fleet", "--config", str(config), "--format", "json")
    assert caught_up.returncode == 0, caught_up.stderr

    def presence(out: str) -> str:
        (row,) = json.loads(out)
        return str(row["state"])

    assert presence(behind.stdout) == "online"
    assert presence(caught_up.stdout) == "silent"


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


def test_check_reads_every_file_the_config_names_and_lists_every_problem(
    tmp_path: Path,
) -> None:
    """Issue 19: check said OK with a wrong inventory path or a broken targets or alerts
    file; run, fleet and report then failed."""
    config = _config(tmp_path, '[probes.p-1]\ncommune = "A"\n')  # province missing
    (tmp_path / "targets.toml").write_text("[fixed\n")  # not TOML
    (tmp_path / "alerts.toml").write_text("[[rule]]\nnonsense = 1\n")
    text = config.read_text().replace(
        str(ROOT / "config/targets.sample.toml"), str(tmp_path / "targets.toml")
    )
    config.write_text(text + f'alerts = "{tmp_path / "alerts.toml"}"\n')
    proc = _cli("check", "--config", str(config), "--settings", str(tmp_path / "none.toml"))
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    assert "4 files have problems" in proc.stderr, proc.stderr
    assert "probes.p-1.province: is required" in proc.stderr
    assert f"{tmp_path / 'targets.toml'}: 1 config problem:" in proc.stderr
    assert "not valid TOML" in proc.stderr
    assert f"{tmp_path / 'alerts.toml'}:" in proc.stderr
    assert f"{tmp_path / 'none.toml'}" in proc.stderr
    assert proc.stdout == ""


def test_check_names_a_missing_inventory(tmp_path: Path) -> None:
    config = _config(tmp_path, "")
    (tmp_path / "inventory.toml").unlink()
    proc = _cli("check", "--config", str(config))
    assert proc.returncode == 2
    assert f"{tmp_path / 'inventory.toml'}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_says_ok_only_when_every_file_loads(tmp_path: Path) -> None:
    config = _config(tmp_path, '[probes.p-1]\ncommune = "A"\nprovince = "B"\n')
    proc = _cli("check", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "OK, and every file it names" in proc.stdout
    assert str(tmp_path / "inventory.toml") in proc.stdout


def test_validate_names_a_missing_file_or_a_directory(tmp_path: Path) -> None:
    good = tmp_path / "status.json"
    good.write_text('{"schema": 1, "probe_id": "p-1", "state": "offline"}')
    proc = _cli("validate", "--type", "status", str(tmp_path / "gone.json"), str(tmp_path),
                str(good))  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{tmp_path / 'gone.json'}: cannot read it" in proc.stderr
    assert f"{tmp_path}: cannot read it" in proc.stderr
    assert f"{good}: OK (status)" in proc.stdout  # the readable one is still checked


def test_report_refuses_an_unwritable_output_before_any_query(tmp_path: Path) -> None:
    """Issue 19: a traceback after all 43 queries ran. The config's InfluxDB is a closed
    port: an exit 2 naming --out shows nothing was queried."""
    config = _config(tmp_path, "")
    config.write_text(config.read_text() + '[influxdb]\nurl = "http://127.0.0.1:9"\n')
    for out, why in (
        (tmp_path / "no" / "such" / "r.html", "no such directory"),
        (tmp_path, "is a directory"),
    ):
        proc = _cli("report", "--config", str(config), "--from", "2025-01-01",
                    "--to", "2025-12-31", "--out", str(out), "--quiet")  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert f"--out {out if why == 'is a directory' else out.parent}: {why}" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_check_loads_the_report_settings_area_file(tmp_path: Path) -> None:
    """The map's boundary file is checked with the settings that name it: a broken one
    fails `report` before any query, so `check` must name it too."""
    config = _config(tmp_path, '[probes.p-1]\ncommune = "A"\nprovince = "B"\n')
    (tmp_path / "areas.geojson").write_text('{"type": "FeatureCollection", "features": [1]}')
    settings = tmp_path / "report.toml"
    settings.write_text('[report]\nareas_file = "areas.geojson"\n')  # beside the settings
    proc = _cli("check", "--config", str(config), "--settings", str(settings))
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    assert f"{tmp_path / 'areas.geojson'}" in proc.stderr
    assert "features[0]" in proc.stderr, proc.stderr
    sample = ROOT / "config/areas/dongnai.sample.geojson"
    settings.write_text(f'[report]\nareas_file = "{sample}"\n')
    proc = _cli("check", "--config", str(config), "--settings", str(settings))
    assert proc.returncode == 0, proc.stderr
    assert str(sample) in proc.stdout
