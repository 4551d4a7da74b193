"""Remote config rules (no broker): what the centre may change, merging, validation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from probefleet.agent.fleet import REMOTE_FILE, ConfigSource, RemoteConfigError, merge, parse_remote
from probefleet.core import configkit

LOCAL = '[probe]\nid = "p-1"\nstate_dir = "{state}"\n[measurements.latency]\ncount = 5\n'


def source(tmp_path: Path) -> ConfigSource:
    path = tmp_path / "agent.toml"
    path.write_text(LOCAL.format(state=tmp_path / "state"))
    return ConfigSource(path, env={})


def test_json_and_toml_are_accepted() -> None:
    assert parse_remote(b'{"gate": {"max_cpu_pct": 40}}') == {"gate": {"max_cpu_pct": 40}}
    assert parse_remote(b"[gate]\nmax_cpu_pct = 40\n") == {"gate": {"max_cpu_pct": 40}}


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b'{"mqtt": {"host": "x"}}', "mqtt: not changeable from the centre"),
        (b'{"probe": {"id": "x"}, "interfaces": []}', "interfaces, probe: not changeable"),
        (b"{not json", "not valid JSON or TOML"),
        (b"[1, 2]", "not valid JSON or TOML"),
        # Parsers recurse per level: refused before parsing (they killed the agent at
        # every start while the retained message stayed).
        (b'{"measurements":' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper than 16"),
        (b"x = " + b"[" * 5000 + b"]" * 5000, "nested deeper than 16"),
        (b"[" * 60_000, "nested deeper than 16"),
        (b'{"gate": {"x": "' + b"a" * 70_000 + b'"}}', "the limit is 65536"),
    ],
)
def test_what_the_centre_may_not_send(payload: bytes, match: str) -> None:
    with pytest.raises(RemoteConfigError, match=match):
        parse_remote(payload)


def test_remote_keys_override_the_same_keys_of_the_file_only() -> None:
    local: dict[str, Any] = {
        "probe": {"id": "p"},
        "measurements": {"latency": {"count": 5}, "dns": {"x": 1}},
    }
    merged = merge(local, {"measurements": {"latency": {"interval_s": 600}}})
    assert merged["measurements"] == {"latency": {"count": 5, "interval_s": 600}, "dns": {"x": 1}}
    assert merged["probe"] == {"id": "p"}
    assert local["measurements"]["latency"] == {"count": 5}  # the file's dict is untouched


def test_remote_values_are_checked_by_the_file_decoder(tmp_path: Path) -> None:
    src = source(tmp_path)
    cfg = src.build({"measurements": {"latency": {"interval_s": 600}}})
    assert cfg.measurements.latency.interval_s == 600
    assert cfg.measurements.latency.count == 5  # the file's own key stands
    with pytest.raises(configkit.ConfigError, match=r"schedule.jitter_s = -1: must be >= 0"):
        src.build({"schedule": {"jitter_s": -1}})


def test_a_kept_remote_config_is_used_at_start_unless_it_no_longer_fits(tmp_path: Path) -> None:
    src = source(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    (state / REMOTE_FILE).write_text(json.dumps({"gate": {"max_cpu_pct": 55.0}}))
    assert src.load().gate.max_cpu_pct == 55.0
    (state / REMOTE_FILE).write_text(json.dumps({"gate": {"max_cpu_pct": 555.0}}))
    fresh = source(tmp_path)
    assert fresh.load().gate.max_cpu_pct == 30.0  # the file alone
    assert fresh.remote == {}


@pytest.mark.parametrize(
    ("table", "named"),
    [
        (b'"throughput": {"duration_s": NaN}', "duration_s = nan: must be a finite"),
        (b'"throughput": {"duration_s": 1e400}', "duration_s = inf: must be a finite"),
        (b'"throughput": {"streams_download": 100000}', "streams_download = 100000: must be <= 64"),
        (b'"latency": {"interval_s": "often"}', "interval_s = 'often': expected an integer"),
        (b'"throughput": {"duration_s": 1e9}', "duration_s = 1000000000.0: must be <="),
    ],
)
def test_remote_numbers_out_of_reason_are_refused_naming_the_key(
    tmp_path: Path, table: bytes, named: str
) -> None:
    src = source(tmp_path)
    with pytest.raises(configkit.ConfigError, match=re.escape(named)):
        src.build(parse_remote(b'{"measurements": {' + table + b"}}"))
