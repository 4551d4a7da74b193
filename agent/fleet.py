"""Fleet control from the centre: the retained config topic and the command topic.

**Config** (``<root>/<probe>/config``, retained): a JSON object — or TOML text — holding
only the sections the centre may change: ``measurements``, ``schedule``, ``gate`` and
``budget``. Each key given overrides the same key of the probe's file; the rest of the
file stands (a list, e.g. latency targets, is replaced whole). Identity, broker,
credentials, interfaces, state dir and spool stay in the probe's own file: a bad remote
config must never cut a probe off. The result is validated by the same decoder as the file
(``agent.configkit``), then judged against the file's ``[remote]`` limits (agent.limits:
destinations the file does not name must be allowed there, bandwidth tests capped); a bad
one is rejected — the probe keeps its last good config and says why, naming each refused
key, in its retained status (``config_error``) and in ``probe-agent status``. A good one
is applied at once and kept in ``remote-config.json`` in the state dir, so it survives
restarts. An empty retained message withdraws it (back to the file alone)::

    mosquitto_pub -r -q 1 -t probefleet/v1/dongnai-tanphu-01/config \\
        -m '{"measurements": {"latency": {"interval_s": 600}}}'

**Commands** (``<root>/<probe>/commands``): ``wire.Command`` — run a measurement now, on
one link or on each; the result is published like any other (a heavy test still waits for
the lock and respects the data budget and the centre's ceilings of agent.allowance, but not
the busy-line gate: someone asked for it). At most ``[remote] max_commands_per_hour`` are
taken, on declared interfaces only; the rest are dropped and logged (once a minute).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import os
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from probefleet import kinds
from probefleet.agent import _durable, limits
from probefleet.agent.config import AgentConfig, RemoteInForce, config_type
from probefleet.agent.errors import StateError
from probefleet.core import configkit, wire

log = logging.getLogger(__name__)

REMOTE_FILE = "remote-config.json"
REMOTE_SECTIONS = ("measurements", "schedule", "gate", "budget")  # never "remote"
_QUIET_S = 60.0  # a repeated complaint is logged at most this often


class RemoteConfigError(ValueError):
    pass


def parse_remote(payload: bytes) -> dict[str, Any]:
    """The remote document as a dict; RemoteConfigError when unreadable or not allowed."""
    if len(payload) > wire.MAX_PAYLOAD_BYTES:
        raise RemoteConfigError(f"{len(payload)} bytes; the limit is {wire.MAX_PAYLOAD_BYTES}")
    try:
        # Before any parser: json and tomllib recurse per level of nesting.
        wire.check_nesting(payload)
    except wire.WireError as exc:
        raise RemoteConfigError(exc.reason) from None
    text = payload.decode("utf-8", errors="strict").strip()
    try:
        doc = json.loads(text) if text.startswith("{") else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RemoteConfigError(f"not valid JSON or TOML: {exc}") from None
    except RecursionError:  # a backstop: check_nesting refuses what could recurse this far
        raise RemoteConfigError("nested too deeply") from None
    if not isinstance(doc, dict):
        raise RemoteConfigError("expected an object of sections")
    _check_sections(doc)
    return doc


def _check_sections(doc: dict[str, Any]) -> None:
    refused = sorted(k for k in doc if k not in REMOTE_SECTIONS)
    if refused:
        raise RemoteConfigError(
            f"{', '.join(refused)}: not changeable from the centre "
            f"(allowed: {', '.join(REMOTE_SECTIONS)})"
        )


def merge(local: dict[str, Any], remote: dict[str, Any]) -> dict[str, Any]:
    """The file with every key the centre sent put over it (tables merged key by key)."""
    merged = dict(local)
    for key, value in remote.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merged[key] = merge(old, value)
        else:
            merged[key] = value
    return merged


def digest(remote: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(remote, sort_keys=True).encode()).hexdigest()[:12]


class ConfigSource:
    """The local file plus the last good remote overlay; builds the AgentConfig in force."""

    def __init__(self, path: Path, env: dict[str, str] | None = None) -> None:
        self.path = path
        self.env = dict(os.environ) if env is None else env
        self.remote: dict[str, Any] = {}
        self.error: str | None = None
        self.in_force: AgentConfig | None = None  # what load() or the last applied gave

    def _local(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise configkit.ConfigError(self.path, [str(exc)]) from None

    def build(self, remote: dict[str, Any]) -> AgentConfig:
        """The config of the file with ``remote`` on top; ConfigError listing every problem,
        also every remote setting beyond the file's [remote] limits (agent.limits)."""
        local = self._local()
        if not remote:
            return self._decoded(local, self.path)
        source = f"{self.path} + remote config"
        try:
            _check_sections(remote)  # also for a kept one: [remote] is the file's alone
        except RemoteConfigError as exc:
            raise configkit.ConfigError(source, [str(exc)]) from None
        cfg = self._decoded(merge(local, remote), source)
        own = self._decoded(local, self.path)
        overlay, problems = limits.judge(own, cfg, remote)
        if problems:
            raise configkit.ConfigError(source, problems)
        fields = {name: getattr(own.remote, name) for name in own.remote.__struct_fields__}
        return msgspec.structs.replace(cfg, remote=RemoteInForce(**fields, centre=overlay))

    def _decoded(self, doc: dict[str, Any], source: Path | str) -> AgentConfig:
        cfg = configkit.build(doc, config_type(), source)
        problems: list[str] = []
        cfg = cfg.resolve(self.env, problems, self.path.parent)
        if problems:
            raise configkit.ConfigError(source, problems)
        return cfg

    def load(self, state_dir: Path | None = None) -> AgentConfig:
        """At start: the file, plus the remote overlay kept from last time if still valid."""
        self.in_force = self._load(state_dir)
        return self.in_force

    def _load(self, state_dir: Path | None) -> AgentConfig:
        cfg = self.build({})
        kept = Path(state_dir or cfg.probe.state_dir) / REMOTE_FILE
        if kept.exists():
            try:
                remote = json.loads(kept.read_text(encoding="utf-8"))
                if not isinstance(remote, dict):
                    raise ValueError("not an object of sections")
                with_remote = self.build(remote)
            except (OSError, ValueError, configkit.ConfigError) as exc:
                log.error("ignoring %s (%s): running on %s alone", kept, exc, self.path)
                if isinstance(exc, configkit.ConfigError):  # e.g. limits tightened since
                    self.error = f"kept remote config rejected: {exc}"[:500]
                return cfg
            self.remote = remote
            log.info("remote config %s applied (kept from %s)", digest(remote), kept)
            return with_remote
        return cfg


class Fleet:
    """Handles the config and commands channels (called on the publisher's thread)."""

    def __init__(
        self,
        source: ConfigSource,
        state_dir: Path,
        *,
        apply: Callable[[AgentConfig], None],
        command: Callable[[wire.Command], None],
        report: Callable[[], None],
    ) -> None:
        self.source = source
        self.state_dir = state_dir
        self._apply = apply
        self._command = command
        self._report = report
        self._rejected: bytes | None = None  # the last payload rejected (sent again: quiet)
        self._rejections = _Quiet("remote configs", burst=5)
        self._accepted: collections.deque[float] = collections.deque()  # command times
        self._dropped = _Quiet("commands")
        self.clock: Callable[[], float] = time.monotonic

    def handle(self, channel: str, payload: bytes) -> None:
        if channel == "config":
            self.config(payload)
        elif channel == "commands":
            try:
                command: wire.Command = wire.decode(payload, wire.Command)
            except wire.WireError as exc:
                log.warning("ignoring a bad command: %s", exc)
                return
            if command.kind not in kinds.SPECS:
                log.warning(
                    "ignoring a bad command: kind: %r is not a measurement of this probe (%s)",
                    command.kind,
                    ", ".join(kinds.names()),
                )
                return
            why = self._refusal(command)
            if why is not None:
                self._dropped.say(f"command {command.request_id} ({command.kind}) dropped: {why}")
                return
            log.info("command %s: measure %s", command.request_id, command.kind)
            self._command(command)

    def _refusal(self, command: wire.Command) -> str | None:
        """Why a command may not run: an interface the file does not declare (it would
        escape the data budget), or more commands this hour than [remote] allows."""
        cfg = self.source.in_force
        if cfg is None:
            return None
        declared = [i.name for i in cfg.interfaces]
        if command.interface is not None and command.interface not in declared:
            return (
                f"interface {command.interface!r} is not in [[interfaces]] "
                f"(declared: {', '.join(declared) or 'none'})"
            )
        per_hour = cfg.remote.max_commands_per_hour
        now = self.clock()
        while self._accepted and now - self._accepted[0] >= 3600:
            self._accepted.popleft()
        if len(self._accepted) >= per_hour:
            return f"more than [remote] max_commands_per_hour = {per_hour}"
        self._accepted.append(now)
        return None

    def config(self, payload: bytes) -> None:
        kept = self.state_dir / REMOTE_FILE
        if payload == self._rejected and self.source.error is not None:
            return  # the rejected one again (a reconnect): already said, already reported
        try:
            remote = parse_remote(payload) if payload.strip() else {}
            if remote == self.source.remote and self.source.error is None:
                return  # the retained message again, on reconnect
            cfg = self.source.build(remote)
            self._apply(cfg)  # checks what only the measurements know, before changing anything
        except (RemoteConfigError, UnicodeDecodeError, configkit.ConfigError) as exc:
            self._rejected = payload
            self.source.error = f"remote config rejected: {exc}"[:500]
            self._rejections.say(f"{self.source.error}; keeping the last good config")
            self._report()
            return
        self._rejected = None
        self.source.in_force = cfg
        try:
            if remote:
                _durable.write_atomic(kept, json.dumps(remote, sort_keys=True).encode())
            elif kept.exists():
                kept.unlink()
        except (StateError, OSError) as exc:
            # Applied all the same (and reported): only a restart before the centre sends
            # it again (it is retained) would run the previous config meanwhile.
            log.error("remote config applied but not kept across a restart: %s", exc)
        self.source.remote = remote
        self.source.error = None
        log.info("remote config %s", f"{digest(remote)} applied" if remote else "withdrawn")
        self._report()


class _Quiet:
    """Logs the first ``burst`` complaints of a minute, then nothing until the minute is
    over, when the next one says how many were left unsaid: a flood of messages must not
    flood the journal (each distinct rejected config is still reported in the status)."""

    def __init__(self, what: str, *, burst: int = 1, every_s: float = _QUIET_S) -> None:
        self.what = what
        self.burst = burst
        self.every_s = every_s
        self._window_at = -math.inf
        self._said = 0
        self._unsaid = 0

    def say(self, text: str) -> None:
        now = time.monotonic()
        if now - self._window_at >= self.every_s:
            self._window_at, self._said = now, 0
        if self._said >= self.burst:
            self._unsaid += 1
            return
        more = f" ({self._unsaid} more {self.what} refused before)" if self._unsaid else ""
        log.error("%s%s", text, more)
        self._said, self._unsaid = self._said + 1, 0
