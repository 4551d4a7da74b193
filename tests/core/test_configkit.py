"""Both programs' config files: samples, defaults, every problem at once, secrets, exit 2."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import msgspec
import pytest
from probefleet.agent.config import AgentConfig
from probefleet.agent.config import load_config as load_agent
from probefleet.collector.config import CollectorConfig
from probefleet.collector.config import load_config as load_collector
from probefleet.core import configkit

ROOT = Path(__file__).resolve().parents[2]
AGENT_SAMPLE = ROOT / "config" / "agent.sample.toml"
COLLECTOR_SAMPLE = ROOT / "config" / "collector.sample.toml"
NO_ENV: dict[str, str] = {}


def test_agent_sample_parses_to_the_documented_defaults() -> None:
    cfg = load_agent(AGENT_SAMPLE, env=NO_ENV)
    # Only the probe id has no default; with it alone we must get the very same config.
    minimal = configkit.build({"probe": {"id": cfg.probe.id}}, AgentConfig)
    minimal = minimal.resolve(NO_ENV, [], AGENT_SAMPLE.parent)
    assert cfg == minimal


def test_collector_sample_parses_to_the_documented_defaults() -> None:
    cfg = load_collector(COLLECTOR_SAMPLE, env=NO_ENV)
    assert cfg == CollectorConfig().resolve(NO_ENV, [], COLLECTOR_SAMPLE.parent)


def _sample_keys(path: Path) -> set[str]:
    """Dotted keys in the sample, counting commented-out [[interfaces]] examples."""
    text = path.read_text(encoding="utf-8")
    example = re.compile(r"^# (\[\[[a-z]+\]\]$|[a-z_]+ = )")
    uncommented = "\n".join(line[2:] if example.match(line) else line for line in text.splitlines())
    keys: set[str] = set()

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        elif isinstance(node, list) and node and isinstance(node[0], dict):
            for item in node:
                walk(item, prefix)
        else:
            keys.add(prefix.rstrip("."))

    walk(tomllib.loads(uncommented), "")
    # A list of tables left empty (``tls = []``) is documented by an indented, commented
    # example inside its table ("#   [[a.b.tls]]" then "#   key = ..." lines): TOML cannot
    # have it uncommented there, so its keys are read from the comment.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if (m := re.match(r"^#\s+\[\[([a-z_.]+)\]\]$", line)) and m.group(1) in keys:
            keys.discard(m.group(1))
            for follow in lines[i + 1 :]:
                if not (k := re.match(r"^#\s+([a-z0-9_]+) = ", follow)):
                    break
                keys.add(f"{m.group(1)}.{k.group(1)}")
    return keys


@pytest.mark.parametrize(
    ("sample", "cls"), [(AGENT_SAMPLE, AgentConfig), (COLLECTOR_SAMPLE, CollectorConfig)]
)
def test_every_key_is_documented_in_the_sample(sample: Path, cls: type[msgspec.Struct]) -> None:
    assert _sample_keys(sample) == set(configkit.field_paths(cls))


BAD_AGENT = """\
colour = "blue"
[probe]
id = "Bien Hoa 01"
[mqtt]
port = "eighty"
tls = "yes"
keepalive = 30
[[interfaces]]
name = "eth0"
access = "ftth"
[measurements.latency]
interval_s = 1
[measurements.dns]
enabled = 1
"""


def test_every_problem_is_reported_at_once_with_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BAD_AGENT)
    with pytest.raises(configkit.ConfigError) as caught:
        load_agent(path, env=NO_ENV)
    problems = caught.value.problems
    assert caught.value.path == str(path)
    expected = [
        "colour = 'blue': unknown key",
        "probe.id = 'Bien Hoa 01': must be 1-63 of a-z, 0-9 and -",
        "mqtt.port = 'eighty': expected an integer",
        "mqtt.tls = 'yes': expected true or false",
        "mqtt.keepalive = 30: unknown key; did you mean 'keepalive_s'?",
        "interfaces[0].access = 'ftth': expected one of 'fixed', 'mobile'",
        "measurements.latency.interval_s = 1: must be >= 10",
        "measurements.dns.enabled = 1: expected true or false",
    ]
    assert len(problems) == len(expected), problems
    for want, got in zip(expected, problems, strict=True):
        assert got.startswith(want), (want, got)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[probe]\n", "probe.id: is required"),
        ("", "probe: is required"),
        ("[probe\nid='x'", "not valid TOML"),
        ('[probe]\nid = "ok"\n[mqtt]\ncert_file = "c.pem"\n', "give both or neither"),
        (
            '[probe]\nid = "ok"\n[[interfaces]]\nname="eth0"\naccess="fixed"\n'
            '[[interfaces]]\nname="eth0"\naccess="mobile"\n',
            "interfaces[1].name = 'eth0'",
        ),
        (
            '[probe]\nid = "ok"\n[measurements.ookla]\ninterface = "wwan0"\n',
            "measurements.ookla.interface = 'wwan0': not in [[interfaces]]",
        ),
        ('[probe]\nid = "ok"\n[mqtt]\npassword_file = "missing.txt"\n', "mqtt.password_file = "),
        ('measurements = 3\n[probe]\nid = "ok"\n', "measurements = 3: expected a table"),
        ('interfaces = {name = "eth0"}\n[probe]\nid = "ok"\n', "expected a list"),
        ('[probe]\nid = "ok"\n[mqtt]\nport = 70000\n', "mqtt.port = 70000: must be <= 65535"),
    ],
)
def test_single_problems_are_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(configkit.ConfigError) as caught:
        load_agent(path, env=NO_ENV)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(configkit.ConfigError, match="cannot read the file"):
        load_agent(tmp_path / "nope.toml", env=NO_ENV)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(configkit.ConfigError, match="not UTF-8"):
        load_agent(binary, env=NO_ENV)


def test_secrets_come_from_env_then_files_then_the_file(tmp_path: Path) -> None:
    (tmp_path / "mqtt.secret").write_text("from-config-file\n")
    (tmp_path / "env.secret").write_text("from-env-file\n")
    (tmp_path / "token.secret").write_text("tok-en\n")
    path = tmp_path / "collector.toml"
    path.write_text(
        '[mqtt]\npassword = "inline"\npassword_file = "mqtt.secret"\n'
        '[influxdb]\ntoken_file = "token.secret"\n'
    )
    cfg = load_collector(path, env=NO_ENV)
    assert cfg.mqtt.password == "from-config-file"  # the file wins over the inline value
    assert cfg.influxdb.token == "tok-en"  # one trailing newline stripped
    env = {"PROBEFLEET_MQTT_PASSWORD_FILE": str(tmp_path / "env.secret")}
    assert load_collector(path, env=env).mqtt.password == "from-env-file"
    env["PROBEFLEET_MQTT_PASSWORD"] = "from-env"
    env["PROBEFLEET_INFLUXDB_TOKEN"] = "env-token"
    cfg = load_collector(path, env=env)
    assert (cfg.mqtt.password, cfg.influxdb.token) == ("from-env", "env-token")
    inline = tmp_path / "inline.toml"
    inline.write_text('[mqtt]\npassword = "inline"\n')
    assert load_collector(inline, env=NO_ENV).mqtt.password == "inline"


def test_agent_username_defaults_to_the_probe_id(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[probe]\nid = "dongnai-xuanloc-02"\n')
    assert load_agent(path, env=NO_ENV).mqtt.username == "dongnai-xuanloc-02"


@pytest.mark.parametrize("program", ["agent", "collector"])
def test_cli_exits_2_listing_problems_without_traceback(tmp_path: Path, program: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD_AGENT if program == "agent" else "[mqtt]\nport = -1\nqos = 2\n")
    proc = subprocess.run(
        [sys.executable, "-m", f"{program}.cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr
    want = (
        ["mqtt.port = 'eighty'", "probe.id"]
        if program == "agent"
        else ["mqtt.port = -1: must be >= 1", "mqtt.qos = 2: unknown key"]
    )
    for line in want:
        assert line in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("program", "sample"), [("agent", AGENT_SAMPLE), ("collector", COLLECTOR_SAMPLE)]
)
def test_cli_check_accepts_the_sample(program: str, sample: Path, tmp_path: Path) -> None:
    if program == "collector":  # check reads the files it names: the samples beside it
        text = sample.read_text()
        for name in ("inventory", "targets"):
            text = text.replace(
                f"/etc/probefleet/{name}.toml", str(ROOT / f"config/{name}.sample.toml")
            )
        sample = tmp_path / "collector.toml"
        sample.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", f"{program}.cli", "check", "--config", str(sample)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{sample}: OK" in proc.stdout


# --- the report's settings (config/report.sample.toml) ---------------------------------

REPORT_SAMPLE = ROOT / "config" / "report.sample.toml"


def test_report_sample_parses_to_the_documented_defaults() -> None:
    from probefleet.collector.report.settings import ReportFile, ReportSettings, load_settings

    assert load_settings(REPORT_SAMPLE) == ReportSettings()
    assert _sample_keys(REPORT_SAMPLE) == set(configkit.field_paths(ReportFile))


def test_report_settings_problems_name_key_and_file(tmp_path: Path) -> None:
    from probefleet.collector.report.settings import load_settings

    bad = tmp_path / "report.toml"
    bad.write_text(
        '[report]\npeak_start_hour = 23\npeak_end_hour = 19\ntimezone = "Mars/Olympus"\n'
    )
    with pytest.raises(configkit.ConfigError) as info:
        load_settings(bad)
    assert str(bad) in str(info.value)
    assert "peak_start_hour" in str(info.value)
    bad.write_text("[report]\ndata_network_min_share = 1.5\nservices = 3\n")
    with pytest.raises(configkit.ConfigError) as info:
        load_settings(bad)
    assert "report.data_network_min_share" in str(info.value)
    assert "report.services" in str(info.value)


ALERTS_SAMPLE = ROOT / "config" / "alerts.sample.toml"


def test_alerts_sample_parses_to_the_documented_defaults() -> None:
    from probefleet.collector.alerts.rules import AlertsFile, load_alerts

    cfg = load_alerts(ALERTS_SAMPLE, env=NO_ENV)
    assert cfg == AlertsFile().resolve(NO_ENV, [], ALERTS_SAMPLE.parent)


def test_alerts_file_problems_name_the_key_and_the_file(tmp_path: Path) -> None:
    from probefleet.collector.alerts.rules import load_alerts

    path = tmp_path / "alerts.toml"
    path.write_text(
        '[rules.x]\nmeasurement = "throughput"\nfield = "download_mbps"\nop = "sideways"\n'
        '[rules.y]\nmeasurement = "latency"\nfield = "rtt_avg_ms"\nop = "above"\n'
        '[[overrides]]\nrule = "nope"\nprobe = "p-1"\n'
    )
    with pytest.raises(configkit.ConfigError) as err:
        load_alerts(path, env=NO_ENV)
    text = str(err.value)
    assert "alerts.toml" in text
    assert "rules.x.op" in text
    # Cross-key problems are reported once the types are right: fix x, see y and overrides.
    path.write_text(path.read_text().replace('"sideways"', '"below"\nthreshold = 1.0'))
    with pytest.raises(configkit.ConfigError) as err:
        load_alerts(path, env=NO_ENV)
    assert "rules.y: give either threshold or target" in str(err.value)
    assert "overrides[0].rule: no rule named 'nope'" in str(err.value)
