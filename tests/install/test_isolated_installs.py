"""Each program installs alone, as a site installs it: the hashed lock (requirements/*.txt)
with pip, then our own wheels without dependencies. The agent's venv carries no collector
code or dependency; the collector's carries no agent runtime and stores a result from a real
Mosquitto in a real InfluxDB; install.sh's own commands install a release folder.

Needs PyPI (or pip's cache) for the locked packages."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.collector.helpers import StandInProbe, count, result, write_config
from tests.harness import InfluxTarget, Mosquitto, eventually

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
VERSION = "0.2.0"
# The inventory sample knows this probe: the point gets its commune, district and operator.
PROBE = "dongnai-tanphu-01"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def _env() -> dict[str, str]:
    """The environment of a site's shell: nothing pointing back into this checkout."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"} and not k.startswith("PROBEFLEET_")
    }


def run(argv: Sequence[str | Path], cwd: Path, *, timeout: float = 600) -> str:
    """Run a command from ``cwd`` (outside the checkout); fail with its output if it fails."""
    proc = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{shlex.join(map(str, argv))} exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    )
    return proc.stdout


def fails(python: Path, code: str, cwd: Path) -> str:
    """Run ``python -c code``, which must fail; its stderr."""
    proc = subprocess.run(
        [str(python), "-c", code], cwd=cwd, env=_env(), capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0, f"{code!r} worked in {python}:\n{proc.stdout}"
    return proc.stderr


@dataclass(frozen=True)
class Wheels:
    core: Path
    agent: Path
    collector: Path


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    """The three wheels, built once by the script `make dist` uses (a clean copy, no deps,
    no build isolation: setuptools from requirements/build.txt, in this venv too)."""
    out = tmp_path_factory.mktemp("wheels")
    run([ROOT / "scripts/build-wheels.sh", sys.executable, out, ".", "agent", "collector"], out)
    names = {p.name for p in out.iterdir()}
    expected = {
        f"probefleet-{VERSION}-py3-none-any.whl",
        f"probefleet_agent-{VERSION}-py3-none-any.whl",
        f"probefleet_collector-{VERSION}-py3-none-any.whl",
    }
    assert names == expected
    core, agent, collector = (out / n for n in sorted(expected))
    return Wheels(core=core, agent=agent, collector=collector)


@dataclass(frozen=True)
class Venv:
    path: Path
    site_packages: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def top_level(self) -> set[str]:
        """What is installed at the top of site-packages: packages and modules by name."""
        names = set()
        for entry in self.site_packages.iterdir():
            if entry.name.endswith((".dist-info", ".pth")) or entry.name == "__pycache__":
                continue
            names.add(entry.name.removesuffix(".py"))
        return names


def make_venv(where: Path, lock: str, wheels: Sequence[Path]) -> Venv:
    """A venv the way a site makes one: build.txt and the program's lock, both hashed, then
    our wheels with --no-deps (the lock brought every dependency)."""
    run([sys.executable, "-m", "venv", where], where.parent)
    pip: list[str | Path] = [where / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    for requirements in ("build.txt", lock):
        run(
            [*pip, "install", "--quiet", "--require-hashes", "-r", REQUIREMENTS / requirements],
            where.parent,
        )
    run([*pip, "install", "--quiet", "--no-deps", "--no-build-isolation", *wheels], where.parent)
    site = run(
        [where / "bin/python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        where.parent,
    )
    return Venv(where, Path(site.strip()))


@pytest.fixture(scope="module")
def agent_venv(tmp_path_factory: pytest.TempPathFactory, wheels: Wheels) -> Venv:
    return make_venv(
        tmp_path_factory.mktemp("agent-only") / "venv", "agent.txt", [wheels.core, wheels.agent]
    )


@pytest.fixture(scope="module")
def collector_venv(tmp_path_factory: pytest.TempPathFactory, wheels: Wheels) -> Venv:
    return make_venv(
        tmp_path_factory.mktemp("collector-only") / "venv",
        "collector.txt",
        [wheels.core, wheels.collector],
    )


# --- the wheels -------------------------------------------------------------------------------


def _wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_each_wheel_holds_only_its_own_package(wheels: Wheels) -> None:
    for wheel, packages in [
        (wheels.agent, ("probefleet/agent/",)),
        (wheels.collector, ("probefleet/collector/",)),
        (wheels.core, ("probefleet/core/", "probefleet/kinds/")),
    ]:
        dist_info = wheel.name.split("-")[0] + f"-{VERSION}.dist-info/"
        files = _wheel_files(wheel)
        stray = [f for f in files if not f.startswith((*packages, dist_info))]
        assert stray == [], f"{wheel.name} carries files outside {packages}: {stray}"
        # A namespace package: no wheel may own probefleet/__init__.py.
        assert "probefleet/__init__.py" not in files
        assert not [f for f in files if "/tests/" in f], f"{wheel.name} carries tests"
        for package in packages:
            assert f"{package}py.typed" in files, f"{wheel.name}: {package} without py.typed"


# --- agent only -------------------------------------------------------------------------------


def test_agent_only_install_runs_probe_agent(agent_venv: Venv, tmp_path: Path) -> None:
    assert "probe-agent" in run([agent_venv.bin("probe-agent"), "--help"], tmp_path)
    out = run(
        [agent_venv.bin("probe-agent"), "check", "--config", ROOT / "config" / "agent.sample.toml"],
        tmp_path,
    )
    assert out.strip(), "check printed nothing"
    assert not agent_venv.bin("probe-collector").exists()


def test_agent_only_install_carries_no_collector(agent_venv: Venv, tmp_path: Path) -> None:
    assert "No module named 'influxdb_client'" in fails(
        agent_venv.python, "import influxdb_client", tmp_path
    )
    assert "No module named 'probefleet.collector'" in fails(
        agent_venv.python, "import probefleet.collector", tmp_path
    )
    namespace = agent_venv.site_packages / "probefleet"
    assert sorted(p.name for p in namespace.iterdir()) == ["agent", "core", "kinds"]
    assert not (namespace / "collector").exists()
    # Only `probefleet.` names of ours: no top-level agent, collector, core, kinds (or tests).
    ours = {"agent", "collector", "core", "kinds", "tests", "demo", "grafana", "bench", "schema"}
    assert agent_venv.top_level() & ours == set()
    # The whole agent imports, and drags in nothing of the collector's.
    run(
        [
            agent_venv.python,
            "-c",
            _imports_none_of("probefleet.agent", ["probefleet.collector", "influxdb_client"]),
        ],
        tmp_path,
    )


# --- collector only ---------------------------------------------------------------------------


def test_collector_only_install_carries_no_agent_runtime(
    collector_venv: Venv, tmp_path: Path
) -> None:
    for module in ("psutil", "apscheduler", "speedtest", "probefleet.agent"):
        assert f"No module named '{module}'" in fails(
            collector_venv.python, f"import {module}", tmp_path
        )
    namespace = collector_venv.site_packages / "probefleet"
    assert sorted(p.name for p in namespace.iterdir()) == ["collector", "core", "kinds"]
    ours = {"agent", "collector", "core", "kinds", "tests", "demo", "grafana", "bench", "schema"}
    assert collector_venv.top_level() & ours == set()
    assert not collector_venv.bin("probe-agent").exists()
    assert "probe-collector" in run([collector_venv.bin("probe-collector"), "--help"], tmp_path)
    run(
        [
            collector_venv.python,
            "-c",
            _imports_none_of(
                "probefleet.collector", ["probefleet.agent", "psutil", "apscheduler", "speedtest"]
            ),
        ],
        tmp_path,
    )


@pytest.fixture
def collector_process(
    collector_venv: Venv, tmp_path: Path, mosquitto: Mosquitto, influx_db: InfluxTarget
) -> Iterator[subprocess.Popen[bytes]]:
    """`probe-collector run` of the collector-only venv, from a folder outside the checkout."""
    config, _ = write_config(tmp_path, mosquitto, influx_db, client_id="collector-only")
    workdir = tmp_path / "site"
    workdir.mkdir()
    log_path = tmp_path / "collector.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(collector_venv.bin("probe-collector")), "run", "--config", str(config)],
            cwd=workdir,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def log_text() -> str:
        return log_path.read_text(errors="replace")

    def subscribed() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"probe-collector exited {proc.returncode}:\n{log_text()[-3000:]}")
        return "subscribed to" in log_text()

    try:
        eventually(
            subscribed,
            timeout_s=30,
            message="collector did not subscribe",
            abort_on=(RuntimeError,),
        )
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    # Written only after a test passed its own checks: the end of the log, for a failure.
    assert "Traceback" not in log_text(), log_text()[-3000:]


def test_collector_only_install_stores_a_result_and_acks_it(
    collector_process: subprocess.Popen[bytes], mosquitto: Mosquitto, influx_db: InfluxTarget
) -> None:
    probe = StandInProbe(mosquitto, PROBE).start()
    try:
        mid = probe.publish(result("latency", probe=PROBE, seq=1))
        probe.wait_pubacks([mid])
        where = f"probe = '{PROBE}' AND seq = 1"
        eventually(
            lambda: count(influx_db, "latency", where) > 0,
            timeout_s=30,
            message="the result is not in InfluxDB",
        )
        eventually(
            lambda: probe.stored_through() == 1, timeout_s=30, message="no StoredAck for seq 1"
        )
        assert probe.pubacks[mid] == 0  # delivered to the collector's session
    finally:
        probe.stop()
    # A clean stop: SIGTERM, as systemd and docker send it.
    collector_process.send_signal(signal.SIGTERM)
    assert collector_process.wait(timeout=30) == 0


# --- install.sh from a release folder ---------------------------------------------------------


def test_install_sh_installs_a_release_folder_with_its_own_commands(tmp_path: Path) -> None:
    """`make dist`'s folder, and install.sh run from it: the venv and pip commands its dry
    run prints, executed for real (into a temp venv instead of /opt/probefleet/venv)."""
    release = tmp_path / f"probefleet-{VERSION}"
    run([ROOT / "scripts/dist.sh", sys.executable, release], tmp_path)
    (tmp_path / "pw").write_text("pw\n")
    dry = run(
        [
            release / "deploy/agent/install.sh",
            "--probe-id",
            PROBE,
            "--broker",
            "b.example",
            "--password-file",
            tmp_path / "pw",
            "--dry-run",
        ],
        tmp_path,
    )
    assert f"from {release} (release) into /opt/probefleet/venv" in dry
    venv = tmp_path / "venv"
    steps = [
        [arg.replace("/opt/probefleet/venv", str(venv)) for arg in shlex.split(line[2:])]
        for line in dry.splitlines()
        if line.startswith(("+ python3 -m venv ", "+ /opt/probefleet/venv/bin/pip "))
    ]
    assert [s[:3] for s in steps] == [
        ["python3", "-m", "venv"],
        [f"{venv}/bin/pip", "install", "--disable-pip-version-check"],
        [f"{venv}/bin/pip", "install", "--disable-pip-version-check"],
    ]
    assert "--require-hashes" in steps[1]
    for step in steps:
        run(step, tmp_path)
    assert "probe-agent" in run([venv / "bin/probe-agent", "--help"], tmp_path)
    fails(venv / "bin/python", "import influxdb_client", tmp_path)


def _imports_none_of(package: str, forbidden: list[str]) -> str:
    """Python code: import every module of ``package``, then fail naming any module loaded
    from ``forbidden`` (or below it)."""
    return (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {forbidden!r}"
        f" or any(n == f or n.startswith(f + '.') for f in {forbidden!r}))\n"
        "assert not bad, bad\n"
    )
