"""Fleet presence (pure): is each probe online, is its line up, did its last test succeed.

Three different questions, kept apart on purpose:

- **online / offline** — is the probe's agent connected and talking? From its retained
  ``ProbeStatus`` on ``<root>/<probe>/status`` (``offline`` is also its Last Will, published
  by the broker when the connection dies) and from every result it sends (health results
  are its heartbeat). ``silent``: it claims to be online but nothing was heard for
  ``presence.offline_after_s`` *plus the collector's own lag* (:mod:`collector.lag`) —
  counted as offline. Results still queued for the collector are no silence of the
  probe's; a Last Will (its own connection, never behind results) is offline at once.
- **line up** — per interface: did the latest latency or throughput run on that link get
  anything through? A probe can be online over its 4G uplink while its FTTH line is down.
- **last test ok** — did the latest measurement (any kind but health) succeed?

``last_seen`` is the collector's clock at receipt (a retained status replayed on
re-subscription counts only with its own ``at``). Line and test states follow the
results' own timestamps, so a backlog delivered late never overwrites newer news.
State round-trips through JSON, kept in ``state.sqlite`` by :mod:`collector.statedb`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Final, Literal

import msgspec
from probefleet.core import wire
from probefleet.kinds.health.payload import HealthData
from probefleet.kinds.latency.payload import LatencyData
from probefleet.kinds.throughput.payload import ThroughputData

log = logging.getLogger(__name__)

State = Literal["online", "offline", "silent", "never seen"]
# Measurements that say whether a link carries traffic.
_LINE_KINDS: Final = frozenset({"latency", "throughput", "ookla"})


@dataclass(slots=True)
class Mark:
    """A yes/no fact and the measurement time (ns) it comes from."""

    ok: bool
    at_ns: int
    kind: str = ""


@dataclass(slots=True)
class ProbePresence:
    status: str | None = None  # "online" / "offline" as last published; None: never
    status_s: float | None = None  # when that status was published (or received), s
    reason: str | None = None  # the status's reason (e.g. the Last Will's)
    boot_id: str | None = None
    agent_version: str | None = None
    last_seen_s: float | None = None  # the latest sign of life, collector clock, s
    lines: dict[str, Mark] = field(default_factory=dict)  # interface ("" = default) -> up
    last_test: Mark | None = None
    spool_depth: int | None = None
    spool_at_ns: int = 0

    def state(self, now_s: float, offline_after_s: float, lag_s: float = 0.0) -> State:
        """``lag_s``: how far behind the collector is; a quiet it explains is no silence."""
        if self.last_seen_s is None and self.status is None:
            return "never seen"
        if self.status == "offline" and (
            self.last_seen_s is None or self.status_s is None or self.last_seen_s <= self.status_s
        ):
            return "offline"
        if self.last_seen_s is None or now_s - self.last_seen_s > offline_after_s + lag_s:
            return "silent"
        return "online"

    def line_up(self) -> bool | None:
        """All known lines up: True; any down: False; no line measured yet: None."""
        if not self.lines:
            return None
        return all(m.ok for m in self.lines.values())

    def to_json(self) -> str:
        # msgspec encodes the dataclasses as asdict() + json.dumps would, several times faster
        # (this runs for every probe in every batch).
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, text: str) -> ProbePresence:
        doc = json.loads(text)
        lines = {k: Mark(**v) for k, v in doc.pop("lines", {}).items()}
        test = doc.pop("last_test", None)
        return cls(**doc, lines=lines, last_test=Mark(**test) if test else None)


def line_verdict(result: wire.Result) -> bool | None:
    """Whether this result shows its link up (True), down (False) or says nothing (None)."""
    kind = wire.kind_of(result)
    if kind not in _LINE_KINDS or result.status == "skipped":
        return None
    if result.status == "failed" or result.data is None:
        return False
    data = result.data
    if isinstance(data, LatencyData):
        return any(t.received > 0 for t in data.targets)
    if isinstance(data, ThroughputData):
        return bool((data.download_mbps or 0) > 0 or (data.upload_mbps or 0) > 0)
    return None


class Presence:
    """Every probe's :class:`ProbePresence`, and which changed since the last save."""

    def __init__(
        self, states: dict[str, ProbePresence] | None = None, *, max_future_s: float = 300.0
    ) -> None:
        self.states: dict[str, ProbePresence] = states or {}
        self.dirty: set[str] = set()
        # A replayed status dated further ahead of our clock is not believed: "online at
        # 2100" would otherwise hold the probe online (never silent, no alert) for ever.
        self.max_future_s = max_future_s

    def get(self, probe: str) -> ProbePresence:
        state = self.states.get(probe)
        if state is None:
            state = self.states[probe] = ProbePresence()
        return state

    def _seen(self, p: ProbePresence, at_s: float) -> None:
        if p.last_seen_s is None or at_s > p.last_seen_s:
            p.last_seen_s = at_s

    def on_status(
        self, probe: str, status: wire.ProbeStatus, received_s: float, *, replayed: bool
    ) -> None:
        """A ProbeStatus taken from the broker. ``replayed``: a retained copy handed over on
        (re-)subscription — it tells the state, but is no sign of life now."""
        p = self.get(probe)
        published_s = status.at.timestamp() if status.at is not None else None
        if replayed and published_s is not None and published_s > received_s + self.max_future_s:
            log.warning(
                "ignoring %s's retained status dated %s: ahead of this clock by %.0f s",
                probe, status.at, published_s - received_s,
            )  # fmt: skip
            return
        when_s = published_s if replayed else received_s
        if when_s is None:  # a replayed Last Will: unknown age; keep a newer state we know
            if p.status is not None:
                return
            when_s = 0.0
        if p.status_s is not None and when_s < p.status_s:
            return  # older than what we know
        p.status, p.status_s, p.reason = status.state, when_s, status.reason
        p.boot_id = status.boot_id or p.boot_id
        p.agent_version = status.agent_version or p.agent_version
        if status.state == "online":
            self._seen(p, when_s)
        self.dirty.add(probe)

    def on_result(
        self, probe: str, result: wire.Result, when_ns: int | None, received_s: float
    ) -> None:
        """A result durably stored; ``when_ns`` its timestamp (None while quarantined)."""
        p = self.get(probe)
        self._seen(p, received_s)
        self.dirty.add(probe)
        if when_ns is None:
            return
        kind = wire.kind_of(result)
        up = line_verdict(result)
        if up is not None:
            key = result.interface or ""
            known = p.lines.get(key)
            if known is None or when_ns >= known.at_ns:
                p.lines[key] = Mark(up, when_ns, kind)
        if kind == "health":
            data = result.data
            if isinstance(data, HealthData) and when_ns >= p.spool_at_ns:
                p.spool_depth, p.spool_at_ns = data.spool_depth, when_ns
        elif result.status != "skipped" and (p.last_test is None or when_ns >= p.last_test.at_ns):
            p.last_test = Mark(result.status == "ok", when_ns, kind)

    def take_dirty(self) -> dict[str, ProbePresence]:
        dirty = {probe: self.states[probe] for probe in self.dirty}
        self.dirty = set()
        return dirty
