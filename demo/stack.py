"""Start and stop everything the demo runs: services, collector, one agent per commune,
and the simulated modem of the 4G commune (demo.modem).

The services are the real ones the integration tests use (tests/harness): Mosquitto,
InfluxDB 1.6 behind its nginx v2-write front, nginx as the province's HTTP test server.
Every process runs in its own process group (ServiceProcess), so stopping reaches its
children too, and a reaper process kills what is left should the demo itself be SIGKILLed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from demo.links import CommuneLink, Links
from demo.modem import SimulatedModem
from demo.province import (
    Commune,
    Services,
    agent_toml,
    alerts_toml,
    collector_toml,
    inventory_toml,
)
from tests.harness import GiB, InfluxDB, Mosquitto, NginxTestServer, ServiceProcess, eventually

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "probefleet"
PROVINCE_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
HOOK_ENV = "PROBEFLEET_AGENT_TEST_HOOK"
LOOPBACK_MAX_BYTES = 256 * 1024 * 1024

Say = Callable[[str], None]  # where progress lines go (the terminal)


def _self_and_ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        # The command name (2nd field) may hold blanks: the fields after its ')' are fixed.
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def collector_commands() -> set[str]:
    """The subcommands this checkout's probe-collector has (fleet, alerts and report
    arrive with their branches: the demo uses each one once it exists)."""
    from probefleet.collector.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            return set(choices)
    return set()


@dataclass
class Agent:
    commune: Commune
    link: CommuneLink
    config: Path
    process: ServiceProcess
    started_mono: float = 0.0
    killed: bool = False


@dataclass
class Stack:
    workdir: Path
    links: Links
    communes: tuple[Commune, ...]
    synced_hook: bool  # load demo.clockhook into the agents (see its docstring)
    influx: InfluxDB | None = None
    broker: Mosquitto | None = None
    http: NginxTestServer | None = None
    collector: ServiceProcess | None = None
    collector_config: Path | None = None
    agents: dict[str, Agent] = field(default_factory=dict)
    modems: dict[str, SimulatedModem] = field(default_factory=dict)  # probe -> its modem
    commands: set[str] = field(default_factory=set)

    # -- start -------------------------------------------------------------------------

    def start(self, say: Say) -> Stack:
        self.commands = collector_commands()
        try:
            self._start(say)
        except BaseException:
            self.stop(say)
            raise
        return self

    def _start(self, say: Say) -> None:
        self.links.start(self.communes)
        for note in self.links.notes:
            say(f"note: {note}")
        host_v4, host_v6 = self.links.host_v4, self.links.host_v6
        say("starting InfluxDB 1.6 (+ nginx v2-write front) on 127.0.0.1 ...")
        # Each service is ours (and stopped by stop()) before it is started.
        self.influx = InfluxDB(self.workdir / "influxdb")
        self.influx.start()
        self.influx.create_database(BUCKET)
        say(f"starting Mosquitto on {host_v4} ...")
        self.broker = Mosquitto(
            self.workdir / "mosquitto", host=host_v4, extra_conf=["max_queued_messages 0"]
        )
        self.broker.start()
        say(f"starting nginx, the province's HTTP test server, on {host_v4} ...")
        self.http = NginxTestServer(
            self.workdir / "http",
            large_size=2 * GiB,
            host=host_v4,
            host_v6=host_v6 or "::1",
            ipv6=host_v6 is not None,
            worker_processes="2",
        )
        self.http.start()
        self._start_collector(say)
        services = Services(
            mqtt_host=host_v4,
            mqtt_port=self.broker.port,
            http_host=host_v4,
            http_host_v6=host_v6 if self.http.has_ipv6 else None,
            http_port=self.http.port,
        )
        for commune in self.communes:
            if commune.modem:
                say(f"starting a simulated modem (ModemManager on a private D-Bus) for "
                    f"{commune.commune} ...")  # fmt: skip
                modem = SimulatedModem(
                    self.workdir / "modems" / commune.probe,
                    self.links.links[commune.probe].interface,
                )
                try:
                    modem.start()
                except (RuntimeError, OSError, AssertionError) as exc:  # no dbus, no dbusmock
                    modem.stop()
                    say(f"note: no simulated modem ({exc}): {commune.commune} runs without "
                        "a radio context")  # fmt: skip
                else:
                    self.modems[commune.probe] = modem
            self._start_agent(commune, services)
        say(f"started {len(self.agents)} probe agents ({self.links.mode} links)")

    def _start_collector(self, say: Say) -> None:
        assert self.influx is not None
        assert self.broker is not None
        cdir = self.workdir / "collector"
        cdir.mkdir(parents=True, exist_ok=True)
        inventory = cdir / "inventory.toml"
        interface_of = {c.probe: self.links.links[c.probe].interface for c in self.communes}
        inventory.write_text(inventory_toml(self.communes, interface_of), encoding="utf-8")
        targets = cdir / "targets.toml"
        shutil.copyfile(ROOT / "config" / "targets.sample.toml", targets)
        extra: dict[str, dict[str, object]] = {}
        if "fleet" in self.commands:
            # A probe silent for three health intervals is offline, not "online" for 15 min.
            extra["presence"] = {"offline_after_s": 45.0}
            # Presence points (what the probe_offline alert reads) every 10 s, not minute.
            extra["metrics"] = {"interval_s": 10.0}
        alerts: Path | None = None
        if "alerts" in self.commands:
            alerts = cdir / "alerts.toml"
            alerts.write_text(alerts_toml(offline_for_s=20.0), encoding="utf-8")
        self.collector_config = cdir / "collector.toml"
        self.collector_config.write_text(
            collector_toml(
                mqtt_host=self.broker.host,
                mqtt_port=self.broker.port,
                influx_url=self.influx.url,
                bucket=BUCKET,
                inventory=inventory,
                targets=targets,
                state_dir=cdir / "state",
                alerts=alerts,
                extra=extra,
            ),
            encoding="utf-8",
        )
        say("starting probe-collector run ...")
        self.collector = ServiceProcess(
            "collector",
            [
                sys.executable,
                "-m",
                "probefleet.collector.cli",
                "run",
                "--config",
                str(self.collector_config),
            ],
            cdir,
            stop_signal=signal.SIGTERM,
            stop_timeout_s=15.0,
        )
        self.collector.start()
        log_path = self.collector.stderr_path

        def subscribed() -> bool:
            assert self.collector is not None
            self.collector.check_alive()
            return "subscribed" in log_path.read_text(errors="replace").lower()

        eventually(subscribed, timeout_s=30, message="the collector did not subscribe")

    def _start_agent(self, commune: Commune, services: Services) -> None:
        link = self.links.links[commune.probe]
        adir = self.workdir / "agents" / commune.probe
        adir.mkdir(parents=True, exist_ok=True)
        config = adir / "agent.toml"
        config.write_text(
            agent_toml(
                commune,
                services,
                state_dir=adir / "state",
                interface=link.interface,
                # Unshaped loopback runs at memory speed: cap each direction's volume.
                max_bytes=0 if link.shaped_mbit else LOOPBACK_MAX_BYTES,
                radio_bus=modem.mm.address
                if (modem := self.modems.get(commune.probe)) and modem.mm
                else None,
            ),
            encoding="utf-8",
        )
        env = [f"PYTHONPATH={ROOT}"]
        if self.synced_hook:
            env.append(f"{HOOK_ENV}=demo.clockhook")
        argv = link.wrap(
            [
                "env",
                *env,
                sys.executable,
                "-m",
                "probefleet.agent.cli",
                "run",
                "--config",
                str(config),
            ]
        )
        process = ServiceProcess(
            f"agent-{commune.probe}", argv, adir, stop_signal=signal.SIGTERM, stop_timeout_s=10
        )
        self.agents[commune.probe] = Agent(commune, link, config, process, time.monotonic())
        process.start()

    # -- while running ---------------------------------------------------------------------

    def kill_agent(self, probe: str) -> None:
        """SIGKILL an agent's process group: a power cut, as far as the broker can tell."""
        agent = self.agents[probe]
        agent.process.kill()
        agent.killed = True

    def dead_agents(self) -> list[str]:
        """Agents that ended by themselves (not the one the demo takes offline)."""
        return [
            probe
            for probe, agent in self.agents.items()
            if not agent.killed and not agent.process.running
        ]

    def collector_json(self, *args: str) -> str | None:
        """stdout of ``probe-collector <args> --config <ours>``, None when it fails."""
        if self.collector_config is None:
            return None
        argv = [
            sys.executable,
            "-m",
            "probefleet.collector.cli",
            *args,
            "--config",
            str(self.collector_config),
        ]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return None
        return done.stdout if done.returncode == 0 else None

    def write_report(self, started: dt.datetime, out_dir: Path) -> tuple[Path | None, str]:
        """Run ``probe-collector report`` over the demo's days; (path or None, message)."""
        if "report" not in self.commands or self.collector_config is None:
            return None, "this checkout has no `probe-collector report` yet"
        first = started.astimezone(PROVINCE_TZ).date().isoformat()
        last = dt.datetime.now(PROVINCE_TZ).date().isoformat()
        out = out_dir / "compliance-report.html"
        # The sample boundary file (synthetic polygons, and the map says so): every demo
        # commune is in it, so the demo's report has its commune map.
        settings = out_dir / "report.toml"
        areas = Path(__file__).resolve().parents[1] / "config/areas/dongnai.sample.geojson"
        settings.write_text(f'[report]\nareas_file = "{areas}"\n', encoding="utf-8")
        argv = [
            sys.executable, "-m", "probefleet.collector.cli", "report",
            "--config", str(self.collector_config), "--settings", str(settings),
            "--from", first, "--to", last, "--format", "html", "--lang", "en",
            "--out", str(out), "--quiet",
        ]  # fmt: skip
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            return None, "probe-collector report took more than 120 s"
        if done.returncode != 0 or not out.exists():
            return None, f"probe-collector report failed ({done.returncode}): {done.stderr[-500:]}"
        return out, "ok"

    # -- stop ------------------------------------------------------------------------------

    def processes_left(self) -> list[str]:
        """Processes whose command line names the work dir (every service and agent is
        given a config file there): none once stop() is done."""
        found = []
        mine = _self_and_ancestors()  # `timeout 60 python -m demo --workdir ...` names it too
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in mine:
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if str(self.workdir) in cmdline:
                found.append(f"pid {entry.name}: {cmdline.strip()}")
        return found

    def stop(self, say: Say) -> None:
        """Stop everything started, agents first (they flush to their spool), services last,
        then the namespaces and the bridge. Safe to call twice and after a failed start."""
        errors: list[str] = []

        def attempt(what: str, fn: Callable[[], None]) -> None:
            try:
                fn()
            except Exception as exc:  # keep stopping the rest; report at the end
                errors.append(f"{what}: {exc}")

        threads = [
            threading.Thread(target=attempt, args=(f"agent {p}", a.process.stop), daemon=True)
            for p, a in self.agents.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for probe, modem in self.modems.items():
            attempt(f"modem {probe}", modem.stop)
        if self.collector is not None:
            attempt("collector", self.collector.stop)
        services = {"nginx": self.http, "mosquitto": self.broker, "influxdb": self.influx}
        for name, service in services.items():
            if service is not None:
                attempt(name, service.stop)
        attempt("links", self.links.stop)
        for error in errors:
            say(f"while stopping: {error}")
