"""The agent's [radio] section: its defaults, and every bad value named with file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from probefleet.agent.config import RadioSection, load_config
from probefleet.core import configkit

NO_ENV: dict[str, str] = {}


def test_the_defaults_attach_and_read_the_system_bus(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[probe]\nid = "p-1"\n')
    cfg = load_config(path, env=NO_ENV)
    assert cfg.radio == RadioSection(attach=True, bus="system", signal_rate_s=10, timeout_s=2.0)


def test_every_bad_radio_value_is_named(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[probe]\nid = "p-1"\n[radio]\nattach = "yes"\nsignal_rate_s = -1\ntimeout_s = 0.0\n'
        "colour = 1\n"
    )
    with pytest.raises(configkit.ConfigError) as caught:
        load_config(path, env=NO_ENV)
    assert caught.value.path == str(path)
    problems = "\n".join(caught.value.problems)
    for want in (
        "radio.attach = 'yes': expected true or false",
        "radio.signal_rate_s = -1: must be >= 0",
        "radio.timeout_s = 0.0: must be >= 0.05",
        "radio.colour = 1: unknown key",
    ):
        assert want in problems, problems


@pytest.mark.parametrize("bus", ["system", "session", "unix:path=/run/dbus/system_bus_socket"])
def test_a_bus_is_a_name_or_an_address(tmp_path: Path, bus: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f'[probe]\nid = "p-1"\n[radio]\nbus = "{bus}"\n')
    assert load_config(path, env=NO_ENV).radio.bus == bus


def test_a_bus_that_is_neither_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[probe]\nid = "p-1"\n[radio]\nbus = "systm"\n')
    with pytest.raises(configkit.ConfigError) as caught:
        load_config(path, env=NO_ENV)
    assert caught.value.path == str(path)
    assert caught.value.problems == [
        'radio.bus = \'systm\': expected "system", "session" or a D-Bus address '
        "(unix:path=... or tcp:host=...,port=...)"
    ]
