"""`probe-agent run` as a real process for end-to-end tests, with its config and log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probefleet import kinds

from tests.harness import Mosquitto, eventually

ROOT = Path(__file__).resolve().parents[2]
HOOK = "tests.agent.standins"


def write_agent_config(
    tmp_path: Path,
    broker: Mosquitto,
    *,
    probe: str = "probe-a",
    enabled: tuple[str, ...] = ("latency",),
    interval_s: int = 300,
    options: dict[str, dict[str, Any]] | None = None,
    **sections: dict[str, Any],
) -> Path:
    """An agent config for the test broker: plain MQTT, state in tmp_path/agent-state,
    only ``enabled`` measurements on, no clock wait, no gate waits. ``options``: more keys
    of ``[measurements.<kind>]`` tables, by kind."""
    values: dict[str, dict[str, Any]] = {
        "probe": {"id": probe, "state_dir": str(tmp_path / "agent-state")},
        "mqtt": {"host": broker.host, "port": broker.port, "tls": False, "keepalive_s": 10},
        "schedule": {"require_synced_clock": False, "jitter_s": 0, "misfire_grace_s": 60},
        "gate": {"enabled": False},
        "spool": {"retry_s": 1.0, "ack_timeout_s": 30.0},
        "log": {"level": "DEBUG"},
    }
    for name, overrides in sections.items():
        values.setdefault(name, {}).update(overrides)
    lines = []
    for name, table in values.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in table.items())
    for kind in kinds.names():  # every registered kind: a new one is off here too
        lines.append(f"[measurements.{kind}]")
        lines.append(f"enabled = {'true' if kind in enabled else 'false'}")
        lines.append(f"interval_s = {interval_s}")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in (options or {}).get(kind, {}).items())
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class AgentProcess:
    """`python -m probefleet.agent.cli run --config FILE` with the stand-in hook; log in a file."""

    def __init__(
        self, config: Path, log_path: Path, *, prefix: Sequence[str] = (), **env: str
    ) -> None:
        self.config = config
        self.log_path = log_path
        self.prefix = list(prefix)  # e.g. nsenter into a mount namespace
        self.env = {"STANDIN_SYNCED": "1", **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self, wait_for: str | None = "scheduled ") -> AgentProcess:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PROBEFLEET_AGENT_TEST_HOOK": HOOK,
            **self.env,
        }
        self.proc = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "-m",
                "probefleet.agent.cli",
                "run",
                "--config",
                str(self.config),
            ],
            stdout=log,
            stderr=log,
            cwd=ROOT,
            env=env,
        )
        log.close()
        if wait_for:
            eventually(
                lambda: self.alive() and wait_for in self.log_since_start(),
                timeout_s=30,
                message=f"agent did not log {wait_for!r}:\n{self.log_since_start()[-3000:]}",
            )
        return self

    def alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"agent exited {self.proc.returncode}:\n{self.log_since_start()[-3000:]}"
            )
        return True

    def log_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(self._offset)
            return handle.read().decode(errors="replace")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self, timeout_s: float = 40) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)
