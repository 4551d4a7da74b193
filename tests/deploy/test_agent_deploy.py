"""deploy/agent: the systemd unit (its keys, and systemd's own verifier) and install.sh (syntax,
shellcheck, a dry run, a real install under --root whose config the agent accepts, re-runs,
what it installs from a checkout and from a release folder: the hashed lock, then our code).
tests/install runs those pip commands for real."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from probefleet.agent import cli
from probefleet.agent.config import AgentConfig, MeasurementsSection, ProbeSection, load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "agent"
UNIT = DEPLOY / "probefleet-agent.service"
INSTALL = DEPLOY / "install.sh"
PROBE_AGENT = Path(sys.executable).parent / "probe-agent"
PROBE_ID = "dongnai-tanphu-01"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: section -> key -> every value given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def _one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key, [])
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def _default_state_dir() -> str:
    state_dir = msgspec.structs.fields(ProbeSection)[1]
    assert state_dir.name == "state_dir"
    return str(state_dir.default)


# --- the unit -------------------------------------------------------------------------------


def test_unit_runs_the_agent_as_its_own_user_with_the_default_config(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    service = unit["Service"]
    assert (_one(service, "User"), _one(service, "Group")) == ("probefleet", "probefleet")
    argv = _one(service, "ExecStart").split()
    assert argv == [
        "/opt/probefleet/venv/bin/probe-agent",
        "run",
        "--config",
        str(cli.DEFAULT_CONFIG),
    ]
    assert _one(service, "Restart") == "always"
    assert float(_one(service, "RestartSec")) > 0
    assert _one(unit["Unit"], "StartLimitIntervalSec") == "0"  # never give up
    assert _one(service, "KillSignal") == "SIGTERM"
    assert 30 <= int(_one(service, "TimeoutStopSec")) <= 120
    assert _one(service, "MemoryMax").endswith("M")
    for key in ("After", "Wants"):
        assert set(_one(unit["Unit"], key).split()) == {"time-sync.target", "network-online.target"}
    assert _one(unit["Install"], "WantedBy") == "multi-user.target"


def test_unit_grants_cap_net_raw_and_nothing_else(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit["Service"]
    assert _one(service, "CapabilityBoundingSet") == "CAP_NET_RAW"
    assert _one(service, "AmbientCapabilities") == "CAP_NET_RAW"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
    }.items():
        assert _one(service, key) == value, key
    families = set(_one(service, "RestrictAddressFamilies").split())
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert "MemoryDenyWriteExecute" not in service  # breaks ctypes (see the unit's comment)


def test_unit_lets_the_agent_write_its_state_dir_and_nothing_else(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    service = unit["Service"]
    state_dir = _default_state_dir()
    writable = [p.lstrip("-") for v in service["ReadWritePaths"] for p in v.split()]
    assert any(state_dir == w or state_dir.startswith(w.rstrip("/") + "/") for w in writable)
    assert "/var/lib/" + _one(service, "StateDirectory") == state_dir
    assert _one(service, "WorkingDirectory") == state_dir
    # Health reports the disk the spool grows on: the same directory by default.
    assert MeasurementsSection().health.disk_path == state_dir


def test_unit_hands_the_password_over_as_a_credential(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    service = unit["Service"]
    name, _, source = _one(service, "LoadCredential").partition(":")
    assert source == "/etc/probefleet/mqtt-password"
    assert f"PROBEFLEET_MQTT_PASSWORD_FILE=%d/{name}" in service["Environment"]


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """systemd's own parser (offline): unknown keys, keys in the wrong section and bad values
    are reported. The agent's binary is not installed here: a stand-in takes its path."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package: systemd)")
    stand_in = tmp_path / "probe-agent"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/opt/probefleet/venv/bin/probe-agent", str(stand_in)))
    proc = subprocess.run(
        [analyze, "verify", copy.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
    broken = tmp_path / "broken.service"  # the verifier is not blind
    broken.write_text(copy.read_text().replace("[Install]", "Restrt=always\n[Install]"))
    proc = subprocess.run(
        [analyze, "verify", broken.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert "Unknown key" in proc.stderr


# --- install.sh ------------------------------------------------------------------------------


def test_install_sh_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(INSTALL)], check=True)
    assert os.access(INSTALL, os.X_OK)


def test_install_sh_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (Debian package: shellcheck)")
    proc = subprocess.run([shellcheck, str(INSTALL)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "stick"
    folder.mkdir()
    (folder / "pw").write_text("s3cret pass'word\n")
    (folder / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    return folder


def install(
    root: Path | None, stick: Path, *extra: str, broker: str = "mqtt.dongnai.example.vn"
) -> subprocess.CompletedProcess[str]:
    argv = [
        str(INSTALL),
        "--probe-id",
        PROBE_ID,
        "--broker",
        broker,
        "--ca",
        str(stick / "ca.pem"),
        "--password-file",
        str(stick / "pw"),
        "--interface",
        "eth0:fixed",
        "--interface",
        "wwan0:mobile:20000",
        *(["--root", str(root)] if root else []),
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBEFLEET_")}
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60, env=env)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_dry_run_prints_every_step_and_changes_nothing(tmp_path: Path, secrets: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    staged = install(root, secrets, "--dry-run")
    assert staged.returncode == 0, staged.stderr
    assert _files(root) == []
    assert f"+ write {root}/etc/probefleet/mqtt-password (mode 0600)" in staged.stdout
    assert "dry run: nothing was changed" in staged.stdout
    # Without --root: the whole installation as it would run on a Pi, in order.
    before = Path("/etc/probefleet").exists()
    real = install(None, secrets, "--dry-run")
    assert real.returncode == 0, real.stderr
    assert Path("/etc/probefleet").exists() == before
    # wwan0 is mobile: its modem is read through ModemManager (the radio context).
    (packages,) = [ln for ln in real.stdout.splitlines() if "system packages:" in ln]
    assert packages.endswith(" modemmanager"), packages
    steps = [
        "==> system packages",
        "+ useradd --system" if not _user_exists("probefleet") else "  exists",
        "+ python3 -m venv /opt/probefleet/venv",
        *_pip_steps_from_checkout(ROOT),
        "+ write /etc/probefleet/agent.toml (mode 0644, owner root:root)",
        "+ write /etc/probefleet/mqtt-password (mode 0600, owner root:root)",
        "+ write /etc/systemd/system/probefleet-agent.service (mode 0644, owner root:root)",
        "+ env PROBEFLEET_MQTT_PASSWORD_FILE=/etc/probefleet/mqtt-password "
        "/opt/probefleet/venv/bin/probe-agent check --config /etc/probefleet/agent.toml",
        "+ systemctl daemon-reload",
        "+ systemctl enable probefleet-agent.service",
        "+ systemctl restart probefleet-agent.service",
    ]
    at = 0
    for step in steps:
        found = real.stdout.find(step, at)
        assert found >= 0, f"{step!r} missing or out of order in:\n{real.stdout}"
        at = found
    assert "s3cret" not in real.stdout + staged.stdout


PIP = "+ /opt/probefleet/venv/bin/pip install --disable-pip-version-check"


def _pip_steps_from_checkout(checkout: Path) -> list[str]:
    """install.sh's pip lines for a checkout: setuptools and the agent's dependencies from
    the hashed lock, then our two distributions built without isolation, no dependencies."""
    return [
        f"{PIP} --require-hashes -r {checkout}/requirements/build.txt",
        f"{PIP} --require-hashes -r {checkout}/requirements/agent.txt",
        f"{PIP} --no-deps --no-build-isolation --force-reinstall {checkout} {checkout}/agent",
    ]


def _pip_steps(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(PIP)]


def test_install_from_the_checkout_uses_the_hashed_lock(tmp_path: Path, secrets: Path) -> None:
    proc = install(None, secrets, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"probefleet from {ROOT} (checkout) into /opt/probefleet/venv" in proc.stdout
    assert _pip_steps(proc.stdout) == _pip_steps_from_checkout(ROOT)
    for lock in ("build.txt", "agent.txt"):
        assert (ROOT / "requirements" / lock).is_file()


def _release(folder: Path) -> Path:
    """What `make dist` makes (scripts/dist.sh), with stand-in wheels: enough for a dry run."""
    folder.mkdir()
    for name in ("probefleet-0.2.0-py3-none-any.whl", "probefleet_agent-0.2.0-py3-none-any.whl"):
        (folder / name).write_bytes(b"PK")
    shutil.copyfile(ROOT / "requirements" / "agent.txt", folder / "agent.txt")
    return folder


def test_install_from_a_release_folder_needs_no_build(tmp_path: Path, secrets: Path) -> None:
    release = _release(tmp_path / "probefleet-0.2.0")
    proc = install(None, secrets, "--dry-run", "--source", str(release))
    assert proc.returncode == 0, proc.stderr
    assert f"probefleet from {release} (release) into /opt/probefleet/venv" in proc.stdout
    assert _pip_steps(proc.stdout) == [
        f"{PIP} --require-hashes -r {release}/agent.txt",
        f"{PIP} --no-deps --force-reinstall {release}/probefleet-0.2.0-py3-none-any.whl "
        f"{release}/probefleet_agent-0.2.0-py3-none-any.whl",
    ]
    # Named relative to the current directory, as a technician types it on the stick.
    relative = subprocess.run(
        [str(INSTALL), "--probe-id", PROBE_ID, "--broker", "b.example", "--password-file",
         str(secrets / "pw"), "--source", release.name, "--dry-run"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert relative.returncode == 0, relative.stderr
    assert _pip_steps(relative.stdout) == _pip_steps(proc.stdout)


@pytest.mark.parametrize(
    "content",
    [
        ["probefleet-0.2.0-py3-none-any.whl"],  # the old single wheel: no agent in it now
        ["probefleet-0.2.0-py3-none-any.whl", "probefleet_agent-0.2.0-py3-none-any.whl"],
        [
            "probefleet-0.2.0-py3-none-any.whl",
            "probefleet-0.1.0-py3-none-any.whl",
            "probefleet_agent-0.2.0-py3-none-any.whl",
            "agent.txt",
        ],
    ],
)
def test_install_refuses_a_source_it_cannot_install_exactly(
    tmp_path: Path, secrets: Path, content: list[str]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    folder = tmp_path / "release"
    folder.mkdir()
    for name in content:
        (folder / name).write_text("x")
    for source in (folder, folder / content[0]):
        proc = install(root, secrets, "--source", str(source))
        assert proc.returncode == 2, proc.stdout
        assert f"--source '{source}': give a release folder" in proc.stderr
        assert "make dist" in proc.stderr
        assert _files(root) == []


def _user_exists(name: str) -> bool:
    return subprocess.run(["id", "-u", name], capture_output=True, check=False).returncode == 0


def test_install_under_root_writes_a_config_the_agent_accepts(
    tmp_path: Path, secrets: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    proc = install(root, secrets)
    assert proc.returncode == 0, proc.stderr
    etc = root / "etc" / "probefleet"
    password = etc / "mqtt-password"
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    assert password.read_text() == "s3cret pass'word\n"
    assert stat.S_IMODE((etc / "agent.toml").stat().st_mode) == 0o644
    assert (etc / "ca.pem").read_bytes() == (secrets / "ca.pem").read_bytes()
    assert (root / "etc/systemd/system/probefleet-agent.service").read_bytes() == UNIT.read_bytes()
    if shutil.which("systemctl"):
        wants = root / "etc/systemd/system/multi-user.target.wants/probefleet-agent.service"
        assert os.readlink(wants) == "/etc/systemd/system/probefleet-agent.service"
    # As the service reads it: the credential through PROBEFLEET_MQTT_PASSWORD_FILE.
    env = {**os.environ, "PROBEFLEET_MQTT_PASSWORD_FILE": str(password)}
    check = subprocess.run(
        [str(PROBE_AGENT), "check", "--config", str(etc / "agent.toml")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert check.returncode == 0, check.stderr
    assert "password    set" in check.stdout
    cfg = load_config(etc / "agent.toml", env={"PROBEFLEET_MQTT_PASSWORD_FILE": str(password)})
    assert cfg.probe.id == PROBE_ID
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("mqtt.dongnai.example.vn", 8883, True)
    assert cfg.mqtt.ca_file == "/etc/probefleet/ca.pem"
    assert cfg.mqtt.password_file == "/etc/probefleet/mqtt-password"  # for `sudo probe-agent`
    assert cfg.mqtt.password == "s3cret pass'word"
    assert [(i.name, i.access, i.monthly_budget_mb) for i in cfg.interfaces] == [
        ("eth0", "fixed", 0),
        ("wwan0", "mobile", 20_000),
    ]
    defaults = msgspec.structs.replace(
        AgentConfig(probe=cfg.probe), mqtt=cfg.mqtt, interfaces=cfg.interfaces
    )
    assert cfg == defaults  # everything else exactly as the sample documents it


def test_install_again_is_idempotent_and_keeps_an_edited_config(
    tmp_path: Path, secrets: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert install(root, secrets).returncode == 0
    config = root / "etc/probefleet/agent.toml"
    first = {p: (root / p).read_bytes() for p in _files(root) if (root / p).is_file()}
    again = install(root, secrets)
    assert again.returncode == 0, again.stderr
    assert "+ write" not in again.stdout
    assert {p: (root / p).read_bytes() for p in first} == first
    # A technician raised the log level; a later install names another broker.
    config.write_text(config.read_text().replace('level = "INFO"', 'level = "DEBUG"'))
    edited = config.read_text()
    moved = install(root, secrets, broker="mqtt2.dongnai.example.vn")
    assert moved.returncode == 0, moved.stderr
    assert config.read_text() == edited
    assert (
        'host = "mqtt2.dongnai.example.vn"' in (root / "etc/probefleet/agent.toml.new").read_text()
    )
    assert "exists and differs: kept" in moved.stdout
    forced = install(root, secrets, "--overwrite-config", broker="mqtt2.dongnai.example.vn")
    assert forced.returncode == 0, forced.stderr
    assert 'host = "mqtt2.dongnai.example.vn"' in config.read_text()
    backups = list(config.parent.glob("agent.toml.bak-*"))
    assert [b.read_text() for b in backups] == [edited]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--probe-id", "Tan Phu"], "--probe-id 'Tan Phu'"),
        (["--broker", "mqtt example"], "--broker 'mqtt example'"),
        (["--port", "99999"], "--port '99999'"),
        (["--interface", "wwan0:4g"], "--interface 'wwan0:4g'"),
        (["--password-file", "/nonexistent/pw"], "--password-file '/nonexistent/pw'"),
        (["--colour", "blue"], "unknown option: --colour"),
    ],
)
def test_install_refuses_bad_arguments_before_changing_anything(
    tmp_path: Path, args: list[str], message: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "pw").write_text("pw\n")
    base = {
        "--probe-id": PROBE_ID,
        "--broker": "mqtt.example.vn",
        "--password-file": str(tmp_path / "pw"),
        "--root": str(root),
    }
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = [str(INSTALL)] + [x for kv in base.items() for x in kv]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert _files(root) == []


def test_install_needs_a_password_the_first_time(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    argv = [str(INSTALL), "--probe-id", PROBE_ID, "--broker", "b.example", "--root", str(root)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBEFLEET_")}
    proc = subprocess.run(
        argv, capture_output=True, text=True, check=False, env=env, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 2
    assert "no MQTT password" in proc.stderr
    assert _files(root) == []
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        env={**env, "PROBEFLEET_MQTT_PASSWORD": "from-env"},
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert (root / "etc/probefleet/mqtt-password").read_text() == "from-env\n"
    # Later runs without a password keep the installed one.
    proc = subprocess.run(
        argv, capture_output=True, text=True, check=False, env=env, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr
    assert "kept (no new password given)" in proc.stdout
